"""Benchmark a contacts CSV import through the contacts template against a raw COPY of the same file.

    python benchmarks/import_csv.py --rows 1000000 [--repeat 1]

Generates an N-row contacts export as a CRM writes it (18 columns under the CRM's own headers,
accented names, quoted commas and doubled quotes, a two-line note every 97 rows) with the dirt
real exports carry: emails in capitals with spaces around them (1 in 7), phones in five
spellings (national, dotted, with 00 and the country code, with an extension), 1 in 100 a second
record of an earlier contact (another id, the same email in other case: a duplicate), 1 in 400
an invalid email, 1 in 500 neither email nor phone, 1 in 1,000 a date that is no date, 1 in 50
tags written as a JSON list.

The import, in a fresh (spawned) process so that its peak RSS is its own: the contacts
template's steps (extract: detect and parse the file, map the headers with the offline heuristic,
stage; map: field rules; dedupe: repeated ids and the email/phone rule within the file and
against the target; load: merge with the audit) into a fresh Service Vault database.
``rows_per_s`` is the file's rows over the import's seconds. The reference, in the same run on the
same file: ``COPY <plain table of 18 text columns> FROM STDIN (FORMAT csv, HEADER true)``, the
file streamed in 1 MiB chunks; ``ratio`` is ours over COPY's rows/s. A second reference, of what
writing these rows into this target costs at all: ``bare_write_ratio`` is the rows/s of one
``INSERT ... SELECT`` of the file's rows, values as they are (no parsing, normalising, dedupe,
audit or state), from a plain table into ``customer_users`` with its indexes in place, over
COPY's; in a database of its own, after the import, so neither pays for the other's WAL. With
``--repeat`` the import and the references alternate and each figure is the median. Server:
``IMPORT_PIPELINES_PG_URL``, or the embedded server under ``.data/bench-postgres``. Progress on
stderr, one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from read_files import (  # noqa: E402
    CITIES, COMPANIES, FIRST, LAST, copy_file, copy_once, peak_rss_mb, progress, run_in_child)

HEADER = ["Contact ID", "First Name", "Last Name", "E-mail Address", "Phone", "Mobile Phone", "Company", "Job Title",
          "Street", "City", "State", "Postal Code", "Country", "Website", "Notes", "Created Date", "Tags",
          "Lead Source"]
SOURCES = ["Web", "Trade show", "Referral", "Cold call", ""]


def phone(number: int) -> str:
    """The contact's number, spelt one of five ways (all the same number once normalised)."""
    area, line = number // 10000 % 1000, number % 10000  # one number per contact, up to ten million
    return [f"+1 (555) {area:03d}-{line:04d}", f"555.{area:03d}.{line:04d}", f"00 1 555 {area:03d} {line:04d}",
            f"(555) {area:03d}-{line:04d} x{number % 90 + 10}", f"555{area:03d}{line:04d}"][number % 5]


def contact(number: int) -> list[str]:
    """Row ``number`` of the export, deterministic, with its dirt."""
    first, last = FIRST[number % len(FIRST)], LAST[number * 7 % len(LAST)]
    email = f"user{number}@example.com"
    if number % 100 == 0 and number > 100:  # a second record of an earlier contact
        email = f"USER{number - 37}@Example.com"
    if number % 7 == 0:
        email = f"  {email.upper()} "
    if number % 400 == 3:
        email = f"user{number}@example"
    note = 'said "call me later", twice' if number % 11 == 0 else ""
    if number % 97 == 0:
        note = "called twice\nprefers email"
    row = [str(number), first, last, email, phone(number), f"+1 556 {number // 10000 % 1000:03d} {number % 10000:04d}" if number % 3 == 0 else "",
           COMPANIES[number % len(COMPANIES)], "Engineer" if number % 3 else "", f"{number % 999} Main St",
           CITIES[number % len(CITIES)], "IL", f"{number % 99999:05d}", "US" if number % 4 else "United States",
           f"https://www.company{number % 50}.example" if number % 6 == 0 else "", note,
           f"2024-{number % 12 + 1:02d}-{number % 28 + 1:02d} 10:{number % 60:02d}:00" if number % 1000 != 17
           else "31/02/2024", '["vip", "newsletter"]' if number % 50 == 1 else ("newsletter; events" if number % 3 == 0
                                                                             else ""),
           SOURCES[number % len(SOURCES)]]
    if number % 500 == 9:  # neither email nor phone
        row[3] = row[4] = row[5] = ""
    return row


def generate(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for number in range(1, rows + 1):
            writer.writerow(contact(number))


def bare_write(url: str, path: Path) -> float:
    """Seconds of the bare write of the file's rows into ``url``'s empty ``customer_users``."""
    from import_pipelines.db import connect

    with connect(url) as conn:
        conn.execute(f"CREATE TEMP TABLE raw ({', '.join(f'c{i} text' for i in range(len(HEADER)))})")
        copy_file(conn, "raw", path)
        conn.commit()
        started = time.perf_counter()
        conn.execute("INSERT INTO customer_users (source_system, external_id, first_name, last_name, display_name,"
                     " email, phone, mobile, company, job_title, address_line1, city, state, zip_code, country,"
                     " website, notes) SELECT 'bench', c0, c1, c2, concat_ws(' ', c1, c2), c3, c4, c5, c6, c7, c8,"
                     " c9, c10, c11, c12, c13, c14 FROM raw")
        conn.commit()
        return time.perf_counter() - started


def import_in_child(path: str, url: str, queue) -> None:
    """Import ``path`` through the contacts template into ``url``; report counts, step seconds and peak RSS."""
    from import_pipelines.mapping.resource import FieldMapper
    from import_pipelines.pipeline.steps import EntityRun, dedupe, extract, load, map_and_validate
    from import_pipelines.templates.loader import load_template, template_path

    template = load_template(template_path("contacts"))
    run = EntityRun(profile="bench_contacts", template=template, entity_name="contacts", run_id=str(uuid.uuid4()),
                    source_url=url, target_url=url, record_source={"kind": "file", "path": path},
                    mapper=FieldMapper(use_ai=False))
    quiet = lambda message: None  # noqa: E731
    seconds = {}
    started = time.perf_counter()
    staged = extract(run, log=quiet)
    seconds["extract"] = time.perf_counter() - started
    for name, step in (("map", map_and_validate), ("dedupe", dedupe)):
        mark = time.perf_counter()
        staged = step(run, staged, log=quiet)
        seconds[name] = time.perf_counter() - mark
    mark = time.perf_counter()
    result = load(run, staged, log=quiet)
    seconds["load"] = time.perf_counter() - mark
    total = time.perf_counter() - started
    queue.put({"counts": result.counts, "seconds": total, "steps": {k: round(v, 2) for k, v in seconds.items()},
               "peak_rss_mb": peak_rss_mb()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from psycopg.conninfo import conninfo_to_dict

    from import_pipelines.db import drop_database, ensure_database
    from import_pipelines.service_vault.migrate import migrate
    from import_pipelines.settings import SERVER_URL_ENV
    from import_pipelines.settings import server_url as settings_server_url

    configured = os.environ.get(SERVER_URL_ENV)
    server = configured or settings_server_url("bench-postgres")
    where = (conninfo_to_dict(configured).get("host") or "localhost") if configured else "embedded"
    imports, copies, bare = [], [], []
    with tempfile.TemporaryDirectory(prefix="import_csv_") as folder:
        path = Path(folder) / "contacts.csv"
        progress(f"generating {args.rows:,} rows")
        generate(path, args.rows)
        for attempt in range(1, args.repeat + 1):
            database, other = (f"bench_import_csv_{uuid.uuid4().hex[:8]}" for _ in range(2))
            url = ensure_database(server, database)
            try:
                migrate(url)
                copies.append(copy_once(url, path, columns=[f"c{i}" for i in range(len(HEADER))]))
                progress(f"run {attempt}: COPY {copies[-1][0] / copies[-1][1]:,.0f} rows/s")
                imports.append(run_in_child(import_in_child, str(path), url))
                done = imports[-1]
                progress(f"run {attempt}: import {args.rows / done['seconds']:,.0f} rows/s {done['steps']},"
                         f" {done['counts']}, {done['peak_rss_mb']:.0f} MB")
            finally:
                drop_database(server, database)
            other_url = ensure_database(server, other)
            try:
                migrate(other_url)
                bare.append(bare_write(other_url, path))
                progress(f"run {attempt}: bare write into customer_users {args.rows / bare[-1]:,.0f} rows/s")
            finally:
                drop_database(server, other)
        csv_mb = round(path.stat().st_size / 2 ** 20, 1)
    copy_rate = statistics.median(rows / seconds for rows, seconds in copies)
    rate = statistics.median(args.rows / done["seconds"] for done in imports)
    bare_rate = statistics.median(args.rows / seconds for seconds in bare)
    print(json.dumps({"rows": args.rows, "csv_mb": csv_mb, "server": where, "rows_per_s": round(rate),
                      "peak_rss_mb": round(max(done["peak_rss_mb"] for done in imports), 1),
                      "copy_rows_per_s": round(copy_rate), "ratio": round(rate / copy_rate, 3),
                      "bare_write_ratio": round(bare_rate / copy_rate, 3),
                      "counts": imports[-1]["counts"], "steps_s": imports[-1]["steps"]}))


if __name__ == "__main__":
    main()
