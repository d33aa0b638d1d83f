"""Stage the records of a file, a sheet, pushed JSON or an API: raw values first, then the fields in SQL.

A record source yields records one at a time (:mod:`import_pipelines.sources`). Their values,
column by column as the field mapping assigned them to the entity's inputs, stream as CSV into
``COPY`` of an UNLOGGED raw table (one text column per input, ``_custom`` for columns kept as
custom fields, the record's line, where it came from and any error reading it): no row is held
in memory beyond a block. Then one ``INSERT ... SELECT`` computes the entity's fields from the
raw columns with the same compiler as a PostgreSQL source's query (``r.<input>``, transforms,
coalesce, checked expressions), with each record's hash, into the staging table every later
step reads. A record that could not be read keeps its error and is recorded as failed.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.copy import pin_text_format
from import_pipelines.db.sql import ident, ident_list, shown_value
from import_pipelines.engine.staging import create_staging, drop_staging
from import_pipelines.extract.postgres import row_hash, staging_type
from import_pipelines.query.compile import compile_field
from import_pipelines.query.expressions import check_expression
from import_pipelines.sources.records import RecordSource
from import_pipelines.templates.model import RECORD_ALIAS, Entity

Progress = Callable[[int, int | None], None]
Location = str | list[str | int]  # a column name, or a path into nested values
_WRITE_BYTES = 1 << 20


def text_value(value: Any) -> str | None:
    """A source value as the text the raw table holds (ISO dates, plain numbers, JSON for nesting)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, decimal.Decimal):
        # as a float reads: 5.0 (a JSON number, a workbook's cell) is the "5" a CSV file writes
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def lookup(values: Mapping[str, Any], location: Location) -> Any:
    """The value at ``location``: a column, or a path of keys and list positions into nested values."""
    if isinstance(location, str):
        return values.get(location)
    current: Any = values
    for step in location:
        if isinstance(current, Mapping):
            current = current.get(str(step))
        elif isinstance(current, list) and isinstance(step, int) and -len(current) <= step < len(current):
            current = current[step]
        else:
            return None
    return current


def raw_name(table: str) -> str:
    """The raw table staged beside staging table ``table`` (at most 63 bytes)."""
    return f"{table[:59]}_raw"


def stage_records(*, source: RecordSource, entity: Entity, columns: Mapping[str, Location], custom: Sequence[str],
                  target: psycopg.Connection, table: str, run_id: str, progress: Progress | None = None,
                  every: int = 100_000, temporary: bool = False) -> int:
    """Stream ``source`` into the staging table ``table`` of ``entity``; return the records staged.

    ``columns`` says where each input is found in a record (inputs not in it are NULL);
    ``custom`` names the columns kept as custom fields. Commits unless ``temporary``.
    """
    assert entity.records is not None
    raw = raw_name(table)
    raw_table = ident("pg_temp" if temporary else CONTROL_SCHEMA, raw)
    inputs = list(entity.records.inputs)
    if getattr(source, "copy_dialect", lambda: None)() is not None and all(
            where is None or isinstance(where, str) for where in columns.values()):
        read = stage_lines(source=source, inputs=inputs, columns=columns, custom=custom, target=target, table=raw,
                           run_id=run_id, progress=progress, every=every, temporary=temporary)
    else:
        stage_raw(source=source, inputs=inputs, columns=columns, custom=custom, target=target, table=raw,
                  run_id=run_id, progress=progress, every=every, temporary=temporary)
        read = raw_table
    count = fields_from_raw(target, entity, raw_table=read, table=table, run_id=run_id, temporary=temporary,
                            source_name=source.name)
    if temporary:
        target.execute(sql.SQL("DROP TABLE {}").format(raw_table))
    else:
        drop_staging(target, raw)
        target.commit()
    return count


def stage_raw(*, source: RecordSource, inputs: Sequence[str], columns: Mapping[str, Location], custom: Sequence[str],
              target: psycopg.Connection, table: str, run_id: str, progress: Progress | None = None,
              every: int = 100_000, temporary: bool = False) -> int:
    """Stream ``source``'s records into the raw table ``table`` (``import_control``, or ``pg_temp``); return how many.

    One text column per input (read where ``columns`` says), then ``_custom``, the record's line,
    where it came from, its read error and its modification time (``_modified``, from sources that
    know it). Nothing is committed here.
    """
    raw_columns = [("_line", "bigint"), ("_source_ref", "text"), ("_error", "text"),
                   *((name, "text") for name in inputs), ("_custom", "jsonb"), ("_modified", "timestamptz")]
    raw_table = _create_raw(target, table=table, columns=raw_columns, run_id=run_id, temporary=temporary)
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(raw_table, ident_list(n for n, _ in raw_columns))
    locations = [columns.get(name) for name in inputs]
    buffer = io.StringIO()
    return _copy_text(target, copy, _raw_rows(source, locations=locations, custom=custom), buffer=buffer,
                      write=csv.writer(buffer, lineterminator="\n").writerow, progress=progress, every=every)


def _create_raw(target: psycopg.Connection, *, table: str, columns: Sequence[tuple[str, str]], run_id: str,
                temporary: bool) -> sql.Identifier:
    """The raw table ``table`` of ``columns``: TEMP, or a scratch table registered with the run; its name."""
    raw_table = ident("pg_temp" if temporary else CONTROL_SCHEMA, table)
    pin_text_format(target)
    if temporary:
        target.execute(sql.SQL("CREATE TEMP TABLE {} ({})").format(raw_table, sql.SQL(", ").join(
            sql.SQL("{} {}").format(ident(n), sql.SQL(t)) for n, t in columns)))
    else:
        create_staging(target, table=table, columns=columns, run_id=run_id, slots=False)
    return raw_table


def _copy_text(target: psycopg.Connection, copy: sql.Composable, rows: Iterator[Any], *, buffer: io.StringIO,
               write: Callable[[Any], object], progress: Progress | None, every: int) -> int:
    """COPY ``rows``, each written as text into ``buffer`` by ``write``, sent a block at a time; how many."""
    count = 0
    with target.cursor().copy(copy) as writer:
        for row in rows:
            write(row)
            count += 1
            if buffer.tell() >= _WRITE_BYTES:
                writer.write(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
            if progress and count % every == 0:
                progress(count, None)
        writer.write(buffer.getvalue().encode())
    if progress and count % every:
        progress(count, None)
    return count


def stage_lines(*, source: Any, inputs: Sequence[str], columns: Mapping[str, str | None], custom: Sequence[str],
                target: psycopg.Connection, table: str, run_id: str, progress: Progress | None = None,
                every: int = 100_000, temporary: bool = False) -> sql.Composable:
    """Stream a CSV source (:class:`~import_pipelines.sources.csv_file.CsvSource`) into ``table`` shaped like
    the file; return a query that reads it as :func:`stage_raw`'s raw table (``FROM <query> AS r``).

    The table holds the record's line, its read error and the header's columns as text. A clean
    row goes to ``COPY`` as the file's own line (:meth:`~import_pipelines.sources.csv_file.CsvSource.copy_rows`),
    so that PostgreSQL, not Python, splits it into cells; the others (errors, footers, quoted or
    multi-line rows) are written cell by cell in the same dialect. Which input is which column,
    and the custom fields as JSON, are then a projection in SQL. Nothing is committed here.
    """
    headers = source.columns()
    width = len(headers)
    delimiter, quote = source.copy_dialect()
    cells = [f"c{position}" for position in range(1, width + 1)]
    raw_columns = [("_line", "bigint"), ("_error", "text"), *((cell, "text") for cell in cells)]
    raw_table = _create_raw(target, table=table, columns=raw_columns, run_id=run_id, temporary=temporary)
    # an empty cell is NULL whether or not it was quoted, as in the raw table the cells are written to
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, DELIMITER {}, QUOTE {}, FORCE_NULL ({}))").format(
        raw_table, ident_list(n for n, _ in raw_columns), sql.Literal(delimiter), sql.Literal(quote),
        ident_list(cells))
    buffer = io.StringIO()
    out = csv.writer(buffer, delimiter=delimiter, quotechar=quote, lineterminator="\n")
    lead = delimiter * 2  # the line, then no error
    padding = [None] * width

    def write(row: tuple) -> None:
        if len(row) == 4:
            buffer.write(f"{row[0]}{lead}{row[3]}")
        else:
            line, values, error = row
            out.writerow([line, error, *values[:width], *padding[len(values):]])

    _copy_text(target, copy, source.copy_rows(), buffer=buffer, write=write, progress=progress, every=every)
    index = {header: ident("w", cell) for header, cell in zip(headers, cells)}
    values = [sql.SQL("{} AS {}").format(index.get(columns.get(name)) or sql.SQL("NULL::text"), ident(name))
              for name in inputs]
    kept = [(name, index[name]) for name in custom if name in index]
    extra = sql.SQL("NULLIF(jsonb_strip_nulls(jsonb_object(ARRAY[{}]::text[], ARRAY[{}]::text[])), '{{}}')").format(
        sql.SQL(", ").join(sql.Literal(name) for name, _ in kept),
        sql.SQL(", ").join(sql.SQL("NULLIF({}, '')").format(cell) for _, cell in kept)) if kept else sql.SQL("NULL::jsonb")
    return sql.SQL("(SELECT w._line, NULL::text AS _source_ref, w._error, {}, {} AS _custom,"
                   " NULL::timestamptz AS _modified FROM {} AS w)").format(sql.SQL(", ").join(values), extra, raw_table)


def _raw_rows(source: RecordSource, *, locations: list[Location | None], custom: Sequence[str]) -> Iterator[list]:
    """The raw table's rows: line, where from, error, one text per input, the custom columns as JSON.

    A table-shaped source (CSV, workbook, sheet) gives its cells in column order (``rows()``): a
    row is then a few list lookups, with no dict per record; others give records by name.
    """
    rows = getattr(source, "rows", None)
    if rows is not None and all(where is None or isinstance(where, str) for where in locations):
        index = {header: i for i, header in enumerate(source.columns())}
        picks = [index.get(where) if where is not None else None for where in locations]
        kept = [(name, index[name]) for name in custom if name in index]
        for line, cells, error in rows():
            width = len(cells)
            values = [None if i is None or i >= width else (v if (v := cells[i]).__class__ is str else text_value(v))
                      for i in picks]
            extra = {name: text_value(cells[i]) for name, i in kept if i < width and cells[i] not in (None, "")}
            # where it came from is written as the source's name and the line, in SQL, not per row here
            yield [line, None, error, *values, json.dumps(extra, ensure_ascii=False) if extra else None, None]
        return
    for record in source.records():
        values = record.values
        extra = {name: text_value(values.get(name)) for name in custom if values.get(name) not in (None, "")}
        yield [record.line, record.location, record.error,
               *(text_value(lookup(values, where)) if where is not None else None for where in locations),
               json.dumps(extra, ensure_ascii=False) if extra else None,
               record.modified.isoformat() if record.modified is not None else None]


def kept_records(entity: Entity) -> sql.Composable | None:
    """The entity's ``records.where`` predicates over ``r``, checked and ANDed; None when it keeps every record.

    A record that could not be read (``r._error``) is always kept, so it is recorded as failed.
    """
    assert entity.records is not None
    if not entity.records.where:
        return None
    checked = sql.SQL(" AND ").join(sql.SQL("({})").format(sql.SQL(check_expression(text, aliases={RECORD_ALIAS})))
                                    for text in entity.records.where)
    return sql.SQL("(r._error IS NOT NULL OR ({}))").format(checked)


def record_errors(entity: Entity) -> sql.Composable:
    """A record's error over ``r``: its read error, then the message of every ``records.reject`` rule it breaks.

    NULL for a record that may load. A rule's message names its input and shows the value
    (:func:`~import_pipelines.db.sql.shown_value`), as the map step does.
    """
    assert entity.records is not None
    parts: list[sql.Composable] = [sql.SQL("r._error")]
    for rule in entity.records.reject:
        value = ident(RECORD_ALIAS, rule.field)
        when = sql.SQL(check_expression(rule.when, aliases={RECORD_ALIAS}))
        if rule.show_value:
            text = sql.SQL("{} || {} || {}").format(sql.Literal(f"{rule.field}: "), shown_value(value),
                                                    sql.Literal(f" {rule.message}"))
        else:
            text = sql.Literal(f"{rule.field}: {rule.message}")
        parts.append(sql.SQL("CASE WHEN {} THEN {} END").format(when, text))
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("NULLIF(concat_ws('; ', {}), '')").format(sql.SQL(", ").join(parts))


def fields_from_raw(target: psycopg.Connection, entity: Entity, *, raw_table: sql.Composable, table: str,
                    run_id: str, temporary: bool, source_name: str) -> int:
    """The entity's fields computed from the raw columns, with each record's hash, into staging ``table``.

    Several entities may be computed from one raw table (an entity derived from another's records).
    ``raw_table`` is the raw table, or a query shaped like it (:func:`stage_lines`).
    Returns the records staged: those its ``records.where`` keeps.
    """
    aliases = {RECORD_ALIAS}
    names = list(entity.fields)
    exprs = [sql.SQL("{} AS {}").format(compile_field(entity.fields[name], aliases=aliases), ident(name))
             for name in names]
    kept = kept_records(entity)
    # OFFSET 0 keeps the planner from pulling the fields up into the INSERT's SELECT list, where
    # every field would be computed twice: once for its column and once more inside the hash's ROW()
    inner = sql.SQL("SELECT {}, COALESCE(r._source_ref, {} || ' line ' || r._line) AS _sref, {} AS _serr,"
                    " r._line AS _sline FROM {} AS r{} OFFSET 0").format(
        sql.SQL(", ").join(exprs), sql.Literal(source_name), record_errors(entity), raw_table,
        sql.SQL(" WHERE {}").format(kept) if kept is not None else sql.SQL(""))
    cur = target.cursor()
    cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(inner))
    oids = [d.type_code for d in cur.description][:len(names)]
    types = [row[0] for row in target.execute(
        "SELECT CASE WHEN oid >= 16384 THEN 'text' ELSE format_type(oid, NULL) END"
        " FROM unnest(%s::oid[]) WITH ORDINALITY AS u(oid, n) ORDER BY n", (oids,)).fetchall()]
    create_staging(target, table=table, columns=[(n, staging_type(t)) for n, t in zip(names, types)], run_id=run_id,
                   temporary=temporary)
    fields = sql.SQL(", ").join(ident("q", n) for n in names)
    digest = row_hash(target, oids, sql.SQL("ROW({})").format(fields))
    return target.execute(sql.SQL(
        "INSERT INTO {} ({}, _hash, _source_ref, _error) SELECT {}, {}, q._sref, q._serr FROM ({}) AS q"
        " ORDER BY q._sline").format(
        ident("pg_temp" if temporary else CONTROL_SCHEMA, table), ident_list(names), fields, digest, inner)).rowcount
