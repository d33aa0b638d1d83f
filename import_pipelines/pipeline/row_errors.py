"""Every rejected row of a run, one row per problem, in ``import_control.import_errors`` and a CSV.

A record that fails carries its errors joined by ``"; "`` in its audit row (the read, a template
rule, a field rule, the database). After the load, each of them becomes a row of
``import_errors`` with where the record came from (``source_ref``: the file and line, the sheet and
row, the push and item), its row number, the field named, an error type, the message and the
record's staged values (``row_data``). The types:

| error_type | from |
|---|---|
| ``unreadable`` | the source could not read the row: a ragged row, an unterminated quote, undecodable bytes, not an object |
| ``footer`` | a footer line ("Total", "Exported by ...") |
| a rule's ``error`` | a template's ``records.reject`` rule (``no_contact``, ``invalid_email``) |
| ``required`` / ``too_long`` / ``invalid_value`` | the map step's field rules |
| ``expectation`` | an entity's ``validate`` rules |
| ``no_identifier`` | the record's source id is empty |
| ``missing_reference`` | a referenced record is not there |
| ``rejected`` | anything else: the database refused the row (a CHECK, a cast) |

The run's report, ``<data>/reports/<run>/<profile>_<entity>_errors.csv``, lists the same rows;
its path is in the load step's metadata (``error_report``).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.copy import copy_report
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef
from import_pipelines.sources.tabular import FOOTER_ERROR
from import_pipelines.templates.model import Entity

REPORT_COLUMNS = ("source_ref", "row_number", "field", "error_type", "message", "row_data")
# message shapes -> type, in order; a template's own rules come first
_KNOWN: tuple[tuple[str, str], ...] = (
    (FOOTER_ERROR, "footer"),
    ("% fields where the header has %", "unreadable"),
    ("unterminated quote:%", "unreadable"),
    ("undecodable bytes in %", "unreadable"),
    ("%, not an object%", "unreadable"),
    ("%: required, but empty (%", "required"),
    ("%: % characters, % holds %", "too_long"),
    ("%: % is not a valid %", "invalid_value"),
    ("%: the source identifier is empty", "no_identifier"),
    ("%: no % with %", "missing_reference"),
    ("%: required reference (%) is empty", "missing_reference"),
    ("%: failed expectation %", "expectation"),
)


def error_type(entity: Entity) -> sql.Composable:
    """SQL naming the type of one error message ``part`` (see the module table)."""
    shapes = [(f"{rule.field}: %{rule.message}", rule.error) for rule in (entity.records.reject if entity.records
                                                                          else [])]
    whens = sql.SQL(" ").join(sql.SQL("WHEN part LIKE {} THEN {}").format(sql.Literal(_like(shape)), sql.Literal(kind))
                              for shape, kind in [*shapes, *_KNOWN])
    return sql.SQL("CASE {} ELSE 'rejected' END").format(whens)


def _like(shape: str) -> str:
    """A message shape as a LIKE pattern: its ``%`` wildcards kept, ``_`` and backslashes literal."""
    return shape.replace("\\", "\\\\").replace("_", "\\_")


def record_row_errors(conn: psycopg.Connection, *, entity: Entity, staging: str, run: RunRef, stream_id: int,
                      profile: str, entity_name: str) -> int:
    """Write one ``import_errors`` row per error of every record this run failed for the stream; return how many.

    Run after the load, before its staging table is dropped (the rows' values come from it).
    Idempotent for a retried step: the stream's earlier rows of this run are replaced.
    """
    control = ident(CONTROL_SCHEMA)
    conn.execute(sql.SQL("DELETE FROM {}.import_errors WHERE run_id = %s AND profile = %s AND entity = %s"
                         " AND stage = 'row'").format(control), (run.run_id, profile, entity_name))
    # no parameters: the LIKE patterns' % signs stay characters of the statement
    return conn.execute(sql.SQL(
        "INSERT INTO {control}.import_errors (run_id, profile, entity, source_id, stage, field, message, source_ref,"
        " row_number, error_type, row_data)"
        " SELECT {run_id}, {profile}, {entity}, a.source_id, 'row',"
        "  substring(part FROM '^([A-Za-z_][A-Za-z0-9_]*): '), part, a.source_ref,"
        "  substring(a.source_ref FROM '([0-9]+)$')::bigint, {kind},"
        "  (SELECT jsonb_object_agg(k, v) FROM jsonb_each(to_jsonb(s)) AS f(k, v) WHERE left(k, 1) <> '_')"
        " FROM {control}.audit_records AS a LEFT JOIN {staging} AS s ON s._rn = a.record_no"
        " CROSS JOIN LATERAL string_to_table(coalesce(a.error, 'failed'), '; ') AS part"
        " WHERE a.run_day = {day} AND a.run_seq = {seq} AND a.stream_id = {stream} AND a.action = 'failed'"
        " ORDER BY a.record_no").format(
        control=control, kind=error_type(entity), staging=ident(CONTROL_SCHEMA, staging),
        run_id=sql.Literal(run.run_id), profile=sql.Literal(profile), entity=sql.Literal(entity_name),
        day=sql.Literal(run.run_day), seq=sql.Literal(run.run_seq), stream=sql.Literal(stream_id))).rowcount


def write_error_report(conn: psycopg.Connection, *, run_id: str, profile: str, entity: str) -> str:
    """The run's rejected rows of ``entity`` as ``<data>/reports/<run>/<profile>_<entity>_errors.csv``; its path."""
    query = sql.SQL("COPY (SELECT {} FROM {}.import_errors WHERE run_id = {} AND profile = {} AND entity = {}"
                    " AND stage = 'row' ORDER BY error_id) TO STDOUT (FORMAT CSV, HEADER)").format(
        sql.SQL(", ").join(map(ident, REPORT_COLUMNS)), ident(CONTROL_SCHEMA), sql.Literal(run_id),
        sql.Literal(profile), sql.Literal(entity))
    return copy_report(conn, query, run_id=run_id, name=f"{profile}_{entity}_errors.csv")


def error_counts(conn: psycopg.Connection, *, run_id: str, profile: str, entity: str) -> dict[str, int]:
    """How many errors of each type the run recorded for ``entity``."""
    return dict(conn.execute("SELECT error_type, count(*) FROM import_control.import_errors WHERE run_id = %s"
                             " AND profile = %s AND entity = %s AND stage = 'row' GROUP BY error_type"
                             " ORDER BY count(*) DESC, error_type", (run_id, profile, entity)).fetchall())


def report_row_errors(conn: psycopg.Connection, *, entity: Entity, staging: str, run: RunRef, stream_id: int,
                      profile: str, entity_name: str, log=print) -> str | None:
    """Record the run's rejected rows of the stream and write its error report; the report's path, or None."""
    count = record_row_errors(conn, entity=entity, staging=staging, run=run, stream_id=stream_id, profile=profile,
                              entity_name=entity_name)
    if not count:
        return None
    path = write_error_report(conn, run_id=run.run_id, profile=profile, entity=entity_name)
    kinds = error_counts(conn, run_id=run.run_id, profile=profile, entity=entity_name)
    log(f"{entity_name} load: {count:,} errors in rejected rows ({', '.join(f'{k} {n:,}' for k, n in kinds.items())});"
        f" report {path}")
    return path
