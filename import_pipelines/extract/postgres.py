"""Stream a compiled SELECT from a PostgreSQL source into a staging table of the target.

The source is read in a READ ONLY transaction by ``COPY (SELECT ...) TO STDOUT``: the server
runs the query as a portal and streams its rows as it produces them, and each block goes straight
into ``COPY ... FROM STDIN`` on the target. Memory holds one block (about 1 MB), whatever the
table's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.connect import connect
from import_pipelines.db.copy import pin_text_format
from import_pipelines.db.sql import ident, ident_list
from import_pipelines.db.text_copy import clean_line, copy_text, invalid_lines
from import_pipelines.engine.staging import create_staging
from import_pipelines.query.compile import CompiledQuery
from import_pipelines.templates.model import OnInvalidText

Progress = Callable[[int, int | None], None]
InvalidText = Callable[[int, str], None]

_WRITE_BYTES = 1 << 20
_FIRST_USER_OID = 16384  # FirstNormalObjectId: OIDs below it are the server's built-in types


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


def staging_type(type_name: str) -> str:
    """The column type a staging table uses for a source output column of ``type_name``."""
    # 'unknown' comes from untyped literals ('x' AS f); text holds them
    return "text" if type_name in ("unknown", "-") else type_name


def hashed(compiled: CompiledQuery, *, only: sql.Composable | None = None) -> sql.Composed:
    """``compiled`` with each row's hash as a last column: the md5 of the row's text form, on the source.

    The source computes it inside the read-only query, so a sync can ask for the keys and hashes
    alone (:func:`changed_source_ids`) and compare them with ``record_state`` before moving any
    whole row; the full read computes the same hash over the same row, so the two always agree.
    ``only`` filters the rows (``q`` is the compiled row).
    """
    where = sql.SQL(" WHERE {}").format(only) if only is not None else sql.SQL("")
    return sql.SQL("SELECT q.*, decode(md5(q::text), 'hex') FROM ({}) AS q{}").format(compiled.statement, where)


def stream_to_staging(*, source_url: str, target: psycopg.Connection, compiled: CompiledQuery, table: str,
                      run_id: str, chunk_rows: int, progress: Progress | None = None,
                      only: tuple[str, list[str]] | None = None, temporary: bool = False,
                      on_invalid_text: OnInvalidText = "fail_row", invalid_text: InvalidText | None = None,
                      check_text: bool | None = None, purpose: str = "source") -> int:
    """Copy the rows of ``compiled`` on the source into staging table ``table``; return the row count.

    ``COPY (<compiled SELECT with its hash>) TO STDOUT`` on the source is piped block by block
    into ``COPY FROM STDIN`` on the target: rows never become Python objects, so the extract runs
    at about the speed of a raw copy. Each row's ``_hash`` comes from the source (:func:`hashed`),
    which is how the load tells an unchanged record from a changed one. ``only`` = (field, source
    ids) reads just those records (a sync's changed ones). The staging table is created here with
    the source's own column types, and the copy commits on the target as one transaction (the
    staging table is this run's private scratch space). With ``temporary`` it is a TEMP table
    (``pg_temp.<table>``) and nothing is committed: the caller's transaction owns it (a preview).

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
            pin_text_format(session)
        types = source_column_types(source, compiled)
        total = len(only[1]) if only else estimate_rows(source, compiled)
        create_staging(target, table=table, columns=[(c, staging_type(t)) for c, t in zip(compiled.columns, types)],
                       run_id=run_id, temporary=temporary)
        raw_bytes = source.info.parameter_status("server_encoding") == "SQL_ASCII"
        if check_text is None:
            check_text = raw_bytes
        if raw_bytes:
            # a SQL_ASCII server stores bytes and refuses to send any that are not valid in the
            # client's encoding, failing the whole COPY: take them as they are (after the
            # statements whose text results psycopg decodes) and check them here, where a bad
            # line fails only its row
            source.execute("SET client_encoding = 'SQL_ASCII'")
        # the ids as a literal, not a parameter: the compiled text may hold a '%' that a statement
        # with parameters would read as a placeholder
        where = (sql.SQL("(q.{})::text = ANY({}::text[])").format(ident(only[0]), sql.Literal(only[1]))
                 if only is not None else None)
        copy_out = sql.SQL("COPY ({}) TO STDOUT").format(hashed(compiled, only=where))
        # a checked copy carries an _error slot per line, for the rows whose text is not UTF-8
        copy_in = sql.SQL("COPY {} ({}, _hash{}) FROM STDIN").format(
            ident("pg_temp" if temporary else CONTROL_SCHEMA, table), ident_list(compiled.columns),
            sql.SQL(", _error") if check_text else sql.SQL(""))
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
            # rows go on to the target in blocks of about 1 MB
            for block in reader:
                if check_text:
                    pending += block[:-1]
                    pending += b"\t\\N\n"
                else:
                    pending += block
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
    if not temporary:
        target.commit()
    return rows


def changed_source_ids(*, source_url: str, target: psycopg.Connection, compiled: CompiledQuery, source_id: str,
                       stream_id: int, table: str, target_table: sql.Composable, target_key: str, key_type: str,
                       run_id: str, purpose: str = "source") -> tuple[int, list[str], int, int]:
    """A sync's first pass: the source ids whose record is new or changed since the last import.

    The source streams each record's source id and hash only (``COPY (SELECT id, md5(row))``),
    into an UNLOGGED keys table beside the staging tables; one set-based comparison with
    ``record_state`` (and with the target row the state names, which must still exist) finds the
    records to read in full. Returns (records read, their changed ids, state rows the read no
    longer contains: deleted at the source or filtered out, unchanged duplicates among the records
    read, which a full read would skip again).
    """
    with connect(source_url, read_only=True, purpose=purpose) as source:
        for session in (source, target):
            pin_text_format(session)
        create_staging(target, table=table, columns=[("sid", "text")], run_id=run_id)
        copy_out = sql.SQL("COPY (SELECT (k.{})::text, k._h FROM (SELECT q.*, decode(md5(q::text), 'hex') AS _h"
                           " FROM ({}) AS q) AS k) TO STDOUT").format(ident(source_id), compiled.statement)
        copy_in = sql.SQL("COPY {} (sid, _hash) FROM STDIN").format(ident(CONTROL_SCHEMA, table))
        pending = bytearray()
        with source.cursor().copy(copy_out) as reader, target.cursor().copy(copy_in) as writer:
            for block in reader:
                pending += block
                if len(pending) >= _WRITE_BYTES:
                    writer.write(pending)
                    pending.clear()
            writer.write(pending)
        source.rollback()
    keys = ident(CONTROL_SCHEMA, table)
    target.execute(sql.SQL("ANALYZE {}").format(keys))
    read = target.execute(sql.SQL("SELECT count(*) FROM {}").format(keys)).fetchone()[0]
    # a changed record brings the records deduplicated with it (they share its target row): the
    # duplicate detection then sees the whole cluster again and decides as a full read would
    changed = [sid for (sid,) in target.execute(sql.SQL(
        "WITH changed AS (SELECT DISTINCT k.sid FROM {keys} AS k LEFT JOIN {control}.record_state AS st"
        " ON st.stream_id = {stream} AND st.source_id = k.sid"
        " WHERE st.source_hash IS DISTINCT FROM k._hash"
        " OR NOT EXISTS (SELECT 1 FROM {target} AS t WHERE t.{key} = (st.target_id)::{key_type}))"
        " SELECT sid FROM changed UNION SELECT other.source_id FROM {control}.record_state AS st"
        " JOIN {control}.record_state AS other ON other.stream_id = st.stream_id AND other.target_id = st.target_id"
        " WHERE st.stream_id = {stream} AND st.source_id IN (SELECT sid FROM changed)").format(
        keys=keys, control=ident(CONTROL_SCHEMA), stream=sql.Literal(stream_id), target=target_table,
        key=ident(target_key), key_type=sql.SQL(key_type))).fetchall()]
    duplicates = target.execute(sql.SQL(
        "SELECT count(*) FROM {keys} AS k JOIN {control}.record_state AS st ON st.stream_id = {stream}"
        " AND st.source_id = k.sid AND st.source_hash = k._hash WHERE st.duplicate_of IS NOT NULL"
        " AND k.sid <> ALL(%s)").format(keys=keys, control=ident(CONTROL_SCHEMA), stream=sql.Literal(stream_id)),
        (changed,)).fetchone()[0]
    gone = target.execute(sql.SQL(
        "SELECT count(*) FROM {control}.record_state AS st WHERE st.stream_id = {stream}"
        " AND NOT EXISTS (SELECT 1 FROM {keys} AS k WHERE k.sid = st.source_id)").format(
        keys=keys, control=ident(CONTROL_SCHEMA), stream=sql.Literal(stream_id))).fetchone()[0]
    target.commit()
    return read, changed, gone, duplicates


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
