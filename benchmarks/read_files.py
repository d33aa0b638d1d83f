"""Benchmark the file readers against a raw PostgreSQL COPY of the same CSV.

    python benchmarks/read_files.py --rows 1000000 [--sheet-rows 100000] [--repeat 3]

Generates an N-row, 15-column contacts CSV (accented names, quoted commas, doubled quotes, a
two-line note every 97 rows, empty fields), the same rows as a JSON array and as JSON Lines, and
``--sheet-rows`` of them as an .xlsx (openpyxl writes about 6,000 rows a second, so the sheet is
smaller). Each reader runs in a fresh process (so each reports its own peak RSS) and reads
every record: CSV through ``rows()`` (the bulk view) and ``records()`` (the record contract),
JSON through ``records()``, the sheet through ``records()``.

The reference, in the same run on the same CSV: ``COPY <plain table of 15 text columns> FROM
STDIN (FORMAT csv, HEADER true)`` on ``IMPORT_PIPELINES_PG_URL`` (or the embedded server under
``.data/bench-postgres``), the file streamed in 1 MiB chunks. Readers and COPY alternate, and each
figure is the median of ``--repeat`` runs. ``csv_records_ratio_to_copy`` is the CSV reader's
records/s over COPY's rows/s. Progress goes to stderr; the result is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ["id", "first_name", "last_name", "email", "phone", "mobile", "company", "job_title", "address_line1",
           "city", "state", "zip_code", "country", "created_at", "notes"]
FIRST = ["José", "Zoë", "Björn", "François", "Mary", "John", "Chloé", "Jürgen", "Wei", "Aisha", "Seán", "Ömer"]
LAST = ["Müller", "García", "O'Brien", "Dubois", "Nowak", "Smith", "Rossi", "Fernández", "Johnson", "Ng"]
COMPANIES = ["Acme, Inc.", "Globex GmbH", "Initech", "Umbrella S.A.", "Müller & Söhne KG", ""]
CITIES = ["Paris", "München", "Zürich", "São Paulo", "Kraków", "Springfield", "Köln", "Oslo"]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). ``ru_maxrss`` would not do: Linux carries it
    across the exec of a spawned child, which would then report its parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def contact(number: int) -> list[str]:
    """One contact row, deterministic, with the dirt real exports carry."""
    first, last = FIRST[number % len(FIRST)], LAST[number * 7 % len(LAST)]
    note = ""
    if number % 97 == 0:
        note = "called twice\nprefers email"
    elif number % 11 == 0:
        note = 'said "call me later", twice'
    return [str(number), first, last, f"user{number}@example.com", f"+1 (555) {number % 1000:03d}-{number % 10000:04d}",
            "" if number % 5 else f"555.{number:07d}", COMPANIES[number % len(COMPANIES)], "Engineer",
            f"{number % 999} Main St", CITIES[number % len(CITIES)], "IL", f"{number % 99999:05d}", "US",
            f"2024-{number % 12 + 1:02d}-{number % 28 + 1:02d} 10:{number % 60:02d}:00", note]


def generate(folder: Path, rows: int, sheet_rows: int) -> dict[str, Path]:
    """Write the CSV, the JSON array, the JSON Lines file and the sheet; return their paths."""
    paths = {"csv": folder / "contacts.csv", "json": folder / "contacts.json", "jsonl": folder / "contacts.jsonl",
             "xlsx": folder / "contacts.xlsx"}
    with open(paths["csv"], "w", encoding="utf-8", newline="") as out_csv, \
            open(paths["json"], "w", encoding="utf-8") as out_json, \
            open(paths["jsonl"], "w", encoding="utf-8") as out_lines:
        writer = csv.writer(out_csv)
        writer.writerow(COLUMNS)
        out_json.write("[")
        for number in range(1, rows + 1):
            row = contact(number)
            writer.writerow(row)
            line = json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False)
            out_json.write(("," if number > 1 else "") + line + "\n")
            out_lines.write(line + "\n")
        out_json.write("]")
    if sheet_rows:
        import openpyxl

        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("Contacts")
        sheet.append(COLUMNS)
        for number in range(1, sheet_rows + 1):
            row = contact(number)
            row[0] = number  # typed id, as a sheet would hold it
            sheet.append(row)
        workbook.save(paths["xlsx"])
    return paths


def read_in_child(kind: str, path: str, queue: multiprocessing.Queue) -> None:
    """Read every record of ``path`` with one reader; report (records, seconds, peak RSS MB)."""
    from import_pipelines.sources.csv_file import CsvSource
    from import_pipelines.sources.excel import ExcelSource
    from import_pipelines.sources.json_file import JsonSource

    started = time.perf_counter()
    if kind == "csv_rows":
        count = sum(1 for _ in CsvSource(path).rows())
    elif kind == "csv_records":
        count = sum(1 for _ in CsvSource(path).records())
    elif kind in ("json_array", "jsonl"):
        count = sum(1 for _ in JsonSource(path).records())
    else:
        count = sum(1 for _ in ExcelSource(path).records())
    elapsed = time.perf_counter() - started
    queue.put((count, elapsed, peak_rss_mb()))


def run_in_child(target, *args: object) -> tuple[int, float, float]:
    """Run ``target(*args, queue)`` in a fresh (spawned) process and return what it puts on the queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get(timeout=3600)
    process.join()
    return result


def copy_file(conn, table: str, path: Path) -> int:
    """``COPY table FROM STDIN (FORMAT csv, HEADER true)`` of the file, streamed in 1 MiB chunks; the rows."""
    from psycopg import sql

    from import_pipelines.db import ident

    with conn.cursor() as cursor, open(path, "rb") as handle:
        with cursor.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(ident(table))) as copy:
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        return cursor.rowcount


def copy_once(url: str, path: Path, columns: list[str] = COLUMNS) -> tuple[int, float]:
    """COPY the CSV into a fresh plain table of ``columns`` (text); (rows, seconds)."""
    from psycopg import sql

    from import_pipelines.db import connect, ident

    table = f"raw_copy_{uuid.uuid4().hex[:8]}"
    with connect(url) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
            ident(table), sql.SQL(", ").join(sql.SQL("{} text").format(ident(name)) for name in columns)))
        conn.commit()
        started = time.perf_counter()
        rows = copy_file(conn, table, path)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(sql.SQL("DROP TABLE {}").format(ident(table)))
        conn.commit()
    return rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sheet-rows", type=int, default=None, help="rows of the .xlsx (default min(rows, 100000))")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sheet_rows = min(args.rows, 100_000) if args.sheet_rows is None else args.sheet_rows

    from psycopg.conninfo import conninfo_to_dict

    from import_pipelines.db import drop_database, ensure_database
    from import_pipelines.settings import SERVER_URL_ENV
    from import_pipelines.settings import server_url as settings_server_url

    configured = os.environ.get(SERVER_URL_ENV)
    server = configured or settings_server_url("bench-postgres")
    where = (conninfo_to_dict(configured).get("host") or "localhost") if configured else "embedded"
    database = f"bench_read_files_{uuid.uuid4().hex[:8]}"
    url = ensure_database(server, database)
    try:
        with tempfile.TemporaryDirectory(prefix="read_files_") as folder:
            progress(f"generating {args.rows:,} rows (sheet: {sheet_rows:,})")
            paths = generate(Path(folder), args.rows, sheet_rows)
            csv_mb = round(paths["csv"].stat().st_size / 2 ** 20, 1)
            readers = {"csv_rows": paths["csv"], "csv_records": paths["csv"], "json_array": paths["json"],
                       "jsonl": paths["jsonl"]}
            if sheet_rows:
                readers["xlsx"] = paths["xlsx"]
            figures: dict[str, list[tuple[int, float, float]]] = {name: [] for name in readers}
            copies: list[tuple[int, float]] = []
            for attempt in range(1, args.repeat + 1):
                copies.append(copy_once(url, paths["csv"]))
                progress(f"run {attempt}: COPY {copies[-1][0] / copies[-1][1]:,.0f} rows/s")
                for name, path in readers.items():
                    figures[name].append(run_in_child(read_in_child, name, str(path)))
                    count, seconds, rss = figures[name][-1]
                    progress(f"run {attempt}: {name} {count:,} records, {count / seconds:,.0f} rows/s, {rss:.0f} MB")
        copy_rate = statistics.median(rows / seconds for rows, seconds in copies)
        result: dict = {"rows": args.rows, "columns": len(COLUMNS), "server": where,
                        "csv_mb": csv_mb, "copy_rows_per_s": round(copy_rate), "readers": {}}
        for name, runs in figures.items():
            result["readers"][name] = {
                "records": runs[0][0], "rows_per_s": round(statistics.median(c / s for c, s, _ in runs)),
                "peak_rss_mb": round(max(rss for _, _, rss in runs), 1)}
        csv_rows, csv_records = result["readers"]["csv_rows"], result["readers"]["csv_records"]
        result["csv_rows_ratio_to_copy"] = round(csv_rows["rows_per_s"] / copy_rate, 3)
        result["csv_records_ratio_to_copy"] = round(csv_records["rows_per_s"] / copy_rate, 3)
        result["rows_per_s"] = csv_records["rows_per_s"]
        result["peak_rss_mb"] = max(csv_rows["peak_rss_mb"], csv_records["peak_rss_mb"])
    finally:
        drop_database(server, database)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
