"""Benchmark an Airtable sync against the local fake: ``python benchmarks/import_api.py --records 25000``.

The fake Airtable (:mod:`import_pipelines.demo.airtable_server`) runs in a separate process, so
its serialisation neither shares this process's interpreter lock nor counts in its memory. It
serves ``--records`` generated cases (every field type) and their notices (about 1.5 per case).

**The import** (the headline figures): the ``airtable_cases`` template's three entities through
every step — the cases read once for offenders and cases, the notices read, map, dedupe (offenders
by name and postcode), load with audit — into a fresh target database with the enforcement
schema (``IMPORT_PIPELINES_PG_URL``, else the embedded server under ``.data/bench-postgres``). Each
import runs in a child process of its own, so its ``peak_rss_mb`` is the import's alone (it stays
flat in N: records stream page by page into COPY). First with no rate limit (``rows_per_s``:
source records per second, read to load; ``request_s``: seconds inside HTTP requests, the fake's
work included; ``processing_s``: everything else, ours), then at Airtable's 5 requests per second
per base (``limited``; ``--skip-limited`` leaves it out), where the requests are the whole time.

**The reader alone** (``reader``): the cases read through the source adapter, ``--repeat`` times
with no rate limit (medians) and once at 5 requests per second, as before.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_pipelines.sources.airtable import AirtableConfig, AirtableSource  # noqa: E402

TOKEN_ENV = "IMPORT_PIPELINES_BENCH_AIRTABLE_TOKEN"


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def read_once(url: str, base: str, *, per_second: int | None) -> dict:
    """Read the whole Cases table once; return the report's figures and the wall time."""
    config = AirtableConfig(base=base, table="Cases", token_env=TOKEN_ENV, endpoint_url=url,
                            modified_field="Last Modified", requests_per_second=per_second)
    source = AirtableSource(config)
    began = time.perf_counter()
    count = sum(1 for _ in source.records())
    seconds = time.perf_counter() - began
    stats = source.report.stats
    return {"records": count, "seconds": seconds, "requests": stats.requests, "request_s": stats.request_s,
            "throttled_s": stats.throttled_s, "waited_s": stats.waited_s, "mapping_s": source.report.mapping_s,
            "processing_s": seconds - stats.request_s - stats.throttled_s - stats.waited_s}


def import_once(url: str, base: str, *, per_second: int | None) -> dict:
    """The whole airtable_cases import into a fresh target database; its figures (run in a child process)."""
    from import_freescout import server_url, settle

    from import_pipelines.db import connection, drop_database, ensure_database
    from import_pipelines.enforcement import migrate
    from import_pipelines.pipeline.steps import EntityRun, dedupe, extract, load, map_and_validate
    from import_pipelines.templates.graph import dependency_order
    from import_pipelines.templates.loader import load_template

    server, _ = server_url()
    database = f"bench_api_{uuid.uuid4().hex[:8]}"
    target = ensure_database(server, database)
    try:
        migrate(target)
        settle(server)
        template = load_template("airtable_cases")
        source = {"kind": "airtable", "base": base, "endpoint_url": url, "token_env": TOKEN_ENV,
                  "requests_per_second": per_second}
        run_id = str(uuid.uuid4())
        quiet = lambda message: None  # noqa: E731
        # modules a Dagster run worker has loaded already: their import is not the import's time
        import import_pipelines.mapping.resource  # noqa: F401
        import import_pipelines.sources.files  # noqa: F401
        import pyairtable  # noqa: F401
        counts, steps = {}, {}
        began = time.perf_counter()
        for name in dependency_order(template):
            run = EntityRun(profile="bench_api", template=template, entity_name=name, run_id=run_id, source_url="",
                            target_url=target, record_source=source)
            step = time.perf_counter()
            result = load(run, dedupe(run, map_and_validate(run, extract(run, log=quiet), log=quiet), log=quiet),
                          log=quiet)
            counts[name] = {action: count for action, count in result.counts.items() if count}
            steps[name] = round(time.perf_counter() - step, 3)
        seconds = time.perf_counter() - began
        with connection(target) as conn:
            reads = [row[0] for row in conn.execute("SELECT report FROM import_control.record_reads")]
    finally:
        drop_database(server, database)
    total = {key: sum(read[key] for read in reads) for key in ("records", "requests", "request_s", "throttled_s",
                                                              "waited_s", "mapping_s", "rate_limited")}
    waiting = total["request_s"] + total["throttled_s"] + total["waited_s"]
    return {"source_records": total["records"], "seconds": round(seconds, 3),
            "rows_per_s": round(total["records"] / seconds), "requests": total["requests"],
            "request_s": round(total["request_s"], 3), "throttled_s": round(total["throttled_s"], 3),
            "processing_s": round(seconds - waiting, 3), "requests_share": round(waiting / seconds, 3),
            "entity_seconds": steps, "counts": counts, "peak_rss_mb": peak_rss_mb()}


def child_import(url: str, base: str, *, per_second: int | None) -> dict:
    """:func:`import_once` in a fresh interpreter, so its peak memory is the import's own."""
    command = [sys.executable, __file__, "--phase", "import", "--url", url, "--base", base]
    if per_second:
        command += ["--per-second", str(per_second)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"the import failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Start the fake, import and read, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=25_000, help="cases (each with about 1.5 notices)")
    parser.add_argument("--repeat", type=int, default=3, help="unlimited reader-only reads; the median is reported")
    parser.add_argument("--skip-limited", action="store_true", help="leave out the runs at 5 requests per second")
    parser.add_argument("--phase", choices=["all", "import"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--per-second", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    token = "patBENCH.fake-token"
    os.environ[TOKEN_ENV] = token
    if args.phase == "import":
        print(json.dumps(import_once(args.url, args.base, per_second=args.per_second)))
        return
    server = subprocess.Popen([sys.executable, "-m", "import_pipelines.demo.airtable_server", "--records",
                               str(args.records), "--token", token], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        url, base = ready["url"], ready["base"]
        full = child_import(url, base, per_second=None)
        limited_import = None if args.skip_limited else child_import(url, base, per_second=5)
        rss_before = peak_rss_mb()
        runs = [read_once(url, base, per_second=None) for _ in range(args.repeat)]
        limited = None if args.skip_limited else read_once(url, base, per_second=5)
    finally:
        server.terminate()
        server.wait(timeout=10)
    for run in runs + ([limited] if limited else []):
        assert run["records"] == args.records, f"read {run['records']} of {args.records} records"
    expected = args.records + ready["notices"]
    for outcome in (full, limited_import):
        if outcome:
            assert outcome["source_records"] == expected, f"imported {outcome['source_records']} of {expected}"
            assert outcome["counts"]["cases"].get("created") == args.records, outcome["counts"]

    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 3)

    seconds = median("seconds")
    result = {"records": args.records, "notices": ready["notices"], **full}
    if limited_import:
        result["limited"] = {"requests_per_second": 5, **{key: limited_import[key] for key in (
            "seconds", "rows_per_s", "requests", "request_s", "throttled_s", "processing_s", "requests_share",
            "peak_rss_mb")}}
    result["reader"] = {
        "records": args.records, "rows_per_s": round(args.records / seconds), "seconds": seconds,
        "requests": runs[0]["requests"], "request_s": median("request_s"), "processing_s": median("processing_s"),
        "mapping_s": median("mapping_s"), "repeat": args.repeat, "peak_rss_mb": peak_rss_mb(),
        "rss_before_reads_mb": rss_before}
    if limited:
        result["reader"]["limited"] = {
            "requests_per_second": 5, "rows_per_s": round(args.records / limited["seconds"]),
            "seconds": round(limited["seconds"], 3), "requests": limited["requests"],
            "throttled_s": round(limited["throttled_s"], 3), "request_s": round(limited["request_s"], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
