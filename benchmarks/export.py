"""Benchmark the exports: ``python benchmarks/export.py --rows 1000000``.

Fills a table of ``--rows`` rows (set-based: a bigint key, two texts, one in a hundred a formula
that must be neutralised, a numeric, a timestamptz, a boolean, a jsonb), then exports it to each
format in its own process and prints one JSON line: per format its rows/s, seconds, file size
and the process's peak RSS in MB, and its ratio to the reference measured in the same run: a raw
``COPY (SELECT * FROM t) TO STDOUT`` of the same rows written to a file (its peak RSS too: the
floor of a Python process with the project imported). The database is dropped at the end. The
server is ``IMPORT_PIPELINES_PG_URL`` or the embedded one under ``.data/bench-postgres``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_pipelines.db import connection, drop_database, ensure_database  # noqa: E402

FORMATS = ("csv", "jsonl", "json", "xlsx")


def generate(url: str, rows: int) -> None:
    """The table to export."""
    with connection(url) as conn:
        conn.execute("CREATE TABLE bench_rows (id bigint PRIMARY KEY, name text, note text, amount numeric(12, 2),"
                     " changed_at timestamptz, active boolean, data jsonb)")
        conn.execute("INSERT INTO bench_rows SELECT g, 'name ' || g,"
                     " CASE WHEN g %% 100 = 0 THEN '=HYPERLINK(\"http://x/' || g || '\")' ELSE 'a note about ' || g END,"
                     " (g %% 100000) / 100.0 - 50, timestamptz '2024-01-01' + g * interval '1 minute', g %% 2 = 0,"
                     " jsonb_build_object('n', g, 'tag', 't' || g %% 7) FROM generate_series(1, %s) g", (rows,))
        conn.commit()


def child(url: str, fmt: str, folder: str) -> dict:
    """One export (or the raw COPY, ``fmt`` ``raw``) in this process: seconds, rows, bytes, peak RSS."""
    from psycopg import sql

    from import_pipelines.control.export import export_query

    path = Path(folder) / f"export.{fmt}"
    with connection(url, read_only=True) as conn:
        started = time.perf_counter()
        if fmt == "raw":
            with path.open("wb") as out, conn.cursor() as cur:
                with cur.copy("COPY (SELECT * FROM bench_rows) TO STDOUT") as copy:
                    for chunk in copy:
                        out.write(chunk)
                rows = cur.rowcount
        else:
            rows = export_query(conn, sql.SQL("SELECT * FROM bench_rows"), fmt=fmt, path=path).rows
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "bytes": path.stat().st_size,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def measure(url: str, fmt: str, folder: str) -> dict:
    """:func:`child` in a fresh process, so each peak RSS is its format's own."""
    out = subprocess.run([sys.executable, __file__, "--child", fmt, "--url", url, "--folder", folder],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows to export (default 100000)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats to measure")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.url, args.child, args.folder)))
        return 0

    from import_pipelines.settings import server_url

    server = server_url("bench-postgres")
    name = f"bench_export_{uuid.uuid4().hex[:8]}"
    try:
        url = ensure_database(server, name)
        generate(url, args.rows)
        with tempfile.TemporaryDirectory() as folder:
            raw = measure(url, "raw", folder)
            report: dict = {"rows": args.rows, "raw_copy_rows_per_s": round(raw["rows"] / raw["seconds"]),
                            "raw_copy_peak_rss_mb": raw["peak_rss_mb"]}
            for fmt in args.formats.split(","):
                result = measure(url, fmt, folder)
                if result["rows"] != args.rows:
                    raise SystemExit(f"{fmt}: exported {result['rows']} rows of {args.rows}")
                rate = result["rows"] / result["seconds"]
                report[fmt] = {"rows_per_s": round(rate), "seconds": round(result["seconds"], 2),
                               "mb": round(result["bytes"] / 2**20, 1), "peak_rss_mb": result["peak_rss_mb"],
                               "ratio_to_raw_copy": round(rate / report["raw_copy_rows_per_s"], 3)}
        print(json.dumps(report))
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
