"""The catalogue asset and the connection check, run in process against the test databases."""

from __future__ import annotations

import json

import dagster as dg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from import_pipelines.defs.authoring.definitions import source_catalogue, source_connection
from import_pipelines.resources import PostgresDatabase

SECRET = "pw-must-not-leak"


def run(monkeypatch, url: str) -> tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]:
    monkeypatch.setenv("IPT_CATALOGUE_SOURCE", url)
    defs = dg.Definitions(assets=[source_catalogue], asset_checks=[source_connection],
                          resources={"authoring_source": PostgresDatabase(url=dg.EnvVar("IPT_CATALOGUE_SOURCE"))})
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, raise_on_error=False), instance


def test_catalogue_materialises_as_metadata(freescout_source: str, monkeypatch) -> None:
    url = make_conninfo(**{**conninfo_to_dict(freescout_source), "password": SECRET})
    result, instance = run(monkeypatch, url)
    assert result.success
    [materialization] = result.asset_materializations_for_node("authoring__source_catalogue")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["dagster/row_count"] == 7 and metadata["confident_joins"] >= 10
    assert "| customers |" in metadata["tables"] and "emails.customer_id" in metadata["joins"]
    document = metadata["catalogue"]
    assert {t["name"] for t in document["tables"]} >= {"customers", "conversations"}
    assert "@" not in json.dumps(document)  # sample e-mail addresses are masked
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["readable_tables"].value == 7
    logs = " ".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert SECRET not in logs and SECRET not in json.dumps(metadata, default=str)


def test_an_unreachable_source_fails_clearly(freescout_source: str, monkeypatch) -> None:
    url = make_conninfo(**{**conninfo_to_dict(freescout_source), "dbname": "ipt_missing_source", "password": SECRET})
    result, instance = run(monkeypatch, url)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "ipt_missing_source" in str(failure.event_specific_data.error) and SECRET not in str(failure.event_specific_data.error)
    logs = " ".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert SECRET not in logs


def test_the_connection_check_runs_on_its_own(monkeypatch, pg_server: str) -> None:
    url = make_conninfo(**{**conninfo_to_dict(pg_server), "dbname": "ipt_missing_source", "password": SECRET})
    monkeypatch.setenv("IPT_CATALOGUE_SOURCE", url)
    defs = dg.Definitions(assets=[source_catalogue], asset_checks=[source_connection],
                          resources={"authoring_source": PostgresDatabase(url=dg.EnvVar("IPT_CATALOGUE_SOURCE"))})
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_check_selection={source_connection.check_key}, asset_selection=set())
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["failure"].value == "no_database"
    assert SECRET not in check.metadata["message"].value
