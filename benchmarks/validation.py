"""Benchmark validation of staged rows: ``python benchmarks/validation.py --rows 1000000``.

One staging table of N rows (an email, a status, minutes, a nickname; about 1% of the rows
break one expectation each) is validated twice with the same four expectations, each pass
marking the failing rows' ``_error``:

- ``sql``: the built-in forms (``not_null``, ``email``, ``in_set``, ``between``), one set-based
  statement over the table (what an entity's ``validate`` runs);
- ``gx``: the same rules as great-expectations 1.x expectations (``..._to_not_be_null``,
  ``..._to_match_regex`` with the same pattern, ``..._to_be_in_set``, ``..._to_be_between``),
  run in chunks of ``--chunk-rows`` through pandas batches (what an expectation without a
  built-in form runs), the import of great_expectations timed apart.

Both must fail the same rows. Progress goes to stderr; the result is one JSON line on stdout:
``sql_s``, ``gx_s``, ``sql_rows_per_s``, ``gx_rows_per_s`` (``rows_per_s`` is the SQL form's),
``gx_to_sql_ratio`` (how many times longer great-expectations takes), ``gx_import_s``,
``failed_rows`` and ``peak_rss_mb`` after each pass. The database is dropped at the end; the
server is ``IMPORT_PIPELINES_PG_URL`` or the embedded one under ``.data/bench-postgres``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from psycopg import sql  # noqa: E402

from import_pipelines.db import connection, drop_database, ensure_database  # noqa: E402
from import_pipelines.db.sql import ident  # noqa: E402
from import_pipelines.templates.model import Expectation  # noqa: E402
from import_pipelines.validation import validate_staged  # noqa: E402
from import_pipelines.validation.rules import EMAIL_PATTERN  # noqa: E402

STATUSES = ["active", "pending", "closed"]
SQL_SUITE = [
    Expectation(expect="not_null", field="email"),
    Expectation(expect="email", field="email"),
    Expectation(expect="in_set", field="status", values=STATUSES),
    Expectation(expect="between", field="minutes", min=0, max=100_000),
]
GX_SUITE = [
    Expectation(expect="expect_column_values_to_not_be_null", kwargs={"column": "email"}),
    Expectation(expect="expect_column_values_to_match_regex", kwargs={"column": "email", "regex": EMAIL_PATTERN}),
    Expectation(expect="expect_column_values_to_be_in_set", kwargs={"column": "status", "value_set": STATUSES}),
    Expectation(expect="expect_column_values_to_be_between",
                kwargs={"column": "minutes", "min_value": 0, "max_value": 100_000}),
]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def server_url() -> str:
    from import_pipelines.settings import server_url as settings_server_url

    return settings_server_url("bench-postgres")


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stage(url: str, rows: int) -> None:
    """The staging table: every 100th row breaks one expectation (in turn: no email, a bad email,
    an unknown status, negative minutes)."""
    with connection(url, autocommit=True) as conn:
        conn.execute("CREATE UNLOGGED TABLE staged (_rn bigint GENERATED ALWAYS AS IDENTITY, email text, status text,"
                     " minutes integer, nickname text, _error text)")
        conn.execute(
            "INSERT INTO staged (email, status, minutes, nickname) SELECT"
            " CASE WHEN i %% 400 = 0 THEN NULL WHEN i %% 400 = 100 THEN 'person' || i || '@localhost'"
            " ELSE 'person' || i || '@example.com' END,"
            " CASE WHEN i %% 400 = 200 THEN 'archived' ELSE (ARRAY['active', 'pending', 'closed'])[1 + i %% 3] END,"
            " CASE WHEN i %% 400 = 300 THEN -1 ELSE i %% 600 END, 'nick' || i"
            " FROM generate_series(1, %s) AS i", (rows,))
        conn.execute("CREATE INDEX ON staged (_rn)")
        conn.execute("ANALYZE staged")


def failing_rows(url: str) -> set[int]:
    with connection(url) as conn:
        return {r[0] for r in conn.execute("SELECT _rn FROM staged WHERE _error IS NOT NULL")}


def reset(url: str) -> None:
    with connection(url, autocommit=True) as conn:
        conn.execute("UPDATE staged SET _error = NULL WHERE _error IS NOT NULL")
        conn.execute("VACUUM ANALYZE staged")


def main(argv: list[str] | None = None) -> int:
    """Stage the rows, validate them both ways, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="staged rows (default 1000000)")
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows per great-expectations chunk")
    args = parser.parse_args(argv)
    server = server_url()
    name = f"bench_validation_{uuid.uuid4().hex[:8]}"
    url = ensure_database(server, name)
    try:
        progress(f"staging {args.rows:,} rows")
        stage(url, args.rows)
        types = {"email": "text", "status": "text", "minutes": "integer", "nickname": "text"}
        with connection(url, autocommit=True) as conn:
            started = time.perf_counter()
            outcome = validate_staged(conn, expectations=SQL_SUITE, staging=ident("staged"), rows=args.rows,
                                      types=types, log=lambda m: None)
            sql_s = time.perf_counter() - started
        sql_failed = failing_rows(url)
        rss_sql = peak_rss_mb()
        progress(f"sql: {sql_s:.2f} s, {len(sql_failed):,} rows failed")
        reset(url)

        started = time.perf_counter()
        import great_expectations  # noqa: F401 - timed apart from the validation

        gx_import_s = time.perf_counter() - started
        with connection(url, autocommit=True) as conn:
            started = time.perf_counter()
            gx = validate_staged(conn, expectations=GX_SUITE, staging=ident("staged"), rows=args.rows, types=types,
                                 chunk_rows=args.chunk_rows, log=lambda m: None, engine="great_expectations")
            gx_s = time.perf_counter() - started
        gx_failed = failing_rows(url)
        progress(f"great-expectations: {gx_s:.2f} s (+{gx_import_s:.2f} s import), {len(gx_failed):,} rows failed")
        if gx_failed != sql_failed:
            raise SystemExit(f"the two forms failed different rows: {len(sql_failed ^ gx_failed):,} differ")
        if [r.failed for r in outcome.results] != [r.failed for r in gx.results]:
            raise SystemExit(f"failures per expectation differ: sql {[r.failed for r in outcome.results]},"
                             f" great-expectations {[r.failed for r in gx.results]}")
        result = {
            "rows": args.rows, "chunk_rows": args.chunk_rows, "expectations": len(SQL_SUITE),
            "failed_rows": len(sql_failed), "sql_s": round(sql_s, 3), "gx_s": round(gx_s, 3),
            "gx_import_s": round(gx_import_s, 3), "rows_per_s": round(args.rows / sql_s),
            "sql_rows_per_s": round(args.rows / sql_s), "gx_rows_per_s": round(args.rows / gx_s),
            "gx_to_sql_ratio": round(gx_s / sql_s, 2), "peak_rss_mb_after_sql": rss_sql,
            "peak_rss_mb_after_gx": peak_rss_mb(),
        }
        print(json.dumps(result))
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
