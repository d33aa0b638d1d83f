"""The one place that turns names into SQL identifiers.

Everything that composes SQL from template or catalogue names goes through these helpers, so a
column called ``"table"`` or a name with a quote in it is always quoted and never interpolated.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql


# Storage options of a scratch (staging) table: it is analysed where a statement needs statistics
# and dropped or truncated with its run, so autovacuum's VACUUM after each bulk copy (seen on
# every staging table of the FreeScout benchmark) only takes CPU from the load
SCRATCH_TABLE = sql.SQL(" WITH (autovacuum_enabled = false)")


def ident(*parts: str) -> sql.Identifier:
    """Return a quoted, dot-qualified identifier: ``ident("s", "t")`` -> ``"s"."t"``."""
    return sql.Identifier(*parts)


def ident_list(names: Iterable[str], *, prefix: str | None = None) -> sql.Composed:
    """Return ``"a", "b"`` (or ``p."a", p."b"`` with a table alias prefix) for a column list."""
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


SHOWN_CHARS = 40  # a value a message shows is cut here: a 5 MB bad value must not become a 5 MB error


def shown_value(value: sql.Composable) -> sql.Composable:
    """SQL text showing ``value`` in an error message: quoted (``NULL`` when null), cut to :data:`SHOWN_CHARS`."""
    return sql.SQL("quote_nullable(left(({v})::text, {n})) || CASE WHEN length(({v})::text) > {n} THEN '…'"
                   " ELSE '' END").format(v=value, n=sql.Literal(SHOWN_CHARS))


def render(statement: sql.Composable, conn) -> str:
    """Render a composed statement to text for logs and tests (never for execution)."""
    return statement.as_string(conn)
