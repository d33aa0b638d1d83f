"""Jobs that act on what runs did: ``export_data``, ``rollback_import_run``, ``retry_failed_records``.

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
    from import_pipelines.control.cli import run_profile, template_order
    from import_pipelines.control.rollback import RollbackError, rollback_run
    from import_pipelines.db.connect import connection

    url = target_url(config.target_url_env)
    order = template_order(config.template or run_profile(url, config.run_id).get("template"))
    with connection(url, autocommit=True, purpose="target of the rollback") as conn:
        try:
            outcome = rollback_run(conn, config.run_id, dry_run=config.dry_run, force=config.force,
                                   order=order, rollback_run_id=context.run_id,
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


class RetryConfig(dg.Config):
    """The run whose failed records to import again; the template and source default to its profile's."""

    run_id: str
    template: str | None = None
    entities: list[str] | None = None
    source_system: str | None = None
    source_url_env: str | None = None
    target_url_env: str = TARGET_URL_ENV


@dg.op(description="Import again only the records that failed in a run, as a new run with its own audit.",
       tags={"kind": "postgres"})
def retry_failed_op(context: dg.OpExecutionContext, config: RetryConfig) -> dg.Output:
    """Retry ``config.run_id``'s failed records through the import path, each source query narrowed to them."""
    from import_pipelines.control.cli import run_profile
    from import_pipelines.control.retry import RetryError, retry_failed
    from import_pipelines.settings import SOURCE_URL_ENV
    from import_pipelines.templates.loader import TemplateError, load_template

    target = target_url(config.target_url_env)
    profile = run_profile(target, config.run_id)
    name = config.template or profile.get("template")
    if not name:
        raise dg.Failure(description=f"no profile in the code location made run {config.run_id}; give its template")
    try:
        outcome = retry_failed(
            config.run_id, template=load_template(name), target_url=target,
            source_url=target_url(config.source_url_env or profile.get("source_url_env") or SOURCE_URL_ENV),
            source_system=config.source_system or profile.get("source_system"), entities=config.entities,
            retry_run_id=context.run_id, log=context.log.info)
    except (RetryError, TemplateError) as error:
        raise dg.Failure(description=str(error)) from None
    context.log.info(outcome.render_text())
    loaded = sum(n for counts in outcome.counts.values() for action, n in counts.items()
                 if action in ("created", "updated"))
    return dg.Output(loaded, metadata={"failed_before": dg.MetadataValue.json(outcome.failed),
                                       "counts": dg.MetadataValue.json(outcome.counts),
                                       "without_source_id": dg.MetadataValue.json(outcome.without_id)})


@dg.job(description="Import again only the records that failed in a run (after the template or data was fixed).")
def retry_failed_records():
    """Job around :func:`retry_failed_op`."""
    retry_failed_op()


defs = dg.Definitions(jobs=[export_data, rollback_import_run, retry_failed_records])
