"""A target table as the engine needs it: columns, row key and how new keys are allocated.

Read through :mod:`import_pipelines.db.introspect` (one catalogue description per plan), so the
template front end and the mirror see the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from import_pipelines.db.introspect import ColumnInfo, SchemaInfo, TableInfo


@dataclass(frozen=True)
class TargetTable:
    """A target table: its columns, its row key and how a new row's key is allocated.

    ``row_key`` is the primary key (or, without one, the natural key). A single-column key with a
    sequence (identity or serial) is drawn from it while classifying a batch, and one with a
    default expression (``gen_random_uuid()``) is evaluated there, so audit rows can name new
    rows without reading them back; otherwise the key is the row's natural key, or the database
    assigns it and the insert returns it.
    """

    schema: str
    name: str
    columns: dict[str, ColumnInfo]
    row_key: tuple[str, ...]
    id_sequence: str | None = None
    id_default: str | None = None

    @property
    def qualified(self) -> str:
        """``schema.table`` for messages and the audit."""
        return f"{self.schema}.{self.name}"

    @property
    def primary_key(self) -> str:
        """The single key column; ``LookupError`` for a composite key."""
        if len(self.row_key) != 1:
            raise LookupError(f"target table {self.qualified} has a composite key ({', '.join(self.row_key)})")
        return self.row_key[0]

    def key_type(self, index: int = 0) -> str:
        """The type of a row-key column."""
        return self.columns[self.row_key[index]].data_type


def target_table(conn: psycopg.Connection, info: TableInfo, *, row_key: tuple[str, ...] | None = None) -> TargetTable:
    """Describe ``info`` for the engine; the key's sequence is looked up on ``conn``."""
    key = row_key or info.primary_key
    if not key:
        raise LookupError(f"target table {info.schema}.{info.name} has no primary key")
    sequence = default = None
    if len(key) == 1:
        sequence = conn.execute("SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), %s)",
                                (info.schema, info.name, key[0])).fetchone()[0]
        if sequence is None:
            default = info.column(key[0]).default
    return TargetTable(schema=info.schema, name=info.name, columns={c.name: c for c in info.columns}, row_key=tuple(key),
                       id_sequence=sequence, id_default=default)


def read_target_tables(conn: psycopg.Connection, *, schema: SchemaInfo, tables: list[str]) -> dict[str, TargetTable]:
    """Several tables of one described schema. Raises ``LookupError`` naming a missing table."""
    found = {}
    for name in dict.fromkeys(tables):
        info = schema.tables.get(name)
        if info is None:
            raise LookupError(f"target table {schema.schema}.{name} does not exist")
        found[name] = target_table(conn, info)
    return found
