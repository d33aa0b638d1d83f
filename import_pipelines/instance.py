"""Dagster instance pieces: storage on the project's own database resolution, a run launcher
whose run workers run monitoring can check.

``dagster.yaml`` names this class instead of ``storage: postgres: postgres_url: {env: ...}``
because Dagster refuses to load an instance whose ``env`` source is unset: with this class a
bare ``dagster dev`` or ``dagster definitions validate`` in the project root works too, on
``IMPORT_PIPELINES_DAGSTER_PG_URL`` when it is set and on the embedded server when it is not.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

from import_pipelines.processes import process_alive


class ProjectPostgresStorage(DagsterPostgresStorage):
    """Run, event-log and schedule storage in PostgreSQL (a ``postgresql+psycopg2://`` URL)."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        """``postgres_url`` is optional: without it the project's settings decide."""
        return {"postgres_url": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: dict[str, Any]) -> ProjectPostgresStorage:
        """Build the storage from ``dagster.yaml``'s config (usually empty)."""
        from import_pipelines.settings import ensure_environment

        url = config_value.get("postgres_url") or ensure_environment().dagster
        return cls(postgres_url=url, inst_data=inst_data)


class ProjectRunLauncher(DefaultRunLauncher):
    """Dagster's default run launcher, plus a run-worker health check for run monitoring.

    The default launcher cannot tell whether a run's worker process is alive, so a worker killed
    with SIGKILL (or lost with the code server that started it) left its run STARTED forever,
    holding the source's one-run concurrency slot. Dagster records the worker's process id in an
    engine event ("Started process for run (pid: N)", or the multiprocess executor's parent
    process); this reads the latest one and reports the worker FAILED once that process is gone
    (or a zombie), so the monitoring daemon marks the run failed. Runs without a recorded pid are
    reported RUNNING, never failed on a guess. Like the default launcher, this assumes the worker
    runs on the daemon's machine; other launchers (Kubernetes, Docker) have their own checks.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        """Run monitoring may ask this launcher whether a run's worker is alive."""
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the recorded worker process exists; FAILED once it is gone."""
        pid = run_worker_pid(self._instance, run.run_id)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker process id recorded")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is alive")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)")


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process id the run's latest engine event with a ``pid`` recorded, if any."""
    from dagster._core.events import DagsterEventType

    pid = None
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = event.engine_event_data if event is not None else None
        value = data.metadata.get("pid") if data is not None else None
        if value is not None and str(value.value).isdigit():
            pid = int(value.value)
    return pid
