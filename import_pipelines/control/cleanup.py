"""What runs leave behind: staging tables of runs that are over, and scratch rows that only grow.

A run drops its staging tables when its loads finish; a run that failed, was cancelled or whose
worker was killed leaves them (UNLOGGED copies of source rows). :func:`cleanup` drops those of
runs that are over, by what the Dagster instance knows of each table's run:

- a run in progress, or one whose run group has a run in progress (a re-execution reading its
  parent's staging), is never touched;
- a run that succeeded is over;
- a run that failed or was cancelled keeps its tables for ``older_than_hours`` (default 24): a
  re-execution from failure reads them and goes on from where the run stopped;
- a run the instance does not know (run from the command line or a benchmark, another instance,
  or no instance at all) is over after ``older_than_hours``.

Then the scratch of ``pending_references`` and ``dry_run_records`` older than ``scratch_days``
is pruned (:func:`import_pipelines.control.retention.prune_scratch`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg

from import_pipelines.control.retention import SCRATCH_DAYS, prune_scratch
from import_pipelines.engine.staging import sweep_staging

if TYPE_CHECKING:
    import dagster as dg

DEFAULT_OLDER_THAN_HOURS = 24.0


@dataclass
class CleanupOutcome:
    """What a clean-up dropped and pruned (or, for a dry run, would have)."""

    swept: list[str] = field(default_factory=list)
    pruned: dict[str, int] = field(default_factory=dict)
    judged_by: str = "age"  # "dagster instance" when the instance's run statuses decided

    def summary(self, *, dry_run: bool) -> str:
        """One line for a log or a terminal."""
        verb = "would drop" if dry_run else "dropped"
        return (f"{verb} {len(self.swept)} staging tables of runs that are over (judged by {self.judged_by})"
                + (f": {', '.join(self.swept)}" if self.swept else "")
                + f"; {'would prune' if dry_run else 'pruned'} scratch rows: "
                + ", ".join(f"{table} {count:,}" for table, count in self.pruned.items()))


def cleanup(conn: psycopg.Connection, *, instance: dg.DagsterInstance | None = None,
            older_than_hours: float = DEFAULT_OLDER_THAN_HOURS, scratch_days: int = SCRATCH_DAYS,
            dry_run: bool = False) -> CleanupOutcome:
    """Drop the staging tables of runs that are over and prune old scratch rows (see the module)."""
    outcome = CleanupOutcome(judged_by="dagster instance" if instance is not None else "age")
    outcome.swept = sweep_staging(conn, dead=run_is_over(instance, older_than_hours=older_than_hours),
                                  dry_run=dry_run)
    with conn.transaction():
        outcome.pruned = prune_scratch(conn, before=dt.datetime.now(dt.UTC) - dt.timedelta(days=scratch_days),
                                       dry_run=dry_run)
    return outcome


def run_is_over(instance: dg.DagsterInstance | None, *,
                older_than_hours: float) -> Callable[[str, str | None, float], bool]:
    """``dead(run_id, run_group, age_hours)`` for :func:`~import_pipelines.engine.staging.sweep_staging`."""
    if instance is None:
        return lambda run_id, group, age: age > older_than_hours
    import dagster as dg

    statuses = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    in_progress = instance.get_runs(filters=dg.RunsFilter(statuses=statuses))
    active = {run.run_id for run in in_progress} | {run.root_run_id for run in in_progress if run.root_run_id}

    def dead(run_id: str, group: str | None, age: float) -> bool:
        if run_id in active or (group is not None and group in active):
            return False
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            return True
        return age > older_than_hours

    return dead
