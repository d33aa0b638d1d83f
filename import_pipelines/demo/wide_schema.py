"""A wide synthetic source: hundreds of tables, for timing what reads a whole catalogue.

Table ``entityNNN`` has a key, a few typed columns (text, an e-mail address, a number, a status,
a timestamp) and references to two earlier tables: one declared as a foreign key, one only
named like one (``entityMMM_id``), as application schemas mix both. Each table gets a few rows,
so sample values and join checks have data to read.
"""

from __future__ import annotations

from psycopg import sql

from import_pipelines.db.connect import connection
from import_pipelines.db.sql import ident


def table_name(number: int) -> str:
    """The name of table ``number``."""
    return f"entity{number:03d}"


def create_wide_schema(url: str, *, tables: int = 500, rows: int = 20) -> None:
    """Create ``tables`` tables of ``rows`` rows each in the database at ``url`` (one transaction)."""
    statements: list[sql.Composable] = []
    for number in range(tables):
        name = ident(table_name(number))
        declared = sql.SQL("")
        named = sql.SQL("")
        fill_refs = sql.SQL("")
        if number:
            parent, other = table_name(number // 2), table_name((number * 7) % number)
            declared = sql.SQL(", {} bigint REFERENCES {}").format(ident(f"{parent}_ref"), ident(parent))
            named = sql.SQL(", {} bigint").format(ident(f"{other}_id"))
            fill_refs = sql.SQL(", 1 + g % {rows}, 1 + (g * 3) % {rows}").format(rows=sql.Literal(rows))
        statements.append(sql.SQL(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, name text NOT NULL, email varchar(255), amount numeric(12, 2),"
            " status smallint NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now(){declared}{named})"
        ).format(name=name, declared=declared, named=named))
        statements.append(sql.SQL("CREATE INDEX ON {} (created_at)").format(name))
        statements.append(sql.SQL(
            "INSERT INTO {name} SELECT g, 'row ' || g, 'person' || g || '@example.com', g * 1.5, 1 + g % 3, now()"
            "{fill} FROM generate_series(1, {rows}) AS g"
        ).format(name=name, fill=fill_refs, rows=sql.Literal(rows)))
    with connection(url) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
