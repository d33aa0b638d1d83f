"""What a target table looks like, read from the target database's catalogue."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class TargetColumn:
    """One column of a target table."""

    name: str
    type: str
    not_null: bool
    has_default: bool
    generated: bool
    identity: str  # '', 'a' (ALWAYS) or 'd' (BY DEFAULT)
    max_length: int | None

    @property
    def writable(self) -> bool:
        """Whether an import may write this column (computed columns are the database's own)."""
        return not self.generated and self.identity != "a"


@dataclass(frozen=True)
class TargetTable:
    """A target table: its columns, primary key and the expression that allocates new ids."""

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


def read_target_table(conn: psycopg.Connection, *, schema: str, table: str) -> TargetTable:
    """Read ``schema.table``'s columns and primary key. Raises ``LookupError`` if it is missing."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
               a.attgenerated <> '', a.attidentity,
               CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
                    THEN a.atttypmod - 4 END,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    if not rows:
        raise LookupError(f"target table {schema}.{table} does not exist")
    columns = {r[0]: TargetColumn(name=r[0], type=r[1], not_null=r[2], has_default=r[3] or r[5] != "",
                                  generated=r[4], identity=r[5], max_length=r[6]) for r in rows}
    defaults = {r[0]: r[7] for r in rows}
    pk = conn.execute(
        """
        SELECT a.attname FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND i.indisprimary
        """,
        (schema, table),
    ).fetchall()
    if len(pk) != 1:
        raise LookupError(f"target table {schema}.{table} needs a single-column primary key (has {len(pk)})")
    primary_key = pk[0][0]
    sequence = conn.execute("SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), %s)",
                            (schema, table, primary_key)).fetchone()[0]
    return TargetTable(schema=schema, name=table, columns=columns, primary_key=primary_key, id_sequence=sequence,
                       id_default=None if sequence else defaults.get(primary_key))
