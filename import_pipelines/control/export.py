"""Exports: an entity's target rows, a run's import records or its errors, to CSV, Excel or JSON.

Every export is one query streamed out of PostgreSQL, so a million rows need no more memory than
a thousand:

- **CSV** is ``COPY (query) TO STDOUT (FORMAT csv, HEADER)``: the server writes the file's bytes
  and Python only passes them on;
- **JSON** (an array) and **JSON Lines** are ``COPY (SELECT row_to_json(q)::text ...)``: one
  JSON text per row, written as it arrives;
- **Excel** (.xlsx) reads the rows through a server-side cursor and writes them with openpyxl's
  write-only workbook, which streams each row to the file (a new sheet after 1,048,575 rows,
  Excel's limit).

A spreadsheet executes a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (CSV injection). In CSV and Excel every value that is not a number, a date
or a boolean is read as text and, where it begins with one of those characters, prefixed with a
single quote (the OWASP rule), in the query itself, so both formats share one rule; Excel also
writes such a cell as a string, never a formula. Numbers stay numbers (a negative number is a
number cell, not a formula). JSON is not opened by spreadsheets and keeps every value as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Literal

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.sql import ident

Format = Literal["csv", "xlsx", "json", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx", "json", "jsonl")
What = Literal["rows", "records", "errors"]

# a cell a spreadsheet would read as a formula: the OWASP CSV-injection characters
FORMULA_START = "^[=+@\t\r-]"
# type categories (pg_type.typcategory) whose text can never begin a formula and that a
# spreadsheet should keep typed: numbers, dates and times, booleans
_TYPED_CATEGORIES = {"N", "D", "B"}
EXCEL_MAX_ROWS = 1_048_576
CURSOR_ROWS = 2_000


class ExportError(ValueError):
    """An export that cannot be made; the message says what is missing."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the file, its format and how many rows (headers excluded)."""

    path: Path
    format: Format
    rows: int
    columns: tuple[str, ...]


def entity_rows_query(conn: psycopg.Connection, *, profile: str, entity: str) -> sql.Composable:
    """Every row of the target table of ``profile``'s ``entity`` (as registered by its imports)."""
    row = conn.execute(f"SELECT target_table FROM {CONTROL_SCHEMA}.streams WHERE profile = %s AND entity = %s",
                       (profile, entity)).fetchone()
    if row is None:
        known = [e for (e,) in conn.execute(f"SELECT entity FROM {CONTROL_SCHEMA}.streams WHERE profile = %s"
                                            " ORDER BY entity", (profile,)).fetchall()]
        raise ExportError(f"profile {profile!r} has no entity {entity!r} that was imported"
                          + (f"; its entities: {', '.join(known)}" if known else "; it has no imports"))
    table = row[0]
    schema, name = table.split(".", 1) if "." in table else ("public", table)
    if conn.execute("SELECT to_regclass(%s)", (ident(schema, name).as_string(conn),)).fetchone()[0] is None:
        raise ExportError(f"the target table {schema}.{name} of {profile}/{entity} does not exist")
    return sql.SQL("SELECT * FROM {}").format(ident(schema, name))


def run_records_query(conn: psycopg.Connection, *, run_id: str, entity: str | None = None,
                      failed_only: bool = False) -> sql.Composable:
    """The audit rows of a run, as ``import_control.import_records`` names them, in the order they were
    written, with the rollback that undid each (``rolled_back_by``, a run id) where one did."""
    run_seq, run_day = _require_run(conn, run_id)
    where = [sql.SQL("a.run_day = {} AND a.run_seq = {}").format(sql.Literal(run_day), sql.Literal(run_seq))]
    if entity:
        where.append(sql.SQL("st.entity = {}").format(sql.Literal(entity)))
    if failed_only:
        where.append(sql.SQL("a.action = 'failed'"))
    return sql.SQL(
        "SELECT r.run_id, st.profile, st.entity, st.source AS source_table, a.source_id, a.source_ref,"
        " st.target_table, a.target_id, a.action, a.duplicate_of, a.confidence, a.match_fields, a.error,"
        " a.before_image, a.recorded_at AS created_at, rb.run_id AS rolled_back_by"
        " FROM {c}.audit_records AS a JOIN {c}.runs AS r ON r.run_seq = a.run_seq"
        " JOIN {c}.streams AS st ON st.stream_id = a.stream_id LEFT JOIN {c}.runs AS rb ON rb.run_seq = a.rolled_back_by"
        " WHERE {where} ORDER BY a.stream_id, a.record_no").format(
        c=ident(CONTROL_SCHEMA), where=sql.SQL(" AND ").join(where))


def run_errors_query(conn: psycopg.Connection, *, run_id: str, entity: str | None = None) -> sql.Composable:
    """A run's problems: its failed records (stage ``load``) and the errors found after load (late seed)."""
    _require_run(conn, run_id)
    only = sql.SQL(" AND entity = {}").format(sql.Literal(entity)) if entity else sql.SQL("")
    return sql.SQL(
        "SELECT entity, source_id, source_ref, 'load' AS stage, NULL::text AS field, error AS message,"
        " created_at FROM {control}.import_records WHERE run_id = {run} AND action = 'failed'{only}"
        " UNION ALL SELECT entity, source_id, NULL, stage, field, message, created_at FROM {control}.import_errors"
        # the rejected rows' breakdown (stage 'row') repeats the failed records above
        " WHERE run_id = {run} AND stage <> 'row'{only} ORDER BY created_at").format(
        control=ident(CONTROL_SCHEMA), run=sql.Literal(run_id), only=only)


def _require_run(conn: psycopg.Connection, run_id: str) -> tuple[int, object]:
    """The run's ``run_seq`` and ``run_day`` (its audit partition)."""
    row = conn.execute(f"SELECT run_seq, run_day FROM {CONTROL_SCHEMA}.runs WHERE run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise ExportError(f"no import run {run_id!r} is recorded in {CONTROL_SCHEMA}.runs")
    return row


def describe_query(conn: psycopg.Connection, query: sql.Composable) -> list[tuple[str, str]]:
    """``(column name, type category)`` of each column ``query`` returns, without running it."""
    cur = conn.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(query))
    columns = [(c.name, c.type_code) for c in cur.description or []]
    categories = dict(conn.execute("SELECT oid::int, typcategory FROM pg_type WHERE oid = ANY(%s)",
                                   ([oid for _, oid in columns],)).fetchall())
    return [(name, categories.get(oid, "X")) for name, oid in columns]


def neutral_text(text: str) -> str:
    """``text`` with a single quote in front if a spreadsheet would read it as a formula (headers)."""
    return "'" + text if re.match(FORMULA_START, text) else text


def neutralised(query: sql.Composable, columns: list[tuple[str, str]]) -> sql.Composable:
    """``query`` with every column that is not a number, date or boolean as text, a formula-like
    value prefixed with a single quote."""
    outputs = []
    for position, (name, category) in enumerate(columns):
        # by position: a query may return two columns of the same name
        value = sql.SQL("q.{}").format(ident(f"c{position}"))
        if category not in _TYPED_CATEGORIES:
            text = sql.SQL("({})::text").format(value)
            value = sql.SQL("CASE WHEN {text} ~ {start} THEN '''' || {text} ELSE {text} END").format(
                text=text, start=sql.Literal(FORMULA_START))
        outputs.append(sql.SQL("{} AS {}").format(value, ident(neutral_text(name))))
    aliases = sql.SQL(", ").join(ident(f"c{i}") for i in range(len(columns)))
    return sql.SQL("SELECT {} FROM ({}) AS q ({})").format(sql.SQL(", ").join(outputs), query, aliases)


def export_query(conn: psycopg.Connection, query: sql.Composable, *, fmt: Format, path: str | Path) -> ExportResult:
    """Stream the rows of ``query`` to ``path`` in ``fmt``; returns the row count.

    ``conn`` must not be in autocommit mode if ``fmt`` is ``xlsx`` (the server-side cursor lives
    in a transaction); the export only reads.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    path = Path(path)
    columns = describe_query(conn, query)
    names = tuple(name for name, _ in columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(neutralised(query, columns))
        with path.open("wb") as out:
            rows = _copy_out(conn, statement, out)
    elif fmt in ("json", "jsonl"):
        statement = sql.SQL("COPY (SELECT row_to_json(q)::text FROM ({}) AS q) TO STDOUT").format(query)
        with path.open("wb") as out:
            rows = _json_out(conn, statement, out, array=fmt == "json")
    else:
        rows = _xlsx_out(conn, neutralised(query, columns), names, path)
    return ExportResult(path=path, format=fmt, rows=rows, columns=names)


def _copy_out(conn: psycopg.Connection, statement: sql.Composable, out: BinaryIO) -> int:
    with conn.cursor() as cur:
        with cur.copy(statement) as copy:
            for chunk in copy:
                out.write(chunk)
        return cur.rowcount


def _json_out(conn: psycopg.Connection, statement: sql.Composable, out: BinaryIO, *, array: bool) -> int:
    separator = b",\n" if array else b"\n"
    rows = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        out.write(b"[\n" if array else b"")
        for (text,) in copy.rows():
            if rows and array:
                out.write(separator)
            out.write(text.encode())
            if not array:
                out.write(separator)
            rows += 1
        out.write(b"\n]\n" if array and rows else b"]\n" if array else b"")
    return rows


def _xlsx_out(conn: psycopg.Connection, query: sql.Composable, names: tuple[str, ...], path: Path) -> int:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: object) -> object:
        if value is None or isinstance(value, (int, float, Decimal, bool)):
            return value
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            # Excel has no time zones: the time in UTC
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if isinstance(value, (dt.date, dt.time, dt.timedelta)):
            return value
        text = value if isinstance(value, str) else _text(value)
        # characters an .xlsx cannot hold are written visibly escaped, never dropped
        return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)

    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    header = [neutral_text(name) for name in names]
    sheet.append(header)
    rows = in_sheet = 0
    with conn.transaction(), conn.cursor(name="export_rows") as cur:
        cur.itersize = CURSOR_ROWS
        cur.execute(query)
        for row in cur:
            if in_sheet == EXCEL_MAX_ROWS - 1:
                sheet = book.create_sheet(f"export {len(book.worksheets) + 1}")
                sheet.append(header)
                in_sheet = 0
            sheet.append([cell(v) for v in row])
            rows += 1
            in_sheet += 1
    book.save(path)
    return rows


def _text(value: object) -> str:
    if isinstance(value, (bytes, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def export(conn: psycopg.Connection, *, what: What, fmt: Format, path: str | Path, profile: str | None = None,
           entity: str | None = None, run_id: str | None = None) -> ExportResult:
    """Export ``what``: ``rows`` (of ``profile``'s ``entity``), ``records`` or ``errors`` (of ``run_id``)."""
    if what == "rows":
        if not (profile and entity):
            raise ExportError("an export of target rows needs the profile and the entity")
        query = entity_rows_query(conn, profile=profile, entity=entity)
    elif what in ("records", "errors"):
        if not run_id:
            raise ExportError(f"an export of a run's {what} needs the run id")
        query = (run_records_query(conn, run_id=run_id, entity=entity) if what == "records"
                 else run_errors_query(conn, run_id=run_id, entity=entity))
    else:
        raise ExportError(f"unknown export {what!r}; one of rows, records, errors")
    return export_query(conn, query, fmt=fmt, path=path)


def default_name(*, what: What, fmt: Format, profile: str | None, entity: str | None,
                 run_id: str | None) -> str:
    """A file name for an export when none is given: ``<profile>_<entity>.csv``, ``<run>_errors.json``."""
    parts: Iterable[str | None] = (profile, entity) if what == "rows" else (run_id, entity, what)
    stem = "_".join(p for p in parts if p)
    return f"{stem}.{fmt}"
