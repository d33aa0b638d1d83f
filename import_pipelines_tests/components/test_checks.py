"""Checks after load, through the FreeScout profile's job against real databases.

The reconciliation compares the source's own count of the query's rows with what the run
recorded; it is made to fail by removing an audit row and by altering a summary count. A check
whose entity the run did not materialise is skipped, never passed on an earlier run's data.
"""

from __future__ import annotations

import dagster as dg

from import_pipelines.db import connection
from import_pipelines.pipeline.checks import reconciliation
from import_pipelines_tests.components.test_import_job import job_env  # noqa: F401 - the same databases

PROFILE = "freescout_demo"
ENTITIES = ["accounts", "customer_users", "agents", "tickets", "time_entries"]


def _job() -> dg.JobDefinition:
    import import_pipelines.definitions as module

    return module.defs.resolve_job_def(f"{PROFILE}_import")


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[1], e.check_name): e for e in result.get_asset_check_evaluations()}


def _source_rows(source_url: str) -> dict[str, int]:
    """Each entity's source rows, counted here by the template's filters written out by hand."""
    with connection(source_url) as conn:
        return {
            "agents": conn.execute("SELECT count(*) FROM users WHERE type <> 2").fetchone()[0],
            "time_entries": conn.execute("SELECT count(*) FROM timelogs WHERE finished").fetchone()[0],
            # DISTINCT over both fields: spellings of one company are rows the dedupe step collapses
            "accounts": conn.execute("SELECT count(*) FROM (SELECT DISTINCT regexp_replace(lower(btrim(company)),"
                                     " '\\s+', ' ', 'g'), regexp_replace(btrim(company), '\\s+', ' ', 'g')"
                                     " FROM customers WHERE company ~ '\\S') AS d").fetchone()[0],
        }


def test_checks_after_a_run_and_reconciliation_failing_on_a_tampered_audit(job_env: tuple[str, str]) -> None:
    source_url, target_url = job_env
    dry = _job().execute_in_process(run_config={"resources": {f"{PROFILE}_settings": {"config": {"dry_run": True}}}})
    assert dry.success
    checks = _evaluations(dry)  # a dry run predicts one action per source row, and validates
    assert all(checks[(entity, "reconciliation")].passed for entity in ENTITIES)
    assert checks[("tickets", "validation")].passed and (ENTITIES[0], "natural_key_unique") not in checks

    result = _job().execute_in_process()
    assert result.success
    run_id = result.run_id
    checks = _evaluations(result)
    for entity in ENTITIES:
        assert checks[(entity, "natural_key_unique")].passed, entity
        assert checks[(entity, "reconciliation")].passed, (entity, checks[(entity, "reconciliation")].metadata)
        assert (entity, "references_resolved") in checks
    for entity in ("customer_users", "agents", "tickets", "time_entries"):  # the entities with validate
        assert checks[(entity, "validation")].passed, checks[(entity, "validation")].metadata
    # the source count is the source's, not the import's: equal to an independent count
    for entity, rows in _source_rows(source_url).items():
        meta = checks[(entity, "reconciliation")].metadata
        assert meta["source_rows"].value == rows and meta["counted"].value == "snapshot", entity

    assert reconciliation(target_url, profile=PROFILE, entity="agents", run_id=run_id)["passed"]
    with connection(target_url) as conn:
        conn.execute("DELETE FROM import_control.audit_records WHERE ctid = (SELECT a.ctid FROM"
                     " import_control.audit_records AS a JOIN import_control.streams AS s USING (stream_id)"
                     " WHERE s.profile = %s AND s.entity = 'agents' LIMIT 1)", (PROFILE,))
        conn.commit()
    outcome = reconciliation(target_url, profile=PROFILE, entity="agents", run_id=run_id)
    assert not outcome["passed"] and outcome["recorded"] == outcome["source_rows"] - 1

    assert reconciliation(target_url, profile=PROFILE, entity="time_entries", run_id=run_id)["passed"]
    with connection(target_url) as conn:
        conn.execute("UPDATE import_control.run_summaries SET created = created + 1 WHERE stream_id ="
                     " (SELECT stream_id FROM import_control.streams WHERE profile = %s AND entity = 'time_entries')",
                     (PROFILE,))
        conn.commit()
    outcome = reconciliation(target_url, profile=PROFILE, entity="time_entries", run_id=run_id)
    assert not outcome["passed"] and outcome["summary_total"] == outcome["source_rows"] + 1

    # run again: a sync of unchanged data reconciles through the summary's unchanged count
    again = _job().execute_in_process()
    assert again.success
    checks = _evaluations(again)
    for entity in ENTITIES:
        assert checks[(entity, "reconciliation")].passed, (entity, checks[(entity, "reconciliation")].metadata)


def test_a_check_on_an_entity_the_run_did_not_materialise_is_skipped(job_env: tuple[str, str]) -> None:
    job = _job()
    assert job.execute_in_process().success  # every check has an earlier, passing evaluation to lean on

    key = dg.AssetKey([PROFILE, "agents"])
    check_keys = {dg.AssetCheckKey(key, name) for name in ("natural_key_unique", "reconciliation", "validation")}
    with dg.DagsterInstance.ephemeral() as instance:
        first = job.execute_in_process(instance=instance)
        assert first.success
        only_checks = job.get_subset(asset_selection=set(), asset_check_selection=check_keys)
        result = only_checks.execute_in_process(instance=instance)
        assert result.success
        assert result.get_asset_check_evaluations() == []  # none reported, so none reported as passed
        records = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(check_keys))
        for check_key in check_keys:
            record = records[check_key]
            assert record.run_id == result.run_id and record.status.value == "PLANNED"  # shown as skipped

        # a run that materialises accounts only: the checks of the other entities are not evaluated
        accounts = dg.AssetKey([PROFILE, "accounts"])
        subset = job.get_subset(asset_selection={dg.AssetKey([PROFILE, "preflight"]), accounts},
                                asset_check_selection={dg.AssetCheckKey(accounts, "reconciliation"),
                                                       *check_keys})
        result = subset.execute_in_process(instance=instance)
        assert result.success
        evaluated = {(e.asset_key.path[1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}
        assert evaluated == {("accounts", "reconciliation"): True}
