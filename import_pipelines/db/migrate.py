"""Apply an application's schema migrations (``NNNN_name.sql`` files of one folder) in order, once each."""

from __future__ import annotations

from pathlib import Path

from psycopg import sql

from import_pipelines.db.connect import connection
from import_pipelines.db.sql import ident


def apply_migrations(url: str, *, folder: Path, schema: str) -> list[str]:
    """Apply the migrations of ``folder`` not yet recorded in ``<schema>.schema_migrations``; return those applied now.

    One transaction under an advisory lock per schema, so two processes starting together migrate
    once. The ledger lives in the application's own schema: two applications sharing a database
    keep separate histories.
    """
    applied_now: list[str] = []
    ledger = ident(schema, "schema_migrations")
    with connection(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{schema}.migrate",))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(schema)))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY,"
                             " applied_at timestamptz NOT NULL DEFAULT now())").format(ledger))
        done = {row[0] for row in conn.execute(sql.SQL("SELECT name FROM {}").format(ledger))}
        for path in sorted(folder.glob("*.sql")):
            if path.stem in done:
                continue
            conn.execute(path.read_text(encoding="utf-8").encode())
            conn.execute(sql.SQL("INSERT INTO {} (name) VALUES (%s)").format(ledger), (path.stem,))
            applied_now.append(path.stem)
    return applied_now
