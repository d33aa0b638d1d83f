"""Which library should detect a CSV file's encoding, dialect and header? Measured on a corpus.

The corpus is ``import_pipelines_tests/sources/csv_corpus.py`` (the CSV reader's tests read it too).

    python benchmarks/sniff_csv.py [--rows 300] [--repeat 3] [--sample-kb 64]

Every detector sees the same bounded sample (the first ``--sample-kb`` KiB, plus the last 16 KiB
for encoding), as the reader would. Encoding candidates: charset-normalizer, chardet, and
"BOM, then strict UTF-8, else charset-normalizer". Dialect and header candidates (all given the
same encoding, so only the dialect step differs): DuckDB's ``sniff_csv`` with its defaults
(delimiter, quote and rows to skip), DuckDB's tolerant sniffer (``ignore_errors``) with the
project's header rule, clevercsv's detector with the
header rule, and Python's ``csv.Sniffer`` with the header rule.

A file counts as *read correctly* when the project's reader, given the detected encoding,
delimiter, quote and header line, returns the true header names and every good row (the dirty
file's two bad rows must come out as errors). The last candidate is the project's own
``sniff_layout`` (DuckDB's tolerant sniffer, "no quote" read as the double quote, the header
rule), timed on the file rather than the sample.
Prints a table on stderr and one JSON line on stdout: per candidate, files right of
``len(corpus)``, per-aspect hits, and the median milliseconds per file.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_pipelines.sources.header import find_header  # noqa: E402
from import_pipelines_tests.sources.csv_corpus import CsvCase, corpus  # noqa: E402

DELIMITERS = [",", ";", "\t", "|"]


def sample_of(data: bytes, sample_kb: int) -> tuple[bytes, bytes]:
    """The head sample (whole lines) and a tail sample, as the reader takes them."""
    head = data[:sample_kb * 1024]
    tail = data[-16 * 1024:] if len(data) > len(head) else b""
    return head, tail


def same_codec(found: str | None, truth: str, data: bytes) -> bool:
    """Whether decoding with ``found`` gives the text the file was written as."""
    if not found:
        return False
    try:
        expected = data.decode(truth)
        got = data.decode(found)
    except (UnicodeDecodeError, LookupError):
        return False
    return got.lstrip("\ufeff") == expected.lstrip("\ufeff")


# --- encoding candidates ------------------------------------------------------------------------

def enc_charset_normalizer(head: bytes, tail: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(head + b"\n" + tail if tail else head).best()
    return best.encoding if best else None


def enc_chardet(head: bytes, tail: bytes) -> str | None:
    import chardet

    return chardet.detect(head + b"\n" + tail if tail else head)["encoding"]


def enc_bom_utf8_then_cn(head: bytes, tail: bytes) -> str | None:
    from import_pipelines.sources.sniff import detect_encoding

    return detect_encoding(head, tail)


ENCODINGS: dict[str, Callable[[bytes, bytes], str | None]] = {
    "charset-normalizer": enc_charset_normalizer,
    "chardet": enc_chardet,
    "bom+utf8+charset-normalizer": enc_bom_utf8_then_cn,
}


# --- dialect / header candidates: (text sample) -> (delimiter, quotechar, header_line) ------------

def _sample_lines(text: str) -> str:
    """The sample cut at its last line end, as the reader hands it to a sniffer."""
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[:cut + 1] if cut > 0 else text


def _rule_header(text: str, delimiter: str, quotechar: str) -> int:
    """The project's header rule on the sample, as a physical line number."""
    from import_pipelines.sources.sniff import first_rows

    rows, starts = first_rows(text, delimiter=delimiter, quotechar=quotechar)
    index, _ = find_header(rows)
    return starts[index]


def dialect_duckdb_own(text: str) -> tuple[str, str, int]:
    """DuckDB's sniffer with its defaults, trusted for the preamble too (``SkipRows``)."""
    import duckdb

    handle, name = tempfile.mkstemp(suffix=".csv")
    try:
        with open(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        with duckdb.connect() as con:
            con.execute("SET threads = 1")
            delimiter, quote, skip = con.execute("SELECT Delimiter, Quote, SkipRows FROM sniff_csv(?, "
                                                 "sample_size = -1)", [name]).fetchone()
    except duckdb.Error:
        return ",", '"', 1
    finally:
        Path(name).unlink()
    return ("\t" if delimiter == "\\t" else delimiter), ("" if quote == "(empty)" else quote), int(skip) + 1


def dialect_duckdb_rule(text: str) -> tuple[str, str, int]:
    """The project's choice: DuckDB's tolerant sniffer for the dialect, the header rule for the header."""
    from import_pipelines.sources.sniff import sniff_dialect

    delimiter, quotechar = sniff_dialect(text)
    return delimiter, quotechar, _rule_header(text, delimiter, quotechar)


def dialect_clevercsv(text: str) -> tuple[str, str, int]:
    import clevercsv

    dialect = clevercsv.Detector().detect(text, delimiters=DELIMITERS)
    if dialect is None or not dialect.delimiter:  # no delimiter found: a one-column file
        return ",", '"', 1
    return dialect.delimiter, dialect.quotechar, _rule_header(text, dialect.delimiter, dialect.quotechar)


def dialect_sniffer(text: str) -> tuple[str, str, int]:
    try:
        dialect = csv.Sniffer().sniff(text, delimiters="".join(DELIMITERS))
    except csv.Error:
        return ",", '"', 1
    return dialect.delimiter, dialect.quotechar, _rule_header(text, dialect.delimiter, dialect.quotechar)


DIALECTS: dict[str, Callable[[str], tuple[str, str, int]]] = {
    "duckdb (own preamble)": dialect_duckdb_own,
    "duckdb tolerant+rule": dialect_duckdb_rule,
    "project (sniff_layout)": None,
    "clevercsv+rule": dialect_clevercsv,
    "csv.Sniffer+rule": dialect_sniffer,
}


def read_correctly(case: CsvCase, path: Path, *, encoding: str, delimiter: str, quotechar: str,
                   header_line: int) -> bool:
    """Read the whole file with the project's reader and the detected layout; compare with the truth."""
    from import_pipelines.sources.csv_file import CsvSource
    from import_pipelines.sources.sniff import CsvLayout

    layout = CsvLayout(encoding=encoding, delimiter=delimiter, quotechar=quotechar, header_line=header_line,
                       header_found=True)
    try:
        source = CsvSource(path, layout=layout)
        good = [record for record in source.records() if record.error is None]
        return source.columns() == case.header and [[r.values.get(n) for n in case.header] for r in good] == case.rows
    except Exception:  # noqa: BLE001 - any failure is a file not read
        return False


def quote_ok(case: CsvCase, found: str) -> bool:
    """A quote character matters only when the file uses one."""
    uses_quotes = case.quotechar.encode() in case.data.replace(b"\x00", b"")
    return found == case.quotechar or (not uses_quotes and found in ("", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample-kb", type=int, default=64)
    args = parser.parse_args()
    cases = corpus(args.rows)
    result: dict = {"files": len(cases), "sample_kb": args.sample_kb, "encoding": {}, "dialect": {}}

    for name, detect in ENCODINGS.items():
        hits, times, misses = 0, [], []
        for case in cases:
            head, tail = sample_of(case.data, args.sample_kb)
            for _ in range(args.repeat):
                started = time.perf_counter()
                found = detect(head, tail)
                times.append(time.perf_counter() - started)
            if same_codec(found, case.encoding, case.data):
                hits += 1
            else:
                misses.append(f"{case.name}:{found}")
        result["encoding"][name] = {"right": hits, "median_ms": round(statistics.median(times) * 1000, 2),
                                    "misses": misses}

    from import_pipelines.sources.sniff import detect_encoding, sniff_layout

    folder = Path(tempfile.mkdtemp(prefix="sniff_csv_"))
    for name, detect in DIALECTS.items():
        counts = {"delimiter": 0, "quote": 0, "header": 0, "read_correctly": 0}
        times, misses = [], []
        for case in cases:
            head, tail = sample_of(case.data, args.sample_kb)
            encoding = detect_encoding(head, tail)
            text = _sample_lines(head.decode(encoding, errors="replace").lstrip("\ufeff"))
            path = folder / f"{case.name}.csv"
            path.write_bytes(case.data)
            for _ in range(args.repeat):
                started = time.perf_counter()
                if detect is None:
                    layout = sniff_layout(path)
                    delimiter, quotechar, header_line = layout.delimiter, layout.quotechar, layout.header_line
                else:
                    delimiter, quotechar, header_line = detect(text)
                times.append(time.perf_counter() - started)
            ok = {"delimiter": delimiter == case.delimiter, "quote": quote_ok(case, quotechar),
                  "header": header_line == case.header_line}
            for key, value in ok.items():
                counts[key] += value
            if read_correctly(case, path, encoding=encoding, delimiter=delimiter, quotechar=quotechar,
                              header_line=header_line):
                counts["read_correctly"] += 1
            else:
                misses.append(f"{case.name}:{delimiter!r},{quotechar!r},line {header_line}")
        result["dialect"][name] = {**counts, "median_ms": round(statistics.median(times) * 1000, 2),
                                   "misses": misses}

    for section in ("encoding", "dialect"):
        for name, figures in result[section].items():
            shown = {k: v for k, v in figures.items() if k != "misses"}
            print(f"{section:9} {name:28} {shown} misses={figures['misses']}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
