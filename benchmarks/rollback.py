"""Benchmark the rollback of a run: ``python benchmarks/rollback.py --rows 1000000``.

Imports ``--rows`` people into a fresh target (a first run), then changes a tenth of them and
adds half as many new ones at the source and imports again (run A: ``rows / 2`` created,
``rows / 10`` updated, with their audit), and rolls run A back. Prints one JSON line: the
rollback's seconds and rows/s (rows deleted plus rows restored), the ratio of its time to run
A's own import measured in the same run, whether the target's rows hash to the same md5 as
before run A (they must), and the process's peak RSS. The databases are dropped at the end. The
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

from import_pipelines.db import connection, drop_database, ensure_database  # noqa: E402
from import_pipelines.pipeline.steps import EntityRun, dedupe, extract, load, map_and_validate  # noqa: E402
from import_pipelines.templates.loader import parse_template  # noqa: E402

TEMPLATE = {
    "name": "people", "source_system": "crm",
    "entities": {"people": {
        "target": "people", "source_id": "external_id",
        "query": {"base": {"table": "src_people", "alias": "p"}},
        "fields": {"external_id": "p.id", "name": "p.name", "email": "p.email", "city": "p.city",
                   "joined_at": "p.joined_at"}}},
}


def run(template, source: str, target: str, run_id: str) -> dict[str, int]:
    """One import of the one entity; its counts."""
    entity = EntityRun(profile="people", template=template, entity_name="people", run_id=run_id, source_url=source,
                       target_url=target)
    quiet = lambda message: None  # noqa: E731
    staged = dedupe(entity, map_and_validate(entity, extract(entity, log=quiet), log=quiet), log=quiet)
    return load(entity, staged, log=quiet).counts


def content_md5(url: str) -> str:
    """The md5 of every target row in key order: equal means the same rows, ids included."""
    with connection(url) as conn:
        return conn.execute("SELECT md5(string_agg(p::text, ',' ORDER BY id)) FROM people AS p").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the first import (default 100000)")
    args = parser.parse_args(argv)

    from import_pipelines.control.rollback import rollback_run
    from import_pipelines.settings import server_url

    server = server_url("bench-postgres")
    tag = uuid.uuid4().hex[:8]
    names = (f"bench_rollback_src_{tag}", f"bench_rollback_tgt_{tag}")
    try:
        source, target = (ensure_database(server, name) for name in names)
        with connection(source) as conn:
            conn.execute("CREATE TABLE src_people (id bigint PRIMARY KEY, name text, email text, city text,"
                         " joined_at timestamptz)")
            conn.execute("INSERT INTO src_people SELECT g, 'Person ' || g, 'p' || g || '@example.org',"
                         " 'City ' || g %% 500, timestamptz '2020-01-01' + g * interval '1 minute'"
                         " FROM generate_series(1, %s) g", (args.rows,))
            conn.commit()
        with connection(target) as conn:
            conn.execute("CREATE TABLE people (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                         " source_system text NOT NULL, external_id text, name text, email text, city text,"
                         " joined_at timestamptz, UNIQUE (source_system, external_id))")
            conn.commit()
        template = parse_template(TEMPLATE)
        run(template, source, target, "first")
        before = content_md5(target)
        with connection(source) as conn:
            conn.execute("UPDATE src_people SET city = city || ' (moved)' WHERE id % 10 = 0")
            conn.execute("INSERT INTO src_people SELECT g, 'Person ' || g, 'p' || g || '@example.org', 'New',"
                         " now() FROM generate_series(%s::bigint, %s::bigint) g",
                         (args.rows + 1, args.rows + args.rows // 2))
            conn.commit()
        started = time.perf_counter()
        counts = run(template, source, target, "run-a")
        import_seconds = time.perf_counter() - started
        with connection(target, autocommit=True) as conn:
            started = time.perf_counter()
            outcome = rollback_run(conn, "run-a")
            seconds = time.perf_counter() - started
        undone = outcome.total("deleted") + outcome.total("restored")
        print(json.dumps({
            "rows": args.rows, "run_a_created": counts["created"], "run_a_updated": counts["updated"],
            "deleted": outcome.total("deleted"), "restored": outcome.total("restored"),
            "seconds": round(seconds, 2), "rows_per_s": round(undone / seconds),
            "run_a_import_seconds": round(import_seconds, 2), "ratio_to_run_a": round(seconds / import_seconds, 3),
            "target_as_before": content_md5(target) == before,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    finally:
        for name in names:
            drop_database(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
