"""A database table as a mapping source: its columns, their declared types and a few rows.

Database sources use the same matcher as files: the column names are the headers, the first rows
the samples, and the declared types (``timestamp``, ``boolean``, ``integer``...) settle what the
sniffer would otherwise guess. The caller's connection should be the source's read-only session.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident

SAMPLE_ROWS = 50


def table_sample(conn: psycopg.Connection, table: str, *, schema: str = "public",
                 rows: int = SAMPLE_ROWS) -> tuple[list[str], list[tuple[Any, ...]], dict[str, str]]:
    """``(headers, rows, types)`` of ``schema.table``: column names in order, up to ``rows`` rows, types by name."""
    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (schema, table)).fetchall()
    if not columns:
        raise ValueError(f"no table {schema}.{table} (or it has no columns) in this database")
    headers = [name for name, _ in columns]
    sample = conn.execute(sql.SQL("SELECT {} FROM {} LIMIT %s").format(
        sql.SQL(", ").join(ident(h) for h in headers), ident(schema, table)), (rows,)).fetchall()
    return headers, sample, dict(columns)
