"""Benchmark the Airtable source against the local fake: ``python benchmarks/import_api.py --records 25000``.

The fake Airtable (:mod:`import_pipelines.demo.airtable_server`) runs in a separate process, so
its serialisation neither shares this process's interpreter lock nor counts in its memory. The
real pyairtable client reads ``--records`` generated cases (every field type mapped) through the
source adapter, first ``--repeat`` times with no rate limit (the reference: what the reader costs
when the server answers at once; the median is reported) and then once at Airtable's 5 requests
per second per base (``--skip-limited`` leaves it out: it takes ``records / 100 / 5`` seconds and
more by construction).

Prints one JSON line: ``rows_per_s`` and ``seconds`` of the unlimited reads, ``requests``, the
split of a read's time into ``request_s`` (inside HTTP requests: sending, the fake's work,
reading the body) and ``processing_s`` (everything else on our side: JSON decoding, mapping the
fields, pagination; ``mapping_s`` is the field mapping alone), ``peak_rss_mb`` (this process's
peak resident set, which stays flat in N because a read holds one page at a time) and
``limited``: the same figures at 5 requests per second.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_pipelines.sources.airtable import AirtableConfig, AirtableSource  # noqa: E402

TOKEN_ENV = "IMPORT_PIPELINES_BENCH_AIRTABLE_TOKEN"


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def read_once(url: str, base: str, *, per_second: int | None) -> dict:
    """Read the whole table once; return the report's figures and the wall time."""
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


def main() -> None:
    """Start the fake, read, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=3, help="unlimited reads; the median is reported")
    parser.add_argument("--skip-limited", action="store_true", help="leave out the read at 5 requests per second")
    args = parser.parse_args()

    token = "patBENCH.fake-token"
    os.environ[TOKEN_ENV] = token
    server = subprocess.Popen([sys.executable, "-m", "import_pipelines.demo.airtable_server", "--records",
                               str(args.records), "--token", token], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        rss_before = peak_rss_mb()
        runs = [read_once(ready["url"], ready["base"], per_second=None) for _ in range(args.repeat)]
        limited = None if args.skip_limited else read_once(ready["url"], ready["base"], per_second=5)
    finally:
        server.terminate()
        server.wait(timeout=10)
    for run in runs + ([limited] if limited else []):
        assert run["records"] == args.records, f"read {run['records']} of {args.records} records"

    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 3)

    seconds = median("seconds")
    result = {
        "records": args.records, "rows_per_s": round(args.records / seconds), "seconds": seconds,
        "requests": runs[0]["requests"], "request_s": median("request_s"), "processing_s": median("processing_s"),
        "mapping_s": median("mapping_s"), "repeat": args.repeat,
        "peak_rss_mb": peak_rss_mb(), "rss_before_reads_mb": rss_before,
    }
    if limited:
        result["limited"] = {"requests_per_second": 5, "rows_per_s": round(args.records / limited["seconds"]),
                             "seconds": round(limited["seconds"], 3), "requests": limited["requests"],
                             "throttled_s": round(limited["throttled_s"], 3), "request_s": round(limited["request_s"], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
