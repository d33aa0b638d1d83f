"""The source catalogue as an asset (``authoring/source_catalogue``) and a check of its connection.

Materialising the asset inspects the source (``IMPORT_PIPELINES_SOURCE_URL`` unless the
``authoring_source`` resource is bound to another variable) and puts what ``python -m
import_pipelines inspect`` prints into the UI: tables with rows, sizes and keys, suggested joins
with their confidence, and the whole catalogue as JSON, samples masked. The asset check
``source_connection`` tests the same connection (reachability, version, read-only state, what the
role may read) and can be run on its own from the asset's page, before anything is inspected.

Dagster 1.13 offers no resource-verification hook (the experimental ``ConfigVerifiable`` interface
of 2023 is not part of it), so the connection test is the resource's ``check_connection`` method,
run by this check.
"""

# no ``from __future__ import annotations``: Dagster reads the config and resource annotations at
# definition time, so they must be real classes
import dagster as dg

from import_pipelines.resources import PostgresDatabase
from import_pipelines.settings import SOURCE_URL_ENV

GROUP = "authoring"


class CatalogueConfig(dg.Config):
    """What to inspect: the schema, whether to read join evidence, whether to show sensitive samples."""

    schema_name: str = "public"
    joins: bool = True
    unmasked: bool = False


@dg.asset(key=["authoring", "source_catalogue"], group_name=GROUP, kinds={"postgres"},
          description="The source's tables, columns, keys, indexes, masked sample values and suggested joins.")
def source_catalogue(context: dg.AssetExecutionContext, config: CatalogueConfig,
                     authoring_source: PostgresDatabase) -> dg.MaterializeResult:
    """Inspect the source and materialise its catalogue as metadata."""
    from import_pipelines.authoring.inspect import inspect_source, row_estimate
    from import_pipelines.db.connect import connection

    report = authoring_source.check_connection()
    if report.server_version is None:
        raise dg.Failure(description=report.render_text(), metadata={"failure": report.failure})
    with connection(authoring_source.connection_url(), read_only=True) as conn:
        catalogue = inspect_source(conn, schema=config.schema_name, unmasked=config.unmasked, joins=config.joins)
    tables = list(catalogue.info.tables.values())
    confident = [s for s in catalogue.join_suggestions if s.confidence >= 0.5]
    context.log.info(f"{report.target}: {len(tables)} tables, {len(confident)} joins suggested with confidence"
                     f" >= 0.5, in {catalogue.seconds:.2f} s")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(len(tables)),
        "source": dg.MetadataValue.text(report.target),
        "server_version": dg.MetadataValue.text(catalogue.server_version),
        "columns": dg.MetadataValue.int(sum(len(t.columns) for t in tables)),
        "estimated_rows": dg.MetadataValue.int(sum(row_estimate(t) or 0 for t in tables)),
        "size_bytes": dg.MetadataValue.int(sum(t.total_bytes or 0 for t in tables)),
        "join_suggestions": dg.MetadataValue.int(len(catalogue.join_suggestions)),
        "confident_joins": dg.MetadataValue.int(len(confident)),
        "tables": dg.MetadataValue.md(_tables_markdown(catalogue)),
        "joins": dg.MetadataValue.md(_joins_markdown(catalogue)),
        "catalogue": dg.MetadataValue.json(catalogue.to_json()),
        "duration_s": dg.MetadataValue.float(round(catalogue.seconds, 3)),
    })


@dg.asset_check(asset=source_catalogue, name="source_connection",
                description="The source answers, and the role may read its tables (DNS, refused, authentication, "
                            "SSL and privilege problems are named).")
def source_connection(authoring_source: PostgresDatabase) -> dg.AssetCheckResult:
    """Test the source connection; fails with the classified problem and what to check."""
    report = authoring_source.check_connection()
    readable = sum(a.readable for a in report.access)
    return dg.AssetCheckResult(passed=report.ok, metadata={
        "source": report.target, "failure": report.failure or "", "message": report.message,
        "server_version": report.server_version or "", "read_only": bool(report.read_only),
        "readable_tables": readable, "tables": sum(a.tables for a in report.access)})


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _tables_markdown(catalogue) -> str:
    from import_pipelines.authoring.inspect import human_bytes, row_estimate

    lines = ["| table | rows (est.) | size | primary key | columns |", "|---|---:|---:|---|---:|"]
    for table in catalogue.info.tables.values():
        estimate = row_estimate(table)
        lines.append(f"| {_cell(table.name)} | {'?' if estimate is None else f'{estimate:,}'} |"
                     f" {human_bytes(table.total_bytes) or '?'} | {_cell(', '.join(table.primary_key))} |"
                     f" {len(table.columns)} |")
    return "\n".join(lines)


def _joins_markdown(catalogue) -> str:
    if not catalogue.join_suggestions:
        return "_no join suggestions_"
    lines = ["| from | to | confidence | evidence |", "|---|---|---:|---|"]
    lines += [f"| {_cell(s.from_ref)} | {_cell(s.to_ref)} | {s.confidence:.2f} | {_cell(s.summary())} |"
              for s in catalogue.join_suggestions]
    return "\n".join(lines)


defs = dg.Definitions(assets=[source_catalogue], asset_checks=[source_connection],
                      resources={"authoring_source": PostgresDatabase(url=dg.EnvVar(SOURCE_URL_ENV))})
