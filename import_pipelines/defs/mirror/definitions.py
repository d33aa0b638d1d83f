"""Dagster jobs for whole-database copies: ``mirror_database``, ``export_archive``, ``import_archive``.

Run config names the environment variables that hold the database URLs, never the URLs
themselves, so secrets stay out of run config, logs and metadata. Importing this module is
cheap: the mirror machinery (and psycopg) load inside the ops.

Each table the target receives is reported as an ``AssetMaterialization`` of ``["mirror", table]``
with its counts (created / updated / skipped / unchanged / failed), ``dagster/row_count`` and
rows/s; an exported archive as ``["mirror_archive"]`` with its manifest summary.
"""

# no ``from __future__ import annotations``: Dagster reads the config annotations of the ops at
# runtime, so they must be real classes, not strings
import os
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from import_pipelines.settings import SOURCE_URL_ENV, TARGET_URL_ENV

if TYPE_CHECKING:
    from import_pipelines.mirror.report import MirrorReport, TableReport

MirrorMode = Literal["create_only", "upsert"]


class MirrorConfig(dg.Config):
    """Copy the source database into the target (``mirror``)."""

    source_url_env: str = SOURCE_URL_ENV
    target_url_env: str = TARGET_URL_ENV
    mode: MirrorMode = "upsert"
    tables: list[str] | None = None
    overrides: str | None = None
    schema_name: str = "public"
    batch_rows: int = 50_000
    workers: int = 2


class ExportArchiveConfig(dg.Config):
    """Write the source database to an id-independent ``.tar.gz`` archive."""

    source_url_env: str = SOURCE_URL_ENV
    path: str
    tables: list[str] | None = None
    overrides: str | None = None
    schema_name: str = "public"


class ImportArchiveConfig(dg.Config):
    """Load an archive into the target database."""

    target_url_env: str = TARGET_URL_ENV
    path: str
    mode: MirrorMode = "upsert"
    tables: list[str] | None = None
    overrides: str | None = None
    schema_name: str = "public"
    batch_rows: int = 50_000
    workers: int = 2


def _url(env_name: str) -> str:
    value = os.environ.get(env_name)
    if not value:
        raise dg.Failure(description=f"environment variable {env_name} is not set (it should hold a database URL)")
    return value


def _table_metadata(report: "TableReport") -> dict[str, Any]:
    return {"dagster/row_count": report.rows, "created": report.created, "updated": report.updated,
            "skipped": report.skipped, "unchanged": report.unchanged, "failed": report.failed,
            "rows_per_s": dg.FloatMetadataValue(round(report.rows_per_s, 1)),
            "seconds": dg.FloatMetadataValue(round(report.seconds, 3))}


def _report_events(report: "MirrorReport", *, source: str) -> list[Any]:
    """One materialization per table, then the op's output with the run totals."""
    events: list[Any] = [
        dg.AssetMaterialization(asset_key=dg.AssetKey(["mirror", table.table]), description=f"loaded from {source}",
                                metadata=_table_metadata(table))
        for table in report.tables.values()]
    errors = "\n".join(f"| {e.table} | {e.natural_key} | {e.column} | {e.referenced_table} | {e.missing_key} |"
                       for e in report.errors[:50])
    metadata: dict[str, Any] = {
        "dagster/row_count": report.rows, **{action: report.total(action) for action in
                                             ("created", "updated", "skipped", "unchanged", "failed")},
        "late_seeded": report.late_seeded, "error_count": report.error_count,
        "rows_per_s": dg.FloatMetadataValue(round(report.rows / report.seconds, 1) if report.seconds else 0.0),
        "deferred_references": dg.MetadataValue.json(report.deferred_references),
    }
    if errors:
        metadata["errors"] = dg.MetadataValue.md(
            "| table | natural key | column | references | missing key |\n|---|---|---|---|---|\n" + errors)
    events.append(dg.Output(report.as_dict(), metadata=metadata))
    return events


def _progress(context: dg.OpExecutionContext):
    def log(table: "TableReport") -> None:
        context.log.info(f"{table.table}: {table.rows} rows - {table.created} created, {table.updated} updated, "
                         f"{table.skipped} skipped, {table.unchanged} unchanged, {table.failed} failed "
                         f"({table.rows_per_s:.0f} rows/s)")
    return log


def _finish(context: dg.OpExecutionContext, report: "MirrorReport") -> None:
    for warning in report.warnings:
        context.log.warning(warning)
    for error in report.errors[:20]:
        context.log.warning(error.message)
    context.log.info(f"{report.rows} rows in {report.seconds:.1f}s, {report.late_seeded} references late-seeded, "
                     f"{report.error_count} errors")


@dg.op(description="Copy every table of the source database into the target, matching rows by natural key.",
       tags={"kind": "postgres"})
def mirror_tables(context: dg.OpExecutionContext, config: MirrorConfig):
    """Mirror the source into the target; one materialization per table."""
    from import_pipelines.mirror import MirrorError, mirror

    context.log.info(f"mirroring ${config.source_url_env} into ${config.target_url_env} (mode {config.mode})")
    try:
        report = mirror(_url(config.source_url_env), _url(config.target_url_env), mode=config.mode,
                        tables=config.tables, overrides=config.overrides, schema=config.schema_name,
                        run_id=context.run_id, batch_rows=config.batch_rows, workers=config.workers,
                        on_progress=_progress(context))
    except MirrorError as exc:
        raise dg.Failure(description=str(exc)) from exc
    _finish(context, report)
    yield from _report_events(report, source=f"${config.source_url_env}")


@dg.op(description="Write the source database to an id-independent .tar.gz archive with a checksummed manifest.",
       tags={"kind": "postgres"})
def write_archive(context: dg.OpExecutionContext, config: ExportArchiveConfig):
    """Export the source to ``config.path``; materializes ``["mirror_archive"]``."""
    from import_pipelines.mirror import MirrorError, export_archive

    try:
        manifest = export_archive(_url(config.source_url_env), config.path, tables=config.tables,
                                  overrides=config.overrides, schema=config.schema_name)
    except MirrorError as exc:
        raise dg.Failure(description=str(exc)) from exc
    for table in manifest.tables:
        context.log.info(f"{table.name}: {table.rows} rows, sha256 {table.sha256[:12]}")
    rows = sum(table.rows for table in manifest.tables)
    yield dg.AssetMaterialization(
        asset_key=dg.AssetKey(["mirror_archive"]), description=config.path,
        metadata={"path": dg.MetadataValue.path(config.path), "dagster/row_count": rows,
                  "tables": dg.MetadataValue.json({t.name: t.rows for t in manifest.tables}),
                  "schema_fingerprint": manifest.schema_fingerprint})
    yield dg.Output(manifest.to_json(), metadata={"dagster/row_count": rows, "tables": len(manifest.tables)})


@dg.op(description="Verify an archive's checksums and load it into the target like a mirror.",
       tags={"kind": "postgres"})
def load_archive(context: dg.OpExecutionContext, config: ImportArchiveConfig):
    """Import ``config.path`` into the target; one materialization per table."""
    from import_pipelines.mirror import MirrorError, import_archive

    context.log.info(f"importing {config.path} into ${config.target_url_env} (mode {config.mode})")
    try:
        report = import_archive(config.path, _url(config.target_url_env), mode=config.mode, tables=config.tables,
                                overrides=config.overrides, schema=config.schema_name, run_id=context.run_id,
                                batch_rows=config.batch_rows, workers=config.workers, on_progress=_progress(context))
    except MirrorError as exc:
        raise dg.Failure(description=str(exc)) from exc
    _finish(context, report)
    yield from _report_events(report, source=config.path)


@dg.job(description="Copy a whole database (dev -> prod) into a live target whose ids differ.")
def mirror_database():
    """Job around :func:`mirror_tables`."""
    mirror_tables()


@dg.job(description="Export a database to an id-independent archive.")
def export_archive():
    """Job around :func:`write_archive`."""
    write_archive()


@dg.job(description="Import an archive into the target database.")
def import_archive():
    """Job around :func:`load_archive`."""
    load_archive()


defs = dg.Definitions(jobs=[mirror_database, export_archive, import_archive])
