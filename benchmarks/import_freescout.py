"""Benchmark the FreeScout import: ``python benchmarks/import_freescout.py --rows 1000000``.

Creates fresh source and target databases (dropped at the end) on ``IMPORT_PIPELINES_PG_URL`` or
the embedded server under ``.data/bench-postgres``, generates the FreeScout demo sized so the
import reads about ``--rows`` rows (``customers_for_rows``), migrates the target, and runs every
entity of the ``freescout`` template in process through the pipeline steps (extract -> map ->
dedupe -> load), as the Dagster job does.

The reference on the same rows is a raw copy: per entity, ``COPY (<compiled SELECT>) TO STDOUT``
on the source streamed into ``COPY <plain table with the same columns> FROM STDIN`` on the
target (binary both ways, no validation, no merge, no audit). ``ratio_to_raw_copy`` is the
import's rows/s divided by the raw copy's rows/s.

Progress goes to stderr; the result is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from import_pipelines.db import connect, drop_database, ensure_database, ident  # noqa: E402
from import_pipelines.demo.freescout import customers_for_rows, generate_freescout  # noqa: E402
from import_pipelines.extract.postgres import source_column_types, staging_type  # noqa: E402
from import_pipelines.pipeline.steps import EntityRun, LoadResult, dedupe, extract, load, map_and_validate  # noqa: E402
from import_pipelines.query.compile import compile_query  # noqa: E402
from import_pipelines.templates.graph import chain_depth, dependency_order  # noqa: E402
from import_pipelines.service_vault.migrate import migrate  # noqa: E402
from import_pipelines.settings import SERVER_URL_ENV  # noqa: E402
from import_pipelines.settings import server_url as settings_server_url  # noqa: E402
from import_pipelines.templates.loader import load_template  # noqa: E402
from import_pipelines.templates.model import Template  # noqa: E402

RAW_SCHEMA = "raw_copy"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def server_url() -> tuple[str, str]:
    """The server to use and how to name it in the result (never with credentials)."""
    configured = os.environ.get(SERVER_URL_ENV)
    if configured:
        params = conninfo_to_dict(configured)
        host = params.get("host") or "localhost"
        return configured, f"{host}:{params['port']}" if params.get("port") else host
    return settings_server_url("bench-postgres"), "embedded"


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def settle(server: str) -> None:
    """Write the generator's dirty pages out before the clock starts, so the import does not pay for them."""
    try:
        with connect(server, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        progress("no CHECKPOINT privilege on this server: the import may share the disk with the generator's writes")


def run_import(template: Template, *, source: str, target: str, batch_rows: int | None,
               workers: int) -> tuple[dict[str, LoadResult], dict[str, float]]:
    """Every entity through the pipeline steps, scheduled as the Dagster job schedules them.

    Extract, map and dedupe of an entity do not wait for the entities it references (they only
    read the source and staging); its load does. So two threads stage entities in the order of
    the job's op priorities, longest chain of loads first (Dagster's multiprocess executor runs two
    steps at once on this machine), while the loads follow, each after the entities it references.
    Returns the load results and the peak RSS after each entity (where memory grew).
    """
    run_id = str(uuid.uuid4())
    results, rss = {}, {}
    # the steps log each chunk; the benchmark keeps the step summaries only
    log = lambda message: progress(message) if "%" not in message else None  # noqa: E731
    runs = {name: EntityRun(profile="bench", template=template, entity_name=name, run_id=run_id, source_url=source,
                            target_url=target, batch_rows=batch_rows, workers=workers)
            for name in dependency_order(template)}
    depth = chain_depth(template)
    with ThreadPoolExecutor(max_workers=2) as stager:
        # the job's op priorities: entities with the longest chain of loads behind them first
        staged = {name: stager.submit(lambda r: dedupe(r, map_and_validate(r, extract(r, log=log), log=log), log=log),
                                      runs[name]) for name in sorted(runs, key=lambda name: -depth[name])}
        for name, run in runs.items():
            results[name] = load(run, staged[name].result(), log=log)
            rss[name] = peak_rss_mb()
            progress(f"{name}: {results[name].rows:,} rows in {results[name].seconds:.2f} s {results[name].counts},"
                     f" peak RSS {rss[name]} MB")
    return results, rss


def raw_copy(template: Template, *, source: str, target: str) -> dict[str, tuple[int, float]]:
    """Per entity: stream the compiled SELECT's COPY output into a plain table; (rows, seconds)."""
    measured = {}
    with connect(source, read_only=True) as src, connect(target, autocommit=True) as tgt:
        tgt.execute(sql.SQL("DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}").format(s=ident(RAW_SCHEMA)))
        version = src.info.server_version
        for name, entity in template.entities.items():
            compiled = compile_query(entity.query, entity.fields, server_version=version)
            types = source_column_types(src, compiled)
            src.rollback()
            table = ident(RAW_SCHEMA, name)
            tgt.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(
                sql.SQL("{} {}").format(ident(c), sql.SQL(staging_type(t)))
                for c, t in zip(compiled.columns, types))))
            started = time.perf_counter()
            out_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(compiled.statement)
            in_sql = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table)
            with tgt.transaction():
                with src.cursor().copy(out_sql) as copy_out, tgt.cursor().copy(in_sql) as copy_in:
                    for block in copy_out:
                        copy_in.write(block)
            src.rollback()
            seconds = time.perf_counter() - started
            rows = tgt.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]
            measured[name] = (rows, seconds)
            progress(f"raw copy {name}: {rows:,} rows in {seconds:.2f} s")
        tgt.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(RAW_SCHEMA)))
    return measured


def text_check_cost(template: Template, *, source: str, target: str, runs: int) -> dict[str, float]:
    """The extract with and without the UTF-8 check of each buffer, alternated ``runs`` times.

    Every entity is streamed into a scratch staging table by ``stream_to_staging`` exactly as the
    extract step does; the medians of the summed seconds are compared.
    """
    import statistics

    from import_pipelines.extract.postgres import stream_to_staging

    seconds: dict[bool, list[float]] = {True: [], False: []}
    rows = 0
    with connect(source, read_only=True) as probe:
        version = probe.info.server_version
    with connect(target) as tgt:
        tgt.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(RAW_SCHEMA)))
        tgt.commit()
        for attempt in range(runs):
            for check in ((True, False) if attempt % 2 == 0 else (False, True)):
                started = time.perf_counter()
                rows = 0
                for name, entity in template.entities.items():
                    compiled = compile_query(entity.query, entity.fields, server_version=version)
                    rows += stream_to_staging(source_url=source, target=tgt, compiled=compiled, schema=RAW_SCHEMA,
                                              table=name, chunk_rows=10**9, check_text=check)
                seconds[check].append(time.perf_counter() - started)
        tgt.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(RAW_SCHEMA)))
        tgt.commit()
    with_check, without = statistics.median(seconds[True]), statistics.median(seconds[False])
    progress(f"extract of {rows:,} rows: {with_check:.3f} s with the UTF-8 check, {without:.3f} s without"
             f" (medians of {runs})")
    return {"rows": rows, "runs": runs, "with_check_s": round(with_check, 3), "without_check_s": round(without, 3),
            "ratio": round(with_check / without, 3)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="approximate rows the import reads (default 100000)")
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per batch (default: the template's)")
    parser.add_argument("--workers", type=int, default=2, help="merge sessions per entity (default 2)")
    parser.add_argument("--text-check-runs", type=int, default=0,
                        help="also time the extract with and without its UTF-8 check, this many times each")
    args = parser.parse_args(argv)

    server, server_name = server_url()
    tag = uuid.uuid4().hex[:8]
    source_db, target_db = f"bench_fs_src_{tag}", f"bench_fs_tgt_{tag}"
    try:
        source, target = ensure_database(server, source_db), ensure_database(server, target_db)
        customers = customers_for_rows(args.rows)
        progress(f"generating FreeScout demo: {customers:,} customers for about {args.rows:,} rows")
        started = time.perf_counter()
        tables = generate_freescout(source, customers=customers)
        generate_seconds = time.perf_counter() - started
        progress(f"generated in {generate_seconds:.1f} s: {tables}")
        migrate(target)
        template = load_template("freescout")
        settle(server)

        started = time.perf_counter()
        results, rss = run_import(template, source=source, target=target, batch_rows=args.batch_rows,
                                  workers=args.workers)
        seconds = time.perf_counter() - started
        rows = sum(r.rows for r in results.values())
        progress(f"import: {rows:,} rows in {seconds:.1f} s")

        raw = raw_copy(template, source=source, target=target)
        text_check = (text_check_cost(template, source=source, target=target, runs=args.text_check_runs)
                      if args.text_check_runs else None)
        raw_rows, raw_seconds = sum(r for r, _ in raw.values()), sum(s for _, s in raw.values())
        if raw_rows != rows:
            progress(f"warning: the raw copy read {raw_rows:,} rows, the import {rows:,}")
        rows_per_s = rows / seconds
        raw_per_s = raw_rows / raw_seconds
        per_entity = {name: {"rows": r.rows, "seconds": round(r.seconds, 2), "rows_per_s": round(r.rows_per_s),
                             **r.counts, "duplicates": r.duplicates, "raw_copy_seconds": round(raw[name][1], 2),
                             "peak_rss_mb_after": rss[name]}
                      for name, r in results.items()}
        print(json.dumps({
            "rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows_per_s),
            "peak_rss_mb": peak_rss_mb(),
            "raw_copy_rows_per_s": round(raw_per_s), "ratio_to_raw_copy": round(rows_per_s / raw_per_s, 3),
            "per_entity": per_entity, "generate_seconds": round(generate_seconds, 2), "customers": customers,
            "batch_rows": args.batch_rows or template.batch_rows, "workers": args.workers, "server": server_name,
            **({"text_check": text_check} if text_check else {})}))
    finally:
        drop_database(server, source_db)
        drop_database(server, target_db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
