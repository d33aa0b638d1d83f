"""Stream a compiled SELECT from a PostgreSQL source into a staging table of the target.

The source is read in a READ ONLY transaction by ``COPY (SELECT ...) TO STDOUT``: the server
runs the query as a portal and streams its rows as it produces them, and each block goes straight
into ``COPY ... FROM STDIN`` on the target. Memory holds one block (about 1 MB), whatever the
table's size.
"""

from __future__ import annotations

import json
from hashlib import sha256
from collections.abc import Callable

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.connect import connect
from import_pipelines.db.copy import pin_text_format
from import_pipelines.db.sql import ident, ident_list
from import_pipelines.engine.staging import create_staging
from import_pipelines.query.compile import CompiledQuery

Progress = Callable[[int, int | None], None]

_WRITE_BYTES = 1 << 20
_FIRST_USER_OID = 16384  # FirstNormalObjectId: OIDs below it are the server's built-in types


def estimate_rows(conn: psycopg.Connection, compiled: CompiledQuery) -> int | None:
    """The planner's row estimate for ``compiled`` (cheap; used for progress percentages)."""
    try:
        plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(compiled.statement), compiled.params).fetchone()[0]
    except psycopg.Error:
        return None
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def source_column_types(conn: psycopg.Connection, compiled: CompiledQuery) -> list[str]:
    """The SQL type names (``format_type``) of the compiled SELECT's output columns.

    A type the source database defines itself (an enum, a domain, a composite) does not exist in
    the target: its name is ``text``, which holds its values' text form; the merge casts them to
    the target column's type.
    """
    cur = conn.cursor()
    cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(compiled.statement), compiled.params)
    oids = [d.type_code for d in cur.description]
    names = conn.execute("SELECT CASE WHEN oid >= %s THEN 'text' ELSE format_type(oid, NULL) END"
                         " FROM unnest(%s::oid[]) WITH ORDINALITY AS u(oid, n) ORDER BY n",
                         (_FIRST_USER_OID, oids)).fetchall()
    return [n[0] for n in names]


def staging_type(type_name: str) -> str:
    """The column type a staging table uses for a source output column of ``type_name``."""
    # 'unknown' comes from untyped literals ('x' AS f); text holds them
    return "text" if type_name in ("unknown", "-") else type_name


def stream_to_staging(*, source_url: str, target: psycopg.Connection, compiled: CompiledQuery, table: str,
                      run_id: str, chunk_rows: int, progress: Progress | None = None) -> int:
    """Copy the result of ``compiled`` on the source into staging table ``table``; return the row count.

    ``COPY (<compiled SELECT>) TO STDOUT`` on the source is piped block by block into ``COPY
    FROM STDIN`` on the target: rows never become Python objects, so the extract runs at about the
    speed of a raw copy. Each row's ``_hash`` is the sha256 of its text line, which is how the load
    tells an unchanged record from a changed one. The staging table is created here with the
    source's own column types, and the copy commits on the target as one transaction (the staging
    table is this run's private scratch space).
    """
    # the session is READ ONLY by default (connect(read_only=True)), so the transaction psycopg
    # opens with the first statement is a read-only one
    with connect(source_url, read_only=True) as source:
        for session in (source, target):
            # text COPY carries values as their text form: both sides must write and read the
            # same one, whatever the servers' own DateStyle, IntervalStyle or encoding
            pin_text_format(session)
        types = source_column_types(source, compiled)
        total = estimate_rows(source, compiled)
        create_staging(target, table=table, columns=[(c, staging_type(t)) for c, t in zip(compiled.columns, types)],
                       run_id=run_id)
        copy_out = sql.SQL("COPY ({}) TO STDOUT").format(compiled.statement)
        copy_in = sql.SQL("COPY {} ({}, _hash) FROM STDIN").format(ident(CONTROL_SCHEMA, table),
                                                                 ident_list(compiled.columns))
        rows = 0
        pending = bytearray()
        with source.cursor().copy(copy_out, compiled.params) as reader, target.cursor().copy(copy_in) as writer:
            # the server sends one row per message and libpq hands out one message per block;
            # rows go on to the target in blocks of about 1 MB, each with the sha256 of its line
            # (the source's values in their pinned text form): hashed here, while the target's
            # cores merge the entities this one waits for, not in the merge itself
            for block in reader:
                pending += block[:-1]
                pending += b"\t\\\\x"  # a bytea in text COPY: \\x and the digest in hex
                pending += sha256(block).hexdigest().encode()
                pending += b"\n"
                rows += 1
                if len(pending) >= _WRITE_BYTES:
                    writer.write(pending)
                    pending.clear()
                if progress and rows % chunk_rows == 0:
                    progress(rows, total)
            writer.write(pending)
        if progress and rows % chunk_rows:
            progress(rows, total)
        source.rollback()
    target.commit()
    return rows
