"""Read what a PostgreSQL schema looks like from ``pg_catalog``.

One catalogue query per kind of object (tables, columns, constraints, unique indexes), never one
per table, so describing an application schema of hundreds of tables costs four round trips.
The result is plain frozen dataclasses that the mirror, the archive and the template loader
share: column types as ``format_type`` text, computed columns (generated / identity), primary
key, unique constraints *and* unique indexes (partial and expression indexes are skipped: they
cannot serve as a natural key), foreign keys with their ``ON DELETE`` rule, and row estimates.
With ``details=True`` (what an inspection of a source shows) the table query also reads each
table's size, live-row counter and SELECT privilege, and one more query reads every index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import psycopg

IdentityKind = Literal["always", "by_default"]
GeneratedKind = Literal["stored", "virtual"]
KeyOrigin = Literal["constraint", "index"]
ReferentialAction = Literal["no action", "restrict", "cascade", "set null", "set default"]

_IDENTITY: dict[str, IdentityKind] = {"a": "always", "d": "by_default"}
_GENERATED: dict[str, GeneratedKind] = {"s": "stored", "v": "virtual"}
_ACTIONS: dict[str, ReferentialAction] = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null",
                                          "d": "set default"}


@dataclass(frozen=True)
class ColumnInfo:
    """One column: its type as ``format_type`` prints it, nullability, default and computed kind."""

    name: str
    data_type: str
    nullable: bool
    default: str | None = None
    generated: GeneratedKind | None = None
    generation_expression: str | None = None
    identity: IdentityKind | None = None
    char_max_length: int | None = None
    position: int = 0

    @property
    def is_generated(self) -> bool:
        """True for ``GENERATED ALWAYS AS (...)`` columns (stored or virtual)."""
        return self.generated is not None

    @property
    def is_computed(self) -> bool:
        """True when the database computes the value: generated or identity columns."""
        return self.generated is not None or self.identity is not None

    @property
    def writable(self) -> bool:
        """Whether an import may write the column (generated and ``ALWAYS`` identity columns are the database's)."""
        return self.generated is None and self.identity != "always"

    @property
    def has_default(self) -> bool:
        """True when an INSERT may leave the column out and still get a value."""
        return self.default is not None or self.identity is not None


@dataclass(frozen=True)
class UniqueKey:
    """A unique constraint or a plain (non-partial, non-expression) unique index."""

    name: str
    columns: tuple[str, ...]
    origin: KeyOrigin
    nulls_not_distinct: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of the owning table reference ``ref_columns`` of ``ref_schema.ref_table``."""

    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: ReferentialAction = "no action"
    on_update: ReferentialAction = "no action"
    deferrable: bool = False


@dataclass(frozen=True)
class CheckConstraint:
    """A CHECK constraint with its definition as ``pg_get_constraintdef`` prints it."""

    name: str
    definition: str


@dataclass(frozen=True)
class IndexInfo:
    """Any index: its key columns (an expression key as its text), kind, method and partial predicate."""

    name: str
    columns: tuple[str, ...]
    unique: bool
    primary: bool
    method: str
    predicate: str | None
    definition: str


@dataclass(frozen=True)
class TableInfo:
    """Everything the loaders need to know about one table."""

    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[UniqueKey, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[CheckConstraint, ...] = ()
    row_estimate: int | None = None
    partitioned: bool = False
    # read with details=True only
    indexes: tuple[IndexInfo, ...] = ()
    total_bytes: int | None = None
    live_rows: int | None = None  # the statistics counter: known before a first ANALYZE sets the estimate
    readable: bool | None = None  # whether the session's role may SELECT from the table

    def column(self, name: str) -> ColumnInfo:
        """The column called ``name``; ``KeyError`` naming the table when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    def has_column(self, name: str) -> bool:
        """Whether the table has a column called ``name``."""
        return any(column.name == name for column in self.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in table order."""
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class SchemaInfo:
    """All ordinary and partitioned tables of one schema (partitions themselves are left out)."""

    schema: str
    tables: dict[str, TableInfo] = field(default_factory=dict)

    def table(self, name: str) -> TableInfo:
        """The table called ``name``; ``KeyError`` naming the schema when there is none."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"schema {self.schema!r} has no table {name!r}") from None

    def fingerprint(self, tables: list[str] | None = None) -> str:
        """sha256 over the shape of ``tables`` (all by default): columns, types, keys, references.

        Row estimates and constraint names are left out, so two databases created from the same
        DDL have the same fingerprint whatever their data.
        """
        names = sorted(tables if tables is not None else self.tables)
        shape = []
        for name in names:
            table = self.table(name)
            shape.append({
                "table": name,
                "columns": [[c.name, c.data_type, c.nullable, c.generated, c.identity] for c in table.columns],
                "primary_key": list(table.primary_key),
                "unique": sorted(list(key.columns) for key in table.unique_keys),
                "foreign_keys": sorted([list(fk.columns), fk.ref_table, list(fk.ref_columns)]
                                       for fk in table.foreign_keys),
            })
        text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_TABLES_SQL = """
SELECT c.relname, c.reltuples::bigint, c.relkind = 'p'{details}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""

_COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text, a.attidentity::text,
       CASE WHEN a.atttypid IN ('bpchar'::regtype, 'varchar'::regtype) AND a.atttypmod > 0
            THEN a.atttypmod - 4 END,
       a.attnum
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT c.relname, con.conname, con.contype::text,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[],
       rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[],
       con.confdeltype::text, con.confupdtype::text, con.condeferrable,
       CASE WHEN con.contype = 'c' THEN pg_get_constraintdef(con.oid) END,
       coalesce({nulls_not_distinct}, false)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_index x ON x.indexrelid = con.conindid AND con.contype IN ('p', 'u')
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY c.relname, con.conname
"""

# Unique indexes that do not back a constraint (those come with the constraint query); partial
# and expression indexes are skipped because rows cannot be matched on them column by column.
_UNIQUE_INDEXES_SQL = """
SELECT c.relname, i.relname,
       ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= x.indnkeyatts ORDER BY k.ord)::text[],
       {nulls_not_distinct}
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND x.indisunique AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY c.relname, i.relname
"""


# the size of a table with its indexes and TOAST, the live-row counter of the statistics and the
# session's SELECT privilege: cheap per table (no data is read), so still one query for all
_TABLE_DETAILS = """,
       pg_total_relation_size(c.oid), pg_stat_get_live_tuples(c.oid), has_table_privilege(c.oid, 'SELECT')"""

# Every index, for showing (the unique ones usable as natural keys come from the queries above)
_INDEXES_SQL = """
SELECT c.relname, i.relname,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) AS k)::text[],
       x.indisunique, x.indisprimary, am.amname, pg_get_expr(x.indpred, x.indrelid, true),
       pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, i.relname
"""


def describe_schema(conn: psycopg.Connection, schema: str = "public", *, details: bool = False) -> SchemaInfo:
    """Describe every table of ``schema``: columns, keys, foreign keys, checks, row estimates.

    ``details`` adds every index, each table's size on disk, its live-row counter and whether
    the session may read it (five catalogue queries in all instead of four).
    """
    params = {"schema": schema}
    # NULLS NOT DISTINCT exists from PostgreSQL 15 on; older servers treat NULLs as distinct
    nnd = "x.indnullsnotdistinct" if conn.info.server_version >= 150000 else "false"
    with conn.cursor() as cur:
        table_sql = _TABLES_SQL.format(details=_TABLE_DETAILS if details else "")
        tables = cur.execute(table_sql.encode(), params).fetchall()
        columns = cur.execute(_COLUMNS_SQL, params).fetchall()
        constraints = cur.execute(_CONSTRAINTS_SQL.format(nulls_not_distinct=nnd).encode(), params).fetchall()
        indexes = cur.execute(_UNIQUE_INDEXES_SQL.format(nulls_not_distinct=nnd).encode(), params).fetchall()
        all_indexes = cur.execute(_INDEXES_SQL, params).fetchall() if details else []

    cols: dict[str, list[ColumnInfo]] = {}
    for table, name, data_type, nullable, default, generated, identity, char_len, position in columns:
        is_generated = bool(generated)
        cols.setdefault(table, []).append(ColumnInfo(
            name=name, data_type=data_type, nullable=nullable,
            default=None if is_generated else default,
            generated=_GENERATED.get(generated) if is_generated else None,
            generation_expression=default if is_generated else None,
            identity=_IDENTITY.get(identity) if identity else None,
            char_max_length=char_len, position=position))

    pks: dict[str, tuple[str, ...]] = {}
    uniques: dict[str, list[UniqueKey]] = {}
    fks: dict[str, list[ForeignKey]] = {}
    checks: dict[str, list[CheckConstraint]] = {}
    for (table, name, kind, key, ref_schema, ref_table, ref_key, on_delete, on_update, deferrable, definition,
         nulls_not_distinct) in constraints:
        if kind == "p":
            pks[table] = tuple(key)
        elif kind == "u":
            uniques.setdefault(table, []).append(UniqueKey(name, tuple(key), "constraint", nulls_not_distinct))
        elif kind == "f":
            fks.setdefault(table, []).append(ForeignKey(
                name=name, columns=tuple(key), ref_schema=ref_schema, ref_table=ref_table,
                ref_columns=tuple(ref_key), on_delete=_ACTIONS.get(on_delete, "no action"),
                on_update=_ACTIONS.get(on_update, "no action"), deferrable=deferrable))
        else:
            checks.setdefault(table, []).append(CheckConstraint(name, definition))
    for table, name, key, nulls_not_distinct in indexes:
        uniques.setdefault(table, []).append(UniqueKey(name, tuple(key), "index", nulls_not_distinct))

    every_index: dict[str, list[IndexInfo]] = {}
    for table, name, key, unique, primary, method, predicate, definition in all_indexes:
        every_index.setdefault(table, []).append(IndexInfo(name, tuple(key), unique, primary, method, predicate,
                                                           definition))

    info = {}
    for table, reltuples, partitioned, *extra in tables:
        total_bytes, live_rows, readable = extra if extra else (None, None, None)
        info[table] = TableInfo(
            schema=schema, name=table, columns=tuple(cols.get(table, ())), primary_key=pks.get(table, ()),
            unique_keys=tuple(uniques.get(table, ())), foreign_keys=tuple(fks.get(table, ())),
            checks=tuple(checks.get(table, ())),
            # -1 means "never vacuumed or analysed": unknown, not empty
            row_estimate=None if reltuples is None or reltuples < 0 else int(reltuples),
            partitioned=partitioned, indexes=tuple(every_index.get(table, ())), total_bytes=total_bytes,
            live_rows=live_rows, readable=readable)
    return SchemaInfo(schema=schema, tables=info)
