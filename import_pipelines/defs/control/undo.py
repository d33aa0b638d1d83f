"""Jobs that act on what runs did: ``export_data``, ``rollback_import_run``.

Run config names the environment variable holding the target URL, never the URL.
"""

# no ``from __future__ import annotations``: Dagster reads the config annotations of the ops at runtime
import os
from typing import Literal

import dagster as dg

from import_pipelines.settings import TARGET_URL_ENV


def target_url(variable: str) -> str:
    """The URL held by ``variable``; a failure naming it when it is not set."""
    url = os.environ.get(variable)
    if not url:
        raise dg.Failure(description=f"environment variable {variable} is not set")
    return url


class ExportConfig(dg.Config):
    """What to export and where: an entity's rows (profile and entity) or a run's records or errors (run_id)."""

    what: Literal["rows", "records", "errors"] = "records"
    format: Literal["csv", "xlsx", "json", "jsonl"] = "csv"
    profile: str | None = None
    entity: str | None = None
    run_id: str | None = None
    output: str | None = None  # default: .data/exports/<named after what is exported>
    target_url_env: str = TARGET_URL_ENV


@dg.op(description="Stream an entity's target rows, or a run's import records or errors, to CSV, Excel or JSON.",
       tags={"kind": "postgres"})
def export_data_op(context: dg.OpExecutionContext, config: ExportConfig) -> dg.Output:
    """Write the export ``config`` describes; the file's path and row count are the output's metadata."""
    from import_pipelines.control.export import ExportError, default_name, export
    from import_pipelines.db.connect import connection
    from import_pipelines.settings import data_dir

    path = config.output or str(data_dir() / "exports" / default_name(
        what=config.what, fmt=config.format, profile=config.profile, entity=config.entity, run_id=config.run_id))
    with connection(target_url(config.target_url_env), read_only=True, purpose="target of the export") as conn:
        try:
            result = export(conn, what=config.what, fmt=config.format, path=path, profile=config.profile,
                            entity=config.entity, run_id=config.run_id)
        except ExportError as error:
            raise dg.Failure(description=str(error)) from None
    context.log.info(f"exported {result.rows:,} rows to {result.path}")
    return dg.Output(result.rows, metadata={"path": dg.MetadataValue.path(str(result.path)),
                                            "dagster/row_count": result.rows, "format": result.format,
                                            "columns": dg.MetadataValue.json(list(result.columns))})


@dg.job(description="Export target rows or a run's import records or errors (CSV, Excel, JSON), streamed.")
def export_data():
    """Job around :func:`export_data_op`."""
    export_data_op()


class RollbackConfig(dg.Config):
    """The run to undo; a dry run only reports, force undoes rows later runs changed too."""

    run_id: str
    dry_run: bool = False
    force: bool = False
    template: str | None = None  # the profile's template: its reverse dependency order (default: foreign keys)
    target_url_env: str = TARGET_URL_ENV


@dg.op(description="Delete what a run created and restore the before-images of what it changed, in reverse"
                   " dependency order, one transaction per entity.", tags={"kind": "postgres"})
def rollback_run_op(context: dg.OpExecutionContext, config: RollbackConfig) -> dg.Output:
    """Roll back ``config.run_id``; refused (a failure listing the rows) where later runs changed the same rows."""
    from import_pipelines.control.cli import template_order
    from import_pipelines.control.rollback import RollbackError, rollback_run
    from import_pipelines.db.connect import connection

    with connection(target_url(config.target_url_env), autocommit=True, purpose="target of the rollback") as conn:
        try:
            outcome = rollback_run(conn, config.run_id, dry_run=config.dry_run, force=config.force,
                                   order=template_order(config.template), rollback_run_id=context.run_id,
                                   log=context.log.info)
        except RollbackError as error:
            raise dg.Failure(description=str(error)) from None
    context.log.info(outcome.render_text())
    return dg.Output(outcome.total("deleted") + outcome.total("restored") + outcome.total("reinserted"), metadata={
        "deleted": outcome.total("deleted"), "restored": outcome.total("restored"),
        "reinserted": outcome.total("reinserted"), "missing": outcome.total("missing"),
        "conflicts": len(outcome.conflicts), "dry_run": config.dry_run, "report": dg.MetadataValue.md(
            "```\n" + outcome.render_text() + "\n```")})


@dg.job(description="Undo an import run: delete what it created, restore what it changed (dry run and force in config).")
def rollback_import_run():
    """Job around :func:`rollback_run_op`."""
    rollback_run_op()


defs = dg.Definitions(jobs=[export_data, rollback_import_run])
