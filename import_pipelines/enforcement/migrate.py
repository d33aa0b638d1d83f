"""Apply the enforcement schema's migrations (``migrations/NNNN_name.sql``) in order, once each.

``python -m import_pipelines.enforcement.migrate`` migrates the database in
``IMPORT_PIPELINES_TARGET_URL`` (the embedded server's target database when it is unset).
"""

from __future__ import annotations

from pathlib import Path

from import_pipelines.db.migrate import apply_migrations

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "enforcement"


def migrate(url: str) -> list[str]:
    """Apply pending migrations to the database at ``url``; return the names applied now.

    The schema keeps its own ``enforcement.schema_migrations``, so it lives beside another
    application's tables in one database without sharing their migration history.
    """
    return apply_migrations(url, folder=MIGRATIONS, schema=SCHEMA)


def main() -> None:
    """Migrate the target database named by the environment (or the embedded one) and print what was applied."""
    from import_pipelines.settings import ensure_environment

    applied = migrate(ensure_environment().target)
    print(f"enforcement: applied {', '.join(applied)}" if applied else "enforcement: up to date")


if __name__ == "__main__":
    main()
