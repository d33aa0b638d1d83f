"""Apply Service Vault's schema migrations (``migrations/NNNN_name.sql``) in order, once each."""

from __future__ import annotations

from pathlib import Path

from import_pipelines.db.connect import connection

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(url: str) -> list[str]:
    """Apply pending migrations to the database at ``url``; return the names applied now."""
    applied_now: list[str] = []
    with connection(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('service_vault.migrate'))")
        conn.execute("CREATE TABLE IF NOT EXISTS public.schema_migrations "
                     "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {row[0] for row in conn.execute("SELECT name FROM public.schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.stem in done:
                continue
            conn.execute(path.read_text(encoding="utf-8"))
            conn.execute("INSERT INTO public.schema_migrations (name) VALUES (%s)", (path.stem,))
            applied_now.append(path.stem)
    return applied_now
