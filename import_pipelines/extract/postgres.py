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

from import_pipelines.db.connect import connect
from import_pipelines.db.sql import SCRATCH_TABLE, ident, ident_list
from import_pipelines.db.text_copy import clean_line, copy_text, invalid_lines
from import_pipelines.query.compile import CompiledQuery
from import_pipelines.templates.model import OnInvalidText

Progress = Callable[[int, int | None], None]
InvalidText = Callable[[int, str], None]

_WRITE_BYTES = 1 << 20
_FIRST_USER_OID = 16384  # FirstNormalObjectId: OIDs below it are the server's built-in types
# standard_conforming_strings: a backslash in a checked literal is a plain character, as sqlglot read it
_PORTABLE_TEXT = ("SET datestyle = 'ISO, YMD'; SET intervalstyle = 'postgres'; SET client_encoding = 'UTF8';"
                  " SET standard_conforming_strings = on")


def estimate_rows(conn: psycopg.Connection, compiled: CompiledQuery) -> int | None:
    """The planner's row estimate for ``compiled`` (cheap; used for progress percentages)."""
    try:
        plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(compiled.statement)).fetchone()[0]
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
    cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(compiled.statement))
    oids = [d.type_code for d in cur.description]
    names = conn.execute("SELECT CASE WHEN oid >= %s THEN 'text' ELSE format_type(oid, NULL) END"
                         " FROM unnest(%s::oid[]) WITH ORDINALITY AS u(oid, n) ORDER BY n",
                         (_FIRST_USER_OID, oids)).fetchall()
    return [n[0] for n in names]


def create_staging_table(target: psycopg.Connection, *, schema: str, table: str, columns: list[str],
                         types: list[str]) -> None:
    """Create an UNLOGGED staging table: the source columns plus a row number, the row's source hash
    (``_hash``) and dedupe/validation slots; a scratch table autovacuum leaves alone."""
    body = sql.SQL(", ").join(sql.SQL("{} {}").format(ident(c), sql.SQL(staging_type(t))) for c, t in zip(columns, types))
    target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(schema, table)))
    target.execute(sql.SQL(
        "CREATE UNLOGGED TABLE {} (_rn bigint GENERATED ALWAYS AS IDENTITY, {}, _hash text, _dup_of text, _error text,"
        " _match_tid text, _confidence real, _match jsonb){}"
    ).format(ident(schema, table), body, SCRATCH_TABLE))


def staging_type(type_name: str) -> str:
    """The column type a staging table uses for a source output column of ``type_name``."""
    # 'unknown' comes from untyped literals ('x' AS f); text holds them
    return "text" if type_name in ("unknown", "-") else type_name


def stream_to_staging(*, source_url: str, target: psycopg.Connection, compiled: CompiledQuery, schema: str,
                      table: str, chunk_rows: int, progress: Progress | None = None,
                      on_invalid_text: OnInvalidText = "fail_row", invalid_text: InvalidText | None = None,
                      check_text: bool | None = None, purpose: str = "source") -> int:
    """Copy the result of ``compiled`` on the source into ``schema.table``; return the row count.

    ``COPY (<compiled SELECT>) TO STDOUT`` on the source is piped block by block into ``COPY
    FROM STDIN`` on the target: rows never become Python objects, so the extract runs at about the
    speed of a raw copy. Each row's ``_hash`` is the sha256 of its text line, which is how the load
    tells an unchanged record from a changed one. The staging table is created here with the
    source's own column types, and the copy commits on the target as one transaction (the staging
    table is this run's private scratch space).

    Text that is not valid UTF-8 does not fail the copy: each 1 MB buffer is checked before it is
    written, and a row with invalid bytes gets an ``_error`` naming the field
    (``on_invalid_text="fail_row"``: the load records it as failed) or is staged with U+FFFD in
    place of each bad byte (``"replace"``); ``invalid_text(row, message)`` hears of each such row.
    Only a ``SQL_ASCII`` server can send such bytes (any other converts its text to UTF-8 and
    validates it), so ``check_text=None`` checks exactly those sources; ``True`` or ``False``
    forces the choice.
    """
    # the session is READ ONLY by default (connect(read_only=True)), so the transaction psycopg
    # opens with the first statement is a read-only one
    with connect(source_url, read_only=True, purpose=purpose) as source:
        for session in (source, target):
            # text COPY carries values as their text form: both sides must write and read the
            # same one, whatever the servers' own DateStyle, IntervalStyle or encoding
            session.execute(_PORTABLE_TEXT)
        types = source_column_types(source, compiled)
        total = estimate_rows(source, compiled)
        create_staging_table(target, schema=schema, table=table, columns=compiled.columns, types=types)
        raw_bytes = source.info.parameter_status("server_encoding") == "SQL_ASCII"
        if check_text is None:
            check_text = raw_bytes
        if raw_bytes:
            # a SQL_ASCII server stores bytes and refuses to send any that are not valid in the
            # client's encoding, failing the whole COPY: take them as they are (after the
            # statements whose text results psycopg decodes) and check them here, where a bad
            # line fails only its row
            source.execute("SET client_encoding = 'SQL_ASCII'")
        copy_out = sql.SQL("COPY ({}) TO STDOUT").format(compiled.statement)
        copy_in = sql.SQL("COPY {} ({}, _hash, _error) FROM STDIN").format(ident(schema, table),
                                                                            ident_list(compiled.columns))
        rows = 0
        pending = bytearray()
        pending_first = 1  # the row number of pending's first line

        def flush() -> None:
            data = pending
            if check_text and invalid_lines(pending):
                data = _clean_buffer(pending, columns=compiled.columns, first_row=pending_first,
                                     mode=on_invalid_text, report=invalid_text)
            writer.write(data)
            pending.clear()

        with source.cursor().copy(copy_out) as reader, target.cursor().copy(copy_in) as writer:
            # the server sends one row per message and libpq hands out one message per block;
            # rows go on to the target in blocks of about 1 MB, each with the sha256 of its line
            # (the source's values in their pinned text form): hashed here, while the target's
            # cores merge the entities this one waits for, not in the merge itself
            for block in reader:
                pending += block[:-1]
                pending += b"\t"
                pending += sha256(block).hexdigest().encode()
                pending += b"\t\\N\n"
                rows += 1
                if len(pending) >= _WRITE_BYTES:
                    flush()
                    pending_first = rows + 1
                if progress and rows % chunk_rows == 0:
                    progress(rows, total)
            flush()
        if progress and rows % chunk_rows:
            progress(rows, total)
        source.rollback()
    target.commit()
    return rows


def _clean_buffer(buffer: bytearray, *, columns: list[str], first_row: int, mode: OnInvalidText,
                  report: InvalidText | None) -> bytes:
    """Rewrite the lines of ``buffer`` that are not valid UTF-8 (each ends in its hash and error slot)."""
    out = []
    for offset, line in enumerate(bytes(buffer).split(b"\n")[:-1]):
        values, digest, _ = line.rsplit(b"\t", 2)
        cleaned = clean_line(values, columns)
        if cleaned.error is None:
            out.append(line)
            continue
        row = first_row + offset
        if mode == "replace":
            message = f"{cleaned.error}; replaced with U+FFFD"
            error = b"\\N"
        else:
            message = f"{cleaned.error}; the row is not imported (on_invalid_text: replace loads it with U+FFFD)"
            error = copy_text(message)
        if report:
            report(row, message)
        out.append(b"\t".join((cleaned.line, digest, error)))
    return b"\n".join(out) + b"\n"
