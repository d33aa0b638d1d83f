"""The Dagster instance of ``dagster.yaml``: run monitoring fails a run whose worker was killed;
the run queue's source key is the source database's identity."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from import_pipelines.components.build import source_tag
from import_pipelines.db.connect import sqlalchemy_url
from import_pipelines.instance import ProjectRunLauncher
from import_pipelines.processes import process_alive
from import_pipelines.settings import DAGSTER_URL_ENV, PROJECT_ROOT


@pytest.fixture
def instance(monkeypatch: pytest.MonkeyPatch, new_database: Callable[[str], str]):
    """The project's dagster.yaml, on a throw-away storage database."""
    monkeypatch.setenv(DAGSTER_URL_ENV, sqlalchemy_url(new_database("dagster")))
    monkeypatch.setenv("DAGSTER_HOME", str(PROJECT_ROOT))
    with dg.DagsterInstance.get() as loaded:
        yield loaded


def started_run(instance: dg.DagsterInstance, pid: int | None) -> DagsterRun:
    run = instance.add_run(DagsterRun(job_name="freescout_demo_import", run_id=str(uuid.uuid4()),
                                      status=DagsterRunStatus.STARTED))
    if pid is not None:
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def test_run_monitoring_fails_a_run_whose_worker_was_killed(instance: dg.DagsterInstance) -> None:
    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    assert instance.run_monitoring_enabled and isinstance(instance.run_launcher, ProjectRunLauncher)
    assert instance.run_monitoring_max_resume_run_attempts == 0
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = started_run(instance, worker.pid)
        unknown = started_run(instance, None)
        assert instance.run_launcher.check_run_worker_health(alive).status.value == "RUNNING"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert not process_alive(worker.pid)
    logger = logging.getLogger("test_run_monitoring")
    for run in (alive, unknown):
        monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logger)
    assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.FAILURE
    # no process id recorded: never failed on a guess
    assert instance.get_run_by_id(unknown.run_id).status == DagsterRunStatus.STARTED


def test_the_source_key_is_the_database_identity_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_A", "postgresql://importer:s3cret@db.example.org:6543/freescout?sslmode=require")
    monkeypatch.setenv("SRC_B", "host=db.example.org port=6543 dbname=freescout user=other password=other")
    monkeypatch.setenv("SRC_BAD", "postgresql://importer:50%off@db.example.org/freescout")
    monkeypatch.delenv("SRC_UNSET", raising=False)
    # two variables naming the same database share one slot
    assert source_tag("SRC_A") == source_tag("SRC_B") == "db.example.org:6543/freescout"
    assert source_tag("SRC_BAD") == "malformed:SRC_BAD" and source_tag("SRC_UNSET") == "unset:SRC_UNSET"


def test_the_profile_job_carries_the_source_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from import_pipelines.components.build import build_profile_defs
    from import_pipelines.components.profile import ImportProfile
    from import_pipelines.resources import ImportRunSettings, PostgresDatabase
    from import_pipelines.templates.loader import load_template

    monkeypatch.setenv("TAG_SOURCE_URL", "postgresql://importer:s3cret@db.example.org:6543/freescout")
    profile = ImportProfile(name="tag", template="freescout", source_url_env="TAG_SOURCE_URL")
    defs = build_profile_defs(profile, load_template("freescout"), resources={
        "tag_source": PostgresDatabase(url=dg.EnvVar("TAG_SOURCE_URL")),
        "tag_target": PostgresDatabase(url=dg.EnvVar("TAG_SOURCE_URL")), "tag_settings": ImportRunSettings()})
    tags = defs.resolve_job_def("tag_import").tags
    assert tags["import_pipelines/source"] == "db.example.org:6543/freescout"
    assert "s3cret" not in str(tags) and "importer" not in str(tags)
