"""The FreeScout profile's Dagster job, executed in process against real databases.

A dry run predicts, per entity, exactly the counts the real run then produces, and writes
nothing to the target tables; the real run's materialisations carry the import counts.
"""

from __future__ import annotations

import dagster as dg
import pytest

from import_pipelines.db import connection
from import_pipelines.demo.freescout import generate_freescout
from import_pipelines.service_vault import migrate
from import_pipelines.settings import SOURCE_URL_ENV, TARGET_URL_ENV

ENTITIES = ["accounts", "customer_users", "agents", "tickets", "time_entries"]
TABLES = ["accounts", "customer_users", "agents", "tickets", "time_entries"]


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    out = {}
    for event in result.get_asset_materialization_events():
        key = event.asset_key.path
        if key[0] == "freescout_demo" and key[1] in ENTITIES:
            out[key[1]] = {k: v.value for k, v in event.materialization.metadata.items()}
    return out


def _table_state(url: str) -> dict[str, tuple[int, int]]:
    with connection(url) as conn:
        return {t: conn.execute(f"SELECT count(*), coalesce(sum(xmin::text::bigint), 0) FROM {t}").fetchone()
                for t in TABLES}


@pytest.fixture
def job_env(monkeypatch: pytest.MonkeyPatch, source_url: str, target_url: str) -> tuple[str, str]:
    generate_freescout(source_url, customers=800)
    migrate(target_url)
    monkeypatch.setenv(SOURCE_URL_ENV, source_url)
    monkeypatch.setenv(TARGET_URL_ENV, target_url)
    return source_url, target_url


def test_dry_run_predicts_the_real_run_and_writes_nothing(job_env: tuple[str, str]) -> None:
    import import_pipelines.definitions as module

    _, target_url = job_env
    job = module.defs.resolve_job_def("freescout_demo_import")
    before = _table_state(target_url)

    dry = job.execute_in_process(run_config={"resources": {"freescout_demo_settings": {"config": {"dry_run": True}}}})
    assert dry.success
    predicted = _materializations(dry)
    assert _table_state(target_url) == before  # no row inserted or rewritten
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM import_control.import_records").fetchone()[0] == 0

    real = job.execute_in_process()
    assert real.success
    actual = _materializations(real)
    for entity in ENTITIES:
        assert predicted[entity]["dry_run"] is True and actual[entity]["dry_run"] is False
        for action, verb in (("created", "create"), ("updated", "update"), ("skipped", "skip"),
                             ("unchanged", "unchanged"), ("failed", "fail")):
            assert predicted[entity][f"would_{verb}"] == actual[entity][action], (entity, action)
        assert actual[entity]["dagster/row_count"] == sum(actual[entity][a] for a in
                                                          ("created", "updated", "skipped", "unchanged", "failed"))
        assert actual[entity]["rows_per_s"] > 0 and "preview" in actual[entity]
    assert actual["tickets"]["created"] > 0 and actual["tickets"]["failed"] > 0
    # the dry-run report is a CSV with one line per predicted record, plus a header
    with open(predicted["tickets"]["report"], encoding="utf-8") as report:
        lines = report.read().splitlines()
    assert lines[0].startswith("entity,source_id,would") and len(lines) - 1 == predicted["tickets"]["dagster/row_count"]
    # fuzzy customer duplicates show up with their confidence
    assert actual["customer_users"]["duplicates"] > 0 and actual["customer_users"]["mean_confidence"] >= 95

    checks = {(e.asset_key.path[1], e.check_name): e.passed for e in real.get_asset_check_evaluations()}
    for entity in ENTITIES:
        assert checks[(entity, "natural_key_unique")] and checks[(entity, "reconciliation")]
