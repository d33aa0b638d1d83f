"""The ``import_control`` schema's migrations: numbered SQL files applied once each, in order.

Every part of the project that keeps state in the target adds its tables as a new file in
``control/migrations/`` (``NNNN_what.sql``), never by editing an applied one. A database records
what it has applied in ``import_control.schema_migrations``; :func:`ensure_control_schema`
applies the rest in one transaction, under an advisory lock so runs starting together migrate once.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

CONTROL_SCHEMA = "import_control"

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS import_control;
CREATE TABLE IF NOT EXISTS import_control.schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


def migrations() -> list[Path]:
    """The migration files, in the order they apply."""
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def ensure_control_schema(conn: psycopg.Connection) -> list[str]:
    """Create or bring up to date the ``import_control`` schema; return the versions applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('import_control.ddl'))")
        conn.execute(_BOOTSTRAP)
        done = {row[0] for row in conn.execute("SELECT version FROM import_control.schema_migrations")}
        for path in migrations():
            version = path.stem
            if version in done:
                continue
            conn.execute(path.read_text(encoding="utf-8").encode())
            conn.execute("INSERT INTO import_control.schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    return applied_now
