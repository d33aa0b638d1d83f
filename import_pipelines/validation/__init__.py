"""Validation of staged rows before load: an entity's ``validate`` expectations.

Built-in expectations (and great-expectations ones with a built-in form) run as one set-based
statement over the staging table: a pass computes each failing row's messages, one UPDATE
appends them to the row's ``_error``, and the same statement counts the failures per
expectation. The others run through great-expectations in chunks (:mod:`.gx_chunks`), which is
imported only when an entity has such an expectation. A row with an ``_error`` is recorded as
``failed`` by the load (the engine's one failed-record path) and never reaches the target; the
per-expectation summary is kept in ``import_control.validation_results`` for the asset check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident
from import_pipelines.templates.model import Expectation
from import_pipelines.validation.rules import failure_message, sql_form

Engine = str  # "sql" or "great_expectations"


@dataclass(frozen=True)
class ExpectationResult:
    """What one expectation found: rows evaluated and rows failing it."""

    position: int
    expectation: str
    fields: tuple[str, ...]
    engine: Engine
    evaluated: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class ValidationOutcome:
    """A suite's results, and how many rows it failed that no earlier step had failed."""

    results: tuple[ExpectationResult, ...]
    newly_failed: int


def validate_staged(conn: psycopg.Connection, *, expectations: list[Expectation], staging: sql.Identifier,
                    rows: int, types: dict[str, str], where: str = "validate",
                    chunk_rows: int | None = None, log: Callable[[str], None] = print,
                    engine: Literal["auto", "great_expectations"] = "auto") -> ValidationOutcome:
    """Run ``expectations`` over staged rows ``1..rows``; append each failure to the row's ``_error``.

    ``types`` are the staged columns' types; ``where`` is the expectations' YAML path, named by
    errors in a great-expectations expectation's arguments. ``engine="great_expectations"``
    runs great-expectations names through great-expectations even where a built-in form exists
    (to compare the two).
    """
    forms = {i: None if engine == "great_expectations" and e.expect.startswith("expect_") else sql_form(e)
             for i, e in enumerate(expectations)}
    in_sql = [(i, e, forms[i]) for i, e in enumerate(expectations) if forms[i] is not None]
    in_gx = [(i, e) for i, e in enumerate(expectations) if forms[i] is None]
    results: list[ExpectationResult] = []
    newly = 0
    if in_sql:
        started = time.perf_counter()
        failed, newly = _validate_sql(conn, in_sql, staging=staging, types=types)
        seconds = time.perf_counter() - started
        results += [ExpectationResult(i, e.expect, tuple(form.columns), "sql", rows, failed[i], seconds)
                    for i, e, form in in_sql]
    if in_gx:
        from import_pipelines.validation.gx_chunks import CHUNK_ROWS, validate_in_chunks

        messages = ident("pg_temp", "validation_messages")
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (rn bigint, msg text)").format(messages))
        conn.execute(sql.SQL("TRUNCATE {}").format(messages))
        outcome = validate_in_chunks(conn, staging=staging, rows=rows, items=in_gx, where=where, messages=messages,
                                     chunk_rows=chunk_rows or CHUNK_ROWS, log=log)
        newly += conn.execute(sql.SQL(
            "WITH m AS (SELECT rn, string_agg(msg, '; ' ORDER BY msg) AS msg FROM {m} GROUP BY rn),"
            " u AS (UPDATE {t} AS s SET _error = concat_ws('; ', s._error, m.msg) FROM m WHERE s._rn = m.rn"
            " RETURNING 1) SELECT (SELECT count(*) FROM u) - (SELECT count(*) FROM {t} AS s JOIN m ON s._rn = m.rn"
            " WHERE s._error IS NOT NULL)").format(m=messages, t=staging)).fetchone()[0]
        conn.execute(sql.SQL("DROP TABLE {}").format(messages))
        results += [ExpectationResult(i, e.expect, tuple(e.columns), "great_expectations", rows,
                                      outcome.failed[i], outcome.seconds) for i, e in in_gx]
    return ValidationOutcome(results=tuple(sorted(results, key=lambda r: r.position)), newly_failed=newly)


def _validate_sql(conn: psycopg.Connection, items: list[tuple[int, Expectation, Expectation]], *,
                  staging: sql.Identifier, types: dict[str, str]) -> tuple[dict[int, int], int]:
    """One statement: each failing row's messages appended to its ``_error``; failures per position.

    The failing rows are computed once (a materialised CTE): the UPDATE rewrites only them, and
    the counts come from the same rows. A ``unique`` expectation adds a window over the staged
    rows (rows sharing its fields' values).
    """
    version = conn.info.server_version
    windows = {i: f"_unique_{i}" for i, _, form in items if form.expect == "unique"}
    messages = [failure_message(e, form, i, types=types, server_version=version, unique_column=windows.get(i))
                for i, e, form in items]
    if windows:
        used = list(dict.fromkeys(c for _, _, form in items for c in form.columns))
        source = sql.SQL("(SELECT _rn, _error, {cols}, {wins} FROM {t}) AS s").format(
            cols=sql.SQL(", ").join(ident(c) for c in used), t=staging,
            wins=sql.SQL(", ").join(sql.SQL("count(*) OVER (PARTITION BY {}) AS {}").format(
                sql.SQL(", ").join(ident(c) for c in form.columns), ident(windows[i]))
                for i, _, form in items if i in windows))
    else:
        source = sql.SQL("{} AS s").format(staging)
    names = [ident(f"e{i}") for i, _, _ in items]
    any_failed = sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(n) for n in names)
    row = conn.execute(sql.SQL(
        "WITH m AS MATERIALIZED (SELECT * FROM (SELECT s._rn, s._error IS NULL AS clean, {msgs} FROM {source}) AS x"
        " WHERE {any}),"
        " u AS (UPDATE {t} AS t SET _error = concat_ws('; ', t._error, {joined}) FROM m WHERE t._rn = m._rn"
        " RETURNING 1)"
        " SELECT (SELECT count(*) FROM u), count(*) FILTER (WHERE clean), {counts} FROM m").format(
        msgs=sql.SQL(", ").join(sql.SQL("{} AS {}").format(m, n) for m, n in zip(messages, names)),
        source=source, any=any_failed, t=staging,
        joined=sql.SQL(", ").join(sql.SQL("m.{}").format(n) for n in names),
        counts=sql.SQL(", ").join(sql.SQL("count({})").format(n) for n in names))).fetchone()
    return {i: count for (i, _, _), count in zip(items, row[2:])}, row[1]


def record_results(conn: psycopg.Connection, *, run_seq: int, stream_id: int,
                   results: tuple[ExpectationResult, ...]) -> None:
    """Keep (or, for a retried step, replace) a run's validation summary for one stream."""
    with conn.transaction():
        conn.execute("DELETE FROM import_control.validation_results WHERE run_seq = %s AND stream_id = %s",
                     (run_seq, stream_id))
        for r in results:
            conn.execute("INSERT INTO import_control.validation_results (run_seq, stream_id, position, expectation,"
                         " fields, engine, evaluated, failed, seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                         (run_seq, stream_id, r.position, r.expectation, list(r.fields), r.engine, r.evaluated,
                          r.failed, r.seconds))
