"""Stream a compiled SELECT from a PostgreSQL source into a staging table of the target.

The source is read in a READ ONLY transaction through a server-side (named) cursor, a chunk
at a time, in binary; each chunk goes to the target with COPY. Memory holds one chunk, whatever
the table's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
from psycopg import sql

from import_pipelines.db.connect import connect
from import_pipelines.db.sql import ident
from import_pipelines.query.compile import CompiledQuery

Progress = Callable[[int, int | None], None]


def estimate_rows(conn: psycopg.Connection, compiled: CompiledQuery) -> int | None:
    """The planner's row estimate for ``compiled`` (cheap; used for progress percentages)."""
    try:
        plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(compiled.statement), compiled.params).fetchone()[0]
    except psycopg.Error:
        return None
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def source_column_types(conn: psycopg.Connection, compiled: CompiledQuery) -> tuple[list[int], list[str]]:
    """The type OIDs and SQL type names (``format_type``) of the compiled SELECT's output columns."""
    cur = conn.cursor()
    cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(compiled.statement), compiled.params)
    oids = [d.type_code for d in cur.description]
    names = conn.execute("SELECT format_type(oid, NULL) FROM unnest(%s::oid[]) WITH ORDINALITY AS u(oid, n) ORDER BY n",
                         (oids,)).fetchall()
    return oids, [n[0] for n in names]


def create_staging_table(target: psycopg.Connection, *, schema: str, table: str, columns: list[str],
                         types: list[str]) -> None:
    """Create an UNLOGGED staging table: the source columns plus a row number and dedupe/validation slots."""
    body = sql.SQL(", ").join(sql.SQL("{} {}").format(ident(c), sql.SQL(staging_type(t))) for c, t in zip(columns, types))
    target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(schema, table)))
    target.execute(sql.SQL(
        "CREATE UNLOGGED TABLE {} (_rn bigint GENERATED ALWAYS AS IDENTITY, {}, _dup_of text, _error text,"
        " _match_tid text, _confidence real, _match jsonb)"
    ).format(ident(schema, table), body))


def staging_type(type_name: str) -> str:
    """The column type a staging table uses for a source output column of ``type_name``."""
    # 'unknown' comes from untyped literals ('x' AS f); text holds them
    return "text" if type_name in ("unknown", "-") else type_name


def stream_to_staging(*, source_url: str, target: psycopg.Connection, compiled: CompiledQuery, schema: str,
                      table: str, chunk_rows: int, progress: Progress | None = None) -> int:
    """Copy the result of ``compiled`` on the source into ``schema.table``; return the row count.

    The staging table is created here with the source's own column types, and the copy commits
    on the target as one transaction (the staging table is this run's private scratch space).
    """
    # the session is READ ONLY by default (connect(read_only=True)), so the transaction psycopg
    # opens with the first statement is a read-only one
    with connect(source_url, read_only=True) as source:
        oids, types = source_column_types(source, compiled)
        # binary both ways when psycopg knows every type; text otherwise (e.g. a source enum)
        binary = all(oid in psycopg.adapters.types for oid in oids)
        total = estimate_rows(source, compiled)
        create_staging_table(target, schema=schema, table=table, columns=compiled.columns, types=types)
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            ident(schema, table), sql.SQL(", ").join(ident(c) for c in compiled.columns),
            sql.SQL(" (FORMAT BINARY)" if binary else ""))
        rows = 0
        with source.cursor(name="import_pipelines_extract", binary=binary) as cursor:
            cursor.itersize = chunk_rows
            cursor.execute(compiled.statement, compiled.params)
            with target.cursor().copy(copy_sql) as copy:
                if binary:
                    copy.set_types(oids)
                while chunk := cursor.fetchmany(chunk_rows):
                    for row in chunk:
                        copy.write_row(row)
                    rows += len(chunk)
                    if progress:
                        progress(rows, total)
        source.rollback()
    target.commit()
    return rows
