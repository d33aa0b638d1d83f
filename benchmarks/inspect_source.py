"""Benchmark inspecting a wide source: ``python benchmarks/inspect_source.py --tables 500``.

Creates a database of ``--tables`` tables (:mod:`import_pipelines.demo.wide_schema`: keys,
declared and undeclared references, a few rows each), then times, ``--runs`` times each and
alternating, the whole inspection (catalogue, masked samples, join suggestions with their data
checks) and, as the reference measured in the same run, the catalogue reader alone
(``describe_schema``). Prints one JSON line: tables, runs, the medians, their ratio and the
statements one inspection sends. The database is dropped at the end. The server is
``IMPORT_PIPELINES_PG_URL`` or the embedded one under ``.data/bench-postgres``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file has the name of the standard library's inspect module, which dataclasses imports: the
# benchmarks folder (first on the path when a script runs) gives way to the project root
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from import_pipelines.authoring.inspect import inspect_source  # noqa: E402
from import_pipelines.db import connection, drop_database, ensure_database  # noqa: E402
from import_pipelines.db.introspect import describe_schema  # noqa: E402
from import_pipelines.demo.wide_schema import create_wide_schema  # noqa: E402
from import_pipelines.settings import server_url  # noqa: E402


def main() -> None:
    """Parse the options, build the schema, time, print the JSON line, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = server_url("bench-postgres")
    name = f"bench_inspect_{uuid.uuid4().hex[:8]}"
    url = ensure_database(server, name)
    try:
        create_wide_schema(url, tables=args.tables)
        inspect_times, describe_times = [], []
        with connection(url, read_only=True) as conn:
            inspect_source(conn)  # warm the catalogue caches once, as any second run finds them
            for _ in range(args.runs):
                started = time.perf_counter()
                describe_schema(conn, details=True)
                describe_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                catalogue = inspect_source(conn)
                inspect_times.append(time.perf_counter() - started)
        inspect_median, describe_median = statistics.median(inspect_times), statistics.median(describe_times)
        print(json.dumps({"tables": len(catalogue.info.tables), "runs": args.runs,
                          "inspect_s_median": round(inspect_median, 3),
                          "describe_schema_s_median": round(describe_median, 3),
                          "inspect_to_describe_ratio": round(inspect_median / describe_median, 2),
                          "join_suggestions": len(catalogue.join_suggestions)}))
    finally:
        drop_database(server, name)


if __name__ == "__main__":
    main()
