"""``control_retention``: drop expired audit partitions, delete rows past a profile's retention;
``control_cleanup``: drop the staging tables of runs that are over, prune old scratch rows;
``import_analytics``: an asset summarising what the imports did over the last days.

Run config names the environment variable holding the target URL, never the URL. Daily
schedules (stopped until switched on in the UI, like the import schedules) run them at 03:15,
03:45 and 04:00.
"""

# no ``from __future__ import annotations``: Dagster reads the config annotations of the ops at runtime
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from import_pipelines.defs.control import undo
from import_pipelines.settings import TARGET_URL_ENV


@contextmanager
def control_target(url_env: str, *, job: str) -> Iterator[psycopg.Connection]:
    """An autocommit session on the target named by the variable ``url_env``, its control schema current."""
    from import_pipelines.control import ensure_control_schema
    from import_pipelines.db.connect import connection

    with connection(undo.target_url(url_env), autocommit=True, purpose=f"target of the {job} job") as conn:
        ensure_control_schema(conn)
        yield conn


class RetentionConfig(dg.Config):
    """Which target's control schema to trim, and whether only to report."""

    target_url_env: str = TARGET_URL_ENV
    dry_run: bool = False


@dg.op(description="Drop audit partitions older than every profile keeps, delete rows past shorter retentions,"
                   " prune old scratch rows.", tags={"kind": "postgres"})
def apply_retention_op(context: dg.OpExecutionContext, config: RetentionConfig) -> dg.Output:
    """Apply the profiles' retention to the target named by ``config.target_url_env``."""
    from import_pipelines.control.retention import apply_retention

    with control_target(config.target_url_env, job="retention") as conn:
        outcome = apply_retention(conn, dry_run=config.dry_run)
    verb = "would drop" if config.dry_run else "dropped"
    context.log.info(f"{verb} {len(outcome.dropped_partitions)} audit partitions"
                     f" ({', '.join(outcome.dropped_partitions) or 'none'}), deleted rows {outcome.deleted_rows},"
                     f" pruned {outcome.pruned_scratch} scratch rows")
    return dg.Output(len(outcome.dropped_partitions), metadata={
        "dropped_partitions": dg.MetadataValue.json(outcome.dropped_partitions),
        "deleted_rows": dg.MetadataValue.json(outcome.deleted_rows),
        "pruned_scratch": outcome.pruned_scratch, "dry_run": config.dry_run})


@dg.job(description="Trim the per-record audit to each profile's retention (summaries are kept for ever).")
def control_retention():
    """Job around :func:`apply_retention_op`."""
    apply_retention_op()


class CleanupConfig(dg.Config):
    """Which target to clean, how long the staging of failed runs is kept, and whether only to report."""

    target_url_env: str = TARGET_URL_ENV
    older_than_hours: float = 24.0
    scratch_days: int = 30
    dry_run: bool = False


@dg.op(description="Drop the staging tables of runs that are over (by this instance's run statuses) and prune"
                   " pending references and dry-run records older than scratch_days.", tags={"kind": "postgres"})
def cleanup_op(context: dg.OpExecutionContext, config: CleanupConfig) -> dg.Output:
    """Clean the control schema of the target named by ``config.target_url_env``."""
    from import_pipelines.control.cleanup import cleanup

    with control_target(config.target_url_env, job="clean-up") as conn:
        outcome = cleanup(conn, instance=context.instance, older_than_hours=config.older_than_hours,
                          scratch_days=config.scratch_days, dry_run=config.dry_run)
    context.log.info(outcome.summary(dry_run=config.dry_run))
    return dg.Output(len(outcome.swept), metadata={
        "staging_tables": dg.MetadataValue.json(outcome.swept), "dry_run": config.dry_run,
        **{f"pruned_{table}": count for table, count in outcome.pruned.items()}})


@dg.job(description="Drop staging tables that runs which are over left behind; prune old scratch rows.")
def control_cleanup():
    """Job around :func:`cleanup_op`."""
    cleanup_op()


class AnalyticsConfig(dg.Config):
    """Which target's imports to summarise, over how many days back from now."""

    target_url_env: str = TARGET_URL_ENV
    days: int = 30


@dg.asset(group_name="control", kinds={"postgres"},
          description="What the imports into the target did over the last days, per profile and entity: runs,"
                      " rows, every action, failure rate, rows/s, duplicates merged, reviews waiting, errors by type.")
def import_analytics(context: dg.AssetExecutionContext, config: AnalyticsConfig) -> dg.MaterializeResult:
    """Summarise the target's control schema (:func:`import_pipelines.control.analytics.import_history`)."""
    from import_pipelines.control.analytics import import_history

    with control_target(config.target_url_env, job="analytics") as conn:
        history = import_history(conn, days=config.days)
    totals = history.totals()
    context.log.info(f"the last {config.days} days: {totals['runs']:,} runs of {len(history.streams)} streams,"
                     f" {totals['source_rows']:,} source rows, {totals['failed']:,} failed")
    return dg.MaterializeResult(metadata={
        **{name: dg.MetadataValue.float(value) if isinstance(value, float) else dg.MetadataValue.int(value)
           for name, value in totals.items()},
        "days": config.days, "streams": dg.MetadataValue.md(history.render_markdown())})


import_analytics_job = dg.define_asset_job("import_analytics_job", selection=[import_analytics],
                                           description="Materialise import_analytics")

defs = dg.Definitions(assets=[import_analytics], jobs=[control_retention, control_cleanup, import_analytics_job],
                      schedules=[dg.ScheduleDefinition(name=name, job=job, cron_schedule=cron,
                                                       default_status=dg.DefaultScheduleStatus.STOPPED)
                                 for name, job, cron in (("control_retention_daily", control_retention, "15 3 * * *"),
                                                         ("control_cleanup_daily", control_cleanup, "45 3 * * *"),
                                                         ("import_analytics_daily", import_analytics_job, "0 4 * * *"))])
# rollback, retry of failed records, exports (defs/control/undo.py)
defs = dg.Definitions.merge(defs, undo.defs)
