"""Benchmark the whole-database mirror: ``python benchmarks/mirror.py --rows 1000000``.

Generates (set-based SQL) a source database of about ``--rows`` rows over twelve tables with a
reference cycle (``users <-> instructors``), a nullable self reference (``projects.regio``) and a
NOT NULL self reference (``categories.parent_id``, placeholder path), creates the target with
the same DDL but sequences far away from the source's (so every id differs), mirrors, and prints
one JSON line: rows, seconds, rows_per_s, late_seeded, tables, and the reference measured in the
same run: a raw copy of every table (``COPY table TO STDOUT`` piped into ``COPY table FROM STDIN``
of a third database with the same tables and no foreign keys: the bytes moved, nothing matched,
translated or checked), its rows/s and our ratio to it. The databases are dropped at the end.
The server is ``IMPORT_PIPELINES_PG_URL`` or the embedded one under ``.data/bench-postgres``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from import_pipelines.db import connection, drop_database, ensure_database  # noqa: E402
from import_pipelines.mirror import mirror  # noqa: E402

DDL = """
CREATE TABLE domains (id serial PRIMARY KEY, domaincode text NOT NULL UNIQUE, label text);
CREATE TABLE users (
    id bigserial PRIMARY KEY, sysmail text NOT NULL UNIQUE, name text NOT NULL,
    domain_id integer NOT NULL REFERENCES domains (id), instructor_id integer,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE instructors (
    id serial PRIMARY KEY, xmlid text NOT NULL UNIQUE, user_id bigint NOT NULL REFERENCES users (id),
    rate numeric(8, 2));
ALTER TABLE users ADD CONSTRAINT users_instructor_fk FOREIGN KEY (instructor_id) REFERENCES instructors (id);
CREATE TABLE categories (
    id serial PRIMARY KEY, xmlid text NOT NULL UNIQUE, name text NOT NULL,
    parent_id integer NOT NULL REFERENCES categories (id));
CREATE TABLE projects (
    id serial PRIMARY KEY, code text NOT NULL UNIQUE, title text NOT NULL, regio integer REFERENCES projects (id),
    owner_id bigint REFERENCES users (id), category_id integer REFERENCES categories (id));
CREATE TABLE project_members (
    project_id integer NOT NULL REFERENCES projects (id), user_id bigint NOT NULL REFERENCES users (id),
    role text NOT NULL DEFAULT 'member', PRIMARY KEY (project_id, user_id));
CREATE TABLE tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE events (
    id serial PRIMARY KEY, xmlid text NOT NULL UNIQUE, title text, project_id integer REFERENCES projects (id),
    "table" text, starts_at timestamptz);
CREATE TABLE events_tags (
    id serial PRIMARY KEY, event_id integer NOT NULL REFERENCES events (id),
    tag_id integer NOT NULL REFERENCES tags (id), UNIQUE (event_id, tag_id));
CREATE TABLE invoices (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, number text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id), net numeric(12, 2) NOT NULL, vat numeric(12, 2) NOT NULL,
    gross numeric(12, 2) GENERATED ALWAYS AS (net + vat) STORED);
CREATE TABLE invoice_lines (
    id bigserial PRIMARY KEY, invoice_id integer NOT NULL REFERENCES invoices (id), line_no integer NOT NULL,
    amount numeric(12, 2) NOT NULL, UNIQUE (invoice_id, line_no));
CREATE TABLE notes (
    id bigserial PRIMARY KEY, xmlid text NOT NULL UNIQUE, event_id integer REFERENCES events (id),
    author_id bigint REFERENCES users (id), body text);
"""

# share of the rows per table (sums to 1)
SHARES = {"domains": 0.001, "users": 0.15, "instructors": 0.02, "categories": 0.002, "projects": 0.05,
          "project_members": 0.15, "tags": 0.001, "events": 0.15, "events_tags": 0.15, "invoices": 0.08,
          "invoice_lines": 0.146, "notes": 0.1}


def sizes(rows: int) -> dict[str, int]:
    """Rows per table for a total of about ``rows``."""
    return {table: max(2, int(rows * share)) for table, share in SHARES.items()}


def generate_source(url: str, rows: int) -> dict[str, int]:
    """Fill the source with set-based INSERT ... SELECT generate_series (constraints added after)."""
    n = sizes(rows)
    with connection(url) as conn:
        conn.execute(DDL)
        # drop every FK while generating, re-add afterwards (cheaper and cycle-free)
        fks = conn.execute("""
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE contype = 'f' AND connamespace = 'public'::regnamespace""").fetchall()
        for table, name, _ in fks:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        statements = [
            f"INSERT INTO domains (id, domaincode, label) SELECT i, 'dom' || i, 'Domain ' || i "
            f"FROM generate_series(1, {n['domains']}) i",
            f"INSERT INTO users (id, sysmail, name, domain_id, instructor_id) SELECT i, 'user' || i || '@example.org', "
            f"'User ' || i, 1 + i % {n['domains']}, CASE WHEN i <= {n['instructors']} THEN i END "
            f"FROM generate_series(1, {n['users']}) i",
            f"INSERT INTO instructors (id, xmlid, user_id, rate) SELECT i, 'instr.' || i, i, 20 + i % 50 "
            f"FROM generate_series(1, {n['instructors']}) i",
            # roots point at themselves, the others at an earlier category
            f"INSERT INTO categories (id, xmlid, name, parent_id) SELECT i, 'cat.' || i, 'Category ' || i, "
            f"CASE WHEN i <= 3 THEN i ELSE 1 + (i * 7) % (i - 1) END FROM generate_series(1, {n['categories']}) i",
            f"INSERT INTO projects (id, code, title, regio, owner_id, category_id) "
            f"SELECT i, 'P' || i, 'Project ' || i, "
            f"CASE WHEN i % 4 = 0 THEN 1 + (i * 13) % {n['projects']} END, 1 + i % {n['users']}, "
            f"1 + i % {n['categories']} FROM generate_series(1, {n['projects']}) i",
            f"INSERT INTO project_members (project_id, user_id, role) SELECT 1 + i % {n['projects']}, "
            f"1 + (i / {n['projects']}) % {n['users']}, CASE WHEN i % 10 = 0 THEN 'lead' ELSE 'member' END "
            f"FROM generate_series(0, {n['project_members'] - 1}) i",
            f"INSERT INTO tags (id, name) SELECT i, 'tag' || i FROM generate_series(1, {n['tags']}) i",
            f"INSERT INTO events (id, xmlid, title, project_id, \"table\", starts_at) SELECT i, 'evt.' || i, "
            f"'Event ' || i, 1 + i % {n['projects']}, 'T' || (i % 20), "
            f"timestamptz '2024-01-01 00:00+00' + i * interval '1 minute' FROM generate_series(1, {n['events']}) i",
            f"INSERT INTO events_tags (id, event_id, tag_id) SELECT i + 1, 1 + i % {n['events']}, "
            f"1 + (i / {n['events']}) % {n['tags']} FROM generate_series(0, {n['events_tags'] - 1}) i",
            f"INSERT INTO invoices (id, number, user_id, net, vat) OVERRIDING SYSTEM VALUE SELECT i, 'INV-' || i, "
            f"1 + i % {n['users']}, i % 1000, (i % 1000) * 0.19 FROM generate_series(1, {n['invoices']}) i",
            f"INSERT INTO invoice_lines (id, invoice_id, line_no, amount) SELECT i + 1, 1 + i % {n['invoices']}, "
            f"1 + i / {n['invoices']}, (i % 500) + 0.5 FROM generate_series(0, {n['invoice_lines'] - 1}) i",
            f"INSERT INTO notes (id, xmlid, event_id, author_id, body) SELECT i, 'note.' || i, 1 + i % {n['events']}, "
            f"1 + i % {n['users']}, repeat('x', 20 + i % 40) FROM generate_series(1, {n['notes']}) i",
        ]
        for statement in statements:
            conn.execute(statement)
        for table, name, definition in fks:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in n:
            if table != "project_members":
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        total = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in n}
    return total


def create_target(url: str) -> None:
    """Same DDL; every sequence far from the source's, so no id can coincide."""
    with connection(url) as conn:
        conn.execute(DDL)
        for number, table in enumerate(t for t in SHARES if t != "project_members"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {50_000_000 + 7_000_000 * number})")
        conn.commit()


def raw_copy(source: str, reference: str) -> float:
    """Copy every table as it is into a same-shaped database without foreign keys; return the seconds."""
    from psycopg import sql

    from import_pipelines.db import connect

    with connection(reference) as conn:
        conn.execute(DDL)
        for table, name in conn.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint"
                                        " WHERE contype = 'f' AND connamespace = 'public'::regnamespace").fetchall():
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table),
                                                                           sql.Identifier(name)))
        conn.commit()
    started = time.perf_counter()
    with connect(source, read_only=True, pinned_text=True) as reader, connect(reference, pinned_text=True) as writer:
        for table in SHARES:
            columns = [c for (c,) in writer.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
                " AND attgenerated = ''", (table,)).fetchall()]
            names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            out = sql.SQL("COPY {} ({}) TO STDOUT").format(sql.Identifier(table), names)
            into = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)
            if table == "invoices":  # a GENERATED ALWAYS identity takes only values the copy overrides
                writer.execute("ALTER TABLE invoices ALTER COLUMN id SET GENERATED BY DEFAULT")
            with reader.cursor().copy(out) as copy_out, writer.cursor().copy(into) as copy_in:
                for block in copy_out:
                    copy_in.write(block)
        writer.commit()
    return time.perf_counter() - started


def server_url() -> str:
    """``IMPORT_PIPELINES_PG_URL`` or the embedded server under ``.data/bench-postgres``."""
    from import_pipelines.settings import server_url as settings_server_url

    return settings_server_url("bench-postgres")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="approximate source rows (default 100000)")
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per batch (default: the mirror's)")
    args = parser.parse_args(argv)

    server = server_url()
    tag = uuid.uuid4().hex[:8]
    source_db, target_db, reference_db = (f"bench_mirror_src_{tag}", f"bench_mirror_tgt_{tag}",
                                          f"bench_mirror_ref_{tag}")
    try:
        source = ensure_database(server, source_db)
        target = ensure_database(server, target_db)
        reference = ensure_database(server, reference_db)
        generate_source(source, args.rows)
        create_target(target)
        raw_seconds = raw_copy(source, reference)
        options = {"batch_rows": args.batch_rows} if args.batch_rows else {}
        started = time.perf_counter()
        report = mirror(source, target, mode="upsert", **options)
        seconds = time.perf_counter() - started
        failed = report.total("failed")
        if failed:
            print(f"warning: {failed} rows failed", file=sys.stderr)
        rows_per_s = report.rows / seconds
        raw_rows_per_s = report.rows / raw_seconds
        print(json.dumps({"rows": report.rows, "seconds": round(seconds, 2), "rows_per_s": round(rows_per_s),
                          "late_seeded": report.late_seeded, "tables": len(report.tables),
                          "raw_copy_seconds": round(raw_seconds, 2), "raw_copy_rows_per_s": round(raw_rows_per_s),
                          "ratio_to_raw_copy": round(rows_per_s / raw_rows_per_s, 3)}))
    finally:
        for name in (source_db, target_db, reference_db):
            drop_database(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
