"""Apply Service Vault's schema migrations (``migrations/NNNN_name.sql``) in order, once each."""

from __future__ import annotations

from pathlib import Path

from import_pipelines.db.migrate import apply_migrations

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(url: str) -> list[str]:
    """Apply pending migrations to the database at ``url``; return the names applied now."""
    return apply_migrations(url, folder=MIGRATIONS, schema="public")
