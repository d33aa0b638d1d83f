"""What a target table looks like, as the load needs it (read through :mod:`import_pipelines.db.introspect`)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from import_pipelines.db.introspect import TableInfo, describe_schema


@dataclass(frozen=True)
class TargetColumn:
    """One column of a target table."""

    name: str
    type: str
    not_null: bool
    has_default: bool
    generated: bool
    identity: str  # '', 'always' or 'by_default'
    max_length: int | None

    @property
    def writable(self) -> bool:
        """Whether an import may write this column (computed columns are the database's own)."""
        return not self.generated and self.identity != "always"


@dataclass(frozen=True)
class TargetTable:
    """A target table: its columns, primary key and how new primary-key values are allocated."""

    schema: str
    name: str
    columns: dict[str, TargetColumn]
    primary_key: str
    id_sequence: str | None  # the sequence behind an identity or serial primary key
    id_default: str | None  # otherwise the key's default expression (e.g. gen_random_uuid())

    @property
    def qualified(self) -> str:
        """``schema.table`` for messages."""
        return f"{self.schema}.{self.name}"


def read_target_tables(conn: psycopg.Connection, *, schema: str, tables: list[str]) -> dict[str, TargetTable]:
    """Read several tables of ``schema`` with one catalogue description. Raises ``LookupError``."""
    described = describe_schema(conn, schema)
    return {table: _target_table(conn, described.tables.get(table), schema=schema, table=table)
            for table in dict.fromkeys(tables)}


def _target_table(conn: psycopg.Connection, info: TableInfo | None, *, schema: str, table: str) -> TargetTable:
    if info is None:
        raise LookupError(f"target table {schema}.{table} does not exist")
    if len(info.primary_key) != 1:
        raise LookupError(f"target table {schema}.{table} needs a single-column primary key "
                          f"(has {len(info.primary_key)})")
    columns = {c.name: TargetColumn(name=c.name, type=c.data_type, not_null=not c.nullable, has_default=c.has_default,
                                    generated=c.is_generated, identity=c.identity or "", max_length=c.char_max_length)
               for c in info.columns}
    primary_key = info.primary_key[0]
    sequence = conn.execute("SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), %s)",
                            (schema, table, primary_key)).fetchone()[0]
    default = next(c.default for c in info.columns if c.name == primary_key)
    return TargetTable(schema=schema, name=table, columns=columns, primary_key=primary_key, id_sequence=sequence,
                       id_default=None if sequence else default)
