"""How long the offline heuristic takes to map a wide file: ``python benchmarks/suggest_mapping.py --headers 200``.

The headers are the real products' export headers of the mapping corpus
(``import_pipelines_tests/mapping/corpus.py``), both splits, numbered where a name repeats, with
50 sample rows built from each column's own corpus values. The heuristic maps them ``--runs``
times; as the reference measured in the same run, the same headers and rows are only normalised
(``normalize_header`` over every header and ``str.strip`` over every sample value), the floor any
mapper pays. Prints one JSON line: headers, runs, median and worst seconds, their ratio to the
reference, and how many columns were mapped to a field.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_pipelines.mapping.fields import CONTACT_FIELDS  # noqa: E402
from import_pipelines.mapping.heuristic import suggest_heuristic  # noqa: E402
from import_pipelines.mapping.normalize import normalize_header  # noqa: E402
from import_pipelines_tests.mapping.corpus import wide_header_set  # noqa: E402


def main() -> None:
    """Parse the options, time the heuristic and the reference, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    headers, rows = wide_header_set(args.headers)
    mapping_times, reference_times = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        [normalize_header(h) for h in headers]
        [[str(v).strip() for v in row] for row in rows]
        reference_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        suggestion = suggest_heuristic(headers, rows, CONTACT_FIELDS)
        mapping_times.append(time.perf_counter() - started)
    median, reference = statistics.median(mapping_times), statistics.median(reference_times)
    print(json.dumps({"headers": len(headers), "runs": args.runs, "seconds_median": round(median, 4),
                      "seconds_worst": round(max(mapping_times), 4),
                      "ratio_to_normalising": round(median / reference, 1),
                      "mapped": sum(1 for c in suggestion.columns if c.field not in (None, "custom"))}))


if __name__ == "__main__":
    main()
