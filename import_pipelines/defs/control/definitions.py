"""``control_retention``: drop expired audit partitions, delete rows past a profile's retention.

Run config names the environment variable holding the target URL, never the URL. A daily
schedule (stopped until switched on in the UI, like the import schedules) runs it at 03:15.
"""

# no ``from __future__ import annotations``: Dagster reads the config annotations of the ops at runtime
import os

import dagster as dg

from import_pipelines.defs.control import undo
from import_pipelines.settings import TARGET_URL_ENV


class RetentionConfig(dg.Config):
    """Which target's control schema to trim, and whether only to report."""

    target_url_env: str = TARGET_URL_ENV
    dry_run: bool = False


@dg.op(description="Drop audit partitions older than every profile keeps, delete rows past shorter retentions,"
                   " prune old scratch rows.", tags={"kind": "postgres"})
def apply_retention_op(context: dg.OpExecutionContext, config: RetentionConfig) -> dg.Output:
    """Apply the profiles' retention to the target named by ``config.target_url_env``."""
    from import_pipelines.control import ensure_control_schema
    from import_pipelines.control.retention import apply_retention
    from import_pipelines.db.connect import connection

    url = os.environ.get(config.target_url_env)
    if not url:
        raise dg.Failure(description=f"environment variable {config.target_url_env} is not set")
    with connection(url, autocommit=True, purpose="target of the retention job") as conn:
        ensure_control_schema(conn)
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


defs = dg.Definitions(jobs=[control_retention], schedules=[dg.ScheduleDefinition(
    name="control_retention_daily", job=control_retention, cron_schedule="15 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED)])
# rollback, retry of failed records, exports (defs/control/undo.py)
defs = dg.Definitions.merge(defs, undo.defs)
