"""Inspect a source database: its tables, columns, keys, indexes, sample values and joins.

What a query builder shows before anyone writes a query. The catalogue comes from
:func:`import_pipelines.db.introspect.describe_schema` with ``details`` (five catalogue queries,
one per kind of object, never one per table); the sample values from *one* more statement, a
``UNION ALL`` that reads the first rows of every readable table; the join suggestions from
:func:`import_pipelines.authoring.joins.suggest_joins`. Samples that look like secrets or
personal data are masked (see :mod:`import_pipelines.authoring.masking`) unless asked otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.authoring.joins import JoinSuggestion, suggest_joins
from import_pipelines.authoring.masking import MaskKind, mask_kind, masked
from import_pipelines.db.introspect import SchemaInfo, TableInfo, describe_schema
from import_pipelines.db.sql import ident

SAMPLE_ROWS = 20
"""Rows read from the start of each table to pick sample values from."""
SAMPLES_PER_COLUMN = 3
SAMPLE_CHARS = 80
"""Longer values are cut (bodies, JSON): a sample shows what a column holds, not all of it."""
TABLES_PER_STATEMENT = 25
"""Tables sampled by one statement: the planner's cost grows faster than a UNION ALL's length
(500 branches plan in about 0.8 s, 20 statements of 25 in about 0.1 s)."""

Samples = dict[str, dict[str, tuple[str, ...]]]
"""``{table: {column: (value, ...)}}``: distinct non-empty values in the order first seen."""


@dataclass(frozen=True)
class Catalogue:
    """One inspection of a source schema.

    ``samples`` are the raw values (for matching columns to fields); every rendering of the
    catalogue (:meth:`to_json`, :func:`render_text`) shows them through ``masks`` unless the
    inspection was made with ``unmasked``.
    """

    schema: str
    server_version: str
    info: SchemaInfo
    samples: Samples
    masks: dict[tuple[str, str], MaskKind]
    join_suggestions: list[JoinSuggestion] = field(default_factory=list)
    unmasked: bool = False
    seconds: float = 0.0

    def shown_samples(self, table: str, column: str) -> list[str]:
        """The samples of one column as they may be shown."""
        values = self.samples.get(table, {}).get(column, ())
        kind = self.masks.get((table, column))
        if kind is None or self.unmasked:
            return list(values)
        return [masked(kind)] * len(values)

    def to_json(self) -> dict[str, Any]:
        """The inspection as one JSON-serialisable document."""
        return {
            "schema": self.schema,
            "server_version": self.server_version,
            "seconds": round(self.seconds, 3),
            "masked": not self.unmasked,
            "tables": [self._table_json(table) for table in self.info.tables.values()],
            "join_suggestions": [suggestion.to_json() for suggestion in self.join_suggestions],
        }

    def _table_json(self, table: TableInfo) -> dict[str, Any]:
        references = {fk.columns[0]: f"{fk.ref_table}.{fk.ref_columns[0]}"
                      for fk in table.foreign_keys if len(fk.columns) == 1}
        return {
            "name": table.name,
            "row_estimate": row_estimate(table),
            "size_bytes": table.total_bytes,
            "size": human_bytes(table.total_bytes),
            "readable": table.readable,
            "primary_key": list(table.primary_key),
            "columns": [{
                "name": column.name, "type": column.data_type, "nullable": column.nullable,
                "default": column.default, "generated": column.generated, "identity": column.identity,
                "primary_key": column.name in table.primary_key, "references": references.get(column.name),
                "samples": self.shown_samples(table.name, column.name),
                "masked": None if self.unmasked else self.masks.get((table.name, column.name)),
            } for column in table.columns],
            "foreign_keys": [{"name": fk.name, "columns": list(fk.columns),
                              "references": f"{fk.ref_table}({', '.join(fk.ref_columns)})", "on_delete": fk.on_delete}
                             for fk in table.foreign_keys],
            "indexes": [{"name": index.name, "columns": list(index.columns), "unique": index.unique,
                         "primary": index.primary, "method": index.method, "predicate": index.predicate}
                        for index in table.indexes],
        }


def inspect_source(conn: psycopg.Connection, *, schema: str = "public", unmasked: bool = False, joins: bool = True,
                   sample_rows: int = SAMPLE_ROWS) -> Catalogue:
    """Inspect ``schema`` on ``conn`` (best a read-only session): catalogue, samples, masks, joins."""
    started = time.perf_counter()
    info = describe_schema(conn, schema, details=True)
    samples = read_samples(conn, info, rows=sample_rows)
    masks: dict[tuple[str, str], MaskKind] = {}
    for table in info.tables.values():
        for column in table.columns:
            kind = mask_kind(column.name, samples.get(table.name, {}).get(column.name, ()), data_type=column.data_type)
            if kind is not None:
                masks[(table.name, column.name)] = kind
    suggestions = suggest_joins(conn, info) if joins else []
    version = conn.execute("SHOW server_version").fetchone()[0]
    return Catalogue(schema=schema, server_version=version, info=info, samples=samples, masks=masks,
                     join_suggestions=suggestions, unmasked=unmasked, seconds=time.perf_counter() - started)


def read_samples(conn: psycopg.Connection, info: SchemaInfo, *, rows: int = SAMPLE_ROWS,
                 per_column: int = SAMPLES_PER_COLUMN) -> Samples:
    """Up to ``per_column`` distinct values per column from the first ``rows`` rows of every table.

    A ``UNION ALL`` with one branch per readable table, :data:`TABLES_PER_STATEMENT` tables per
    statement, each branch returning its rows as a text array (values cut to
    :data:`SAMPLE_CHARS`). Reading the first rows costs a few pages per table, whatever the
    table's size.
    """
    tables = [t for t in info.tables.values() if t.columns and t.readable is not False]
    branches = []
    for number, table in enumerate(tables):
        cut = sql.Literal(SAMPLE_CHARS)
        values = sql.SQL(", ").join(sql.SQL("left(({})::text, {})").format(ident("r", c.name), cut)
                                    for c in table.columns)
        branches.append(sql.SQL("(SELECT {n}, ARRAY[{values}]::text[] FROM (SELECT * FROM {table} LIMIT {rows}) AS r)")
                        .format(n=sql.Literal(number), values=values, table=ident(table.schema, table.name),
                                rows=sql.Literal(rows)))
    found: dict[int, list[list[str | None]]] = {}
    for start in range(0, len(branches), TABLES_PER_STATEMENT):
        statement = sql.SQL(" UNION ALL ").join(branches[start:start + TABLES_PER_STATEMENT])
        for number, values in conn.execute(statement).fetchall():
            found.setdefault(number, []).append(values)
    samples: Samples = {}
    for number, table in enumerate(tables):
        columns: dict[str, tuple[str, ...]] = {}
        for position, column in enumerate(table.columns):
            seen: dict[str, None] = {}
            for row in found.get(number, []):
                value = row[position]
                if value is not None and value.strip() and len(seen) < per_column:
                    seen.setdefault(value, None)
            columns[column.name] = tuple(seen)
        samples[table.name] = columns
    return samples


def row_estimate(table: TableInfo) -> int | None:
    """The planner's row estimate, or the statistics' live-row counter before a first ANALYZE."""
    return table.row_estimate if table.row_estimate is not None else table.live_rows


def human_bytes(size: int | None) -> str | None:
    """``8192`` -> ``8 kB``, as ``pg_size_pretty`` writes it."""
    if size is None:
        return None
    value, unit = float(size), "bytes"
    for larger in ("kB", "MB", "GB", "TB"):
        if value < 10 * 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.0f} {unit}"


def render_text(catalogue: Catalogue) -> str:
    """The inspection as a person reads it in a terminal."""
    lines = [f"schema {catalogue.schema} on PostgreSQL {catalogue.server_version}: {len(catalogue.info.tables)} tables"
             f" ({'samples unmasked' if catalogue.unmasked else 'samples of secrets and personal data masked'})", ""]
    for table in catalogue.info.tables.values():
        estimate = row_estimate(table)
        rows = "? rows" if estimate is None else f"~{estimate:,} rows"
        key = f"PK ({', '.join(table.primary_key)})" if table.primary_key else "no primary key"
        unreadable = "  (no SELECT privilege)" if table.readable is False else ""
        lines.append(f"{table.name}  {rows}  {human_bytes(table.total_bytes) or '?'}  {key}{unreadable}")
        references = {fk.columns[0]: f"-> {fk.ref_table}.{fk.ref_columns[0]}"
                      for fk in table.foreign_keys if len(fk.columns) == 1}
        width = max(len(c.name) for c in table.columns) if table.columns else 0
        type_width = max(len(c.data_type) for c in table.columns) if table.columns else 0
        for column in table.columns:
            flags = [] if column.nullable else ["not null"]
            if column.name in table.primary_key:
                flags.append("pk")
            if column.name in references:
                flags.append(references[column.name])
            if column.default is not None:
                flags.append(f"default {column.default}")
            if column.generated:
                flags.append(f"generated {column.generated}")
            kind = None if catalogue.unmasked else catalogue.masks.get((table.name, column.name))
            values = catalogue.samples.get(table.name, {}).get(column.name, ())
            shown = (f"  masked: {masked(kind)}" if kind and values
                     else f"  e.g. {', '.join(repr(v) for v in values)}" if values else "")
            lines.append(f"    {column.name:<{width}}  {column.data_type:<{type_width}}  {'; '.join(flags)}{shown}")
        for index in table.indexes:
            kind = "primary key" if index.primary else "unique" if index.unique else index.method
            where = f" WHERE {index.predicate}" if index.predicate else ""
            lines.append(f"    index {index.name} ({', '.join(index.columns)}) {kind}{where}")
        lines.append("")
    if catalogue.join_suggestions:
        lines.append("join suggestions (confidence, evidence):")
        for suggestion in catalogue.join_suggestions:
            lines.append(f"    {suggestion.from_ref} -> {suggestion.to_ref}  {suggestion.confidence:.2f}"
                         f"  {suggestion.summary()}")
    return "\n".join(lines)
