"""Clean-up: staging tables of runs that are over are dropped, those a run may still read are kept;
scratch rows that only grow are pruned by age."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG

from import_pipelines import cli
from import_pipelines.control import ensure_control_schema
from import_pipelines.control.cleanup import cleanup
from import_pipelines.db import connect
from import_pipelines.engine.audit import register_run
from import_pipelines.engine.staging import create_staging

# run id -> (status in the Dagster instance or None for a run it does not know, age of its staging in hours)
RUNS = {
    "succeeded": (dg.DagsterRunStatus.SUCCESS, 1),
    "failed-recently": (dg.DagsterRunStatus.FAILURE, 1),
    "failed-long-ago": (dg.DagsterRunStatus.FAILURE, 30),
    "cancelled-long-ago": (dg.DagsterRunStatus.CANCELED, 30),
    "running-long": (dg.DagsterRunStatus.STARTED, 30),
    "parent-long-ago": (dg.DagsterRunStatus.FAILURE, 30),  # its re-execution below is running
    "unknown-recent": (None, 1),
    "unknown-long-ago": (None, 30),
}


def staging_of(run_id: str) -> str:
    return f"stg_p_e_{run_id.replace('-', '_')}"


def setup_target(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        ensure_control_schema(conn)
        for run_id, (_, hours) in RUNS.items():
            register_run(conn, run_id=run_id, profile="p")
            create_staging(conn, table=staging_of(run_id), columns=[("id", "text")], run_id=run_id)
            conn.execute("UPDATE import_control.staging_tables SET created_at = now() - make_interval(hours => %s)"
                         " WHERE run_id = %s", (hours, run_id))
        stream = conn.execute("INSERT INTO import_control.streams (profile, entity, target_table)"
                              " VALUES ('p', 'e', 'public.e') RETURNING stream_id").fetchone()[0]
        for days in (40, 1):
            conn.execute("INSERT INTO import_control.pending_references (run_group, stream_id, reference, row_key,"
                         " atoms, created, recorded_at) VALUES ('g', %s, 'parent_id', '{1}', '{2}', true,"
                         " now() - make_interval(days => %s))", (stream, days))
            conn.execute("INSERT INTO import_control.dry_run_records (run_id, profile, entity, source_id, action,"
                         " resolves, created_at) VALUES ('dry', 'p', 'e', '1', 'created', true,"
                         " now() - make_interval(days => %s))", (days,))
            conn.execute("INSERT INTO import_control.webhook_deliveries (webhook_id, run_id, profile, event, endpoint,"
                         " attempts, recorded_at) VALUES (%s, 'r', 'p', 'succeeded', 'http://h/', 1,"
                         " now() - make_interval(days => %s))", (f"msg_{days}", days))


def remaining(url: str) -> tuple[set[str], set[str], int, int]:
    with connect(url) as conn:
        registered = {r[0] for r in conn.execute("SELECT run_id FROM import_control.staging_tables")}
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'import_control'"
                                             " AND tablename LIKE 'stg_%'")}
        pending = conn.execute("SELECT count(*) FROM import_control.pending_references").fetchone()[0]
        dry = conn.execute("SELECT count(*) FROM import_control.dry_run_records").fetchone()[0]
    return registered, tables, pending, dry


def test_staging_of_runs_that_are_over_is_swept_by_the_instance(target_url: str, tmp_path: Path) -> None:
    setup_target(target_url)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for run_id, (status, _) in RUNS.items():
            if status is not None:
                instance.add_run(dg.DagsterRun(job_name="p_import", run_id=run_id, status=status))
        instance.add_run(dg.DagsterRun(job_name="p_import", run_id="re-execution", status=dg.DagsterRunStatus.STARTED,
                                       root_run_id="parent-long-ago", parent_run_id="parent-long-ago",
                                       tags={ROOT_RUN_ID_TAG: "parent-long-ago", PARENT_RUN_ID_TAG: "parent-long-ago"}))
        with connect(target_url, autocommit=True) as conn:
            dry = cleanup(conn, instance=instance, dry_run=True)
            assert remaining(target_url)[0] == set(RUNS)  # a dry run drops nothing
            outcome = cleanup(conn, instance=instance)
    over = {"succeeded", "failed-long-ago", "cancelled-long-ago", "unknown-long-ago"}
    assert set(dry.swept) == set(outcome.swept) == {staging_of(r) for r in over}
    registered, tables, pending, dry_rows = remaining(target_url)
    # kept: a failed run's staging for a day (a re-execution from failure reads it), a running run's,
    # the staging of a run whose re-execution is running, and a recent run the instance does not know
    assert registered == set(RUNS) - over and tables == {staging_of(r) for r in registered}
    assert outcome.pruned == {"pending_references": 1, "dry_run_records": 1, "webhook_deliveries": 1} == dry.pruned
    assert (pending, dry_rows) == (1, 1)  # the rows of yesterday stay
    assert "dropped 4 staging tables of runs that are over (judged by dagster instance)" in outcome.summary(dry_run=False)


def test_the_command_judges_by_age_without_an_instance(target_url: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    setup_target(target_url)
    monkeypatch.setenv("CLEANUP_TARGET_URL", target_url)
    assert cli.main(["cleanup", "--no-instance", "--target-env", "CLEANUP_TARGET_URL", "--dry-run"]) == 0
    assert "would drop 5 staging tables" in capsys.readouterr().out
    assert remaining(target_url)[0] == set(RUNS)
    assert cli.main(["cleanup", "--no-instance", "--target-env", "CLEANUP_TARGET_URL", "--older-than-hours", "12"]) == 0
    printed = capsys.readouterr().out
    assert "dropped 5 staging tables of runs that are over (judged by age)" in printed
    assert "pending_references 1, dry_run_records 1, webhook_deliveries 1" in printed
    # without an instance a long-running run cannot be told from a dead one: only age decides
    assert remaining(target_url)[0] == {r for r, (_, hours) in RUNS.items() if hours < 12}


def test_the_daily_job_sweeps_with_its_own_instance(target_url: str, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from import_pipelines.defs.control.definitions import control_cleanup, defs

    setup_target(target_url)
    monkeypatch.setenv("CLEANUP_TARGET_URL", target_url)
    assert defs.resolve_schedule_def("control_cleanup_daily").cron_schedule == "45 3 * * *"
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_run(dg.DagsterRun(job_name="p_import", run_id="running-long", status=dg.DagsterRunStatus.STARTED))
        result = control_cleanup.execute_in_process(instance=instance, run_config={"ops": {"cleanup_op": {"config": {
            "target_url_env": "CLEANUP_TARGET_URL"}}}})
    assert result.success
    # the job's instance knows one run, still running; the others it does not know are judged by age
    assert remaining(target_url)[0] == {"failed-recently", "succeeded", "unknown-recent", "running-long"}
