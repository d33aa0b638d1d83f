"""A load plan: one entity's fields and references checked against the real target tables.

Built once per run before anything is written, so a template that maps a field to a missing or
computed column fails with a message naming the entity, the field and the column.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from import_pipelines.load.target import TargetTable, read_target_tables
from import_pipelines.templates.graph import is_late
from import_pipelines.templates.model import Entity, Mode, Template


class MappingError(ValueError):
    """A template mapping that does not fit the target schema."""


@dataclass(frozen=True)
class ResolvedReference:
    """A reference column with the target table it points at."""

    column: str
    entity: str
    field: str
    table: TargetTable
    on_missing: str
    required: bool
    late: bool  # a self reference or part of a cycle: loaded empty, resolved by late_seed
    via_state: bool  # the referenced entity dedupes: a duplicate's id resolves to its survivor's row


@dataclass(frozen=True)
class LoadPlan:
    """Everything the merge needs for one entity in one run."""

    profile: str
    entity_name: str
    entity: Entity
    template: Template
    source_system: str
    mode: Mode
    table: TargetTable
    write_fields: list[str]  # fields written to target columns of the same name
    references: list[ResolvedReference]
    touch_columns: list[str]  # set to now() when a row is updated

    @property
    def source_table(self) -> str:
        """The source table the entity is read from (its base table)."""
        return self.entity.query.base.table


def build_plan(conn: psycopg.Connection, *, template: Template, entity_name: str, profile: str,
               source_system: str | None = None, mode: Mode | None = None) -> LoadPlan:
    """Check ``entity_name`` of ``template`` against the target database and return its plan."""
    entity = template.entities[entity_name]
    schema = template.target_schema
    where = f"entity {entity_name!r}"
    # one catalogue description for the entity's table and every table it references
    wanted = [entity.target, *(template.entities[ref.entity].target for ref in entity.references.values())]
    try:
        tables = read_target_tables(conn, schema=schema, tables=wanted)
    except LookupError as error:
        raise MappingError(f"{where}: {error}") from None
    table = tables[entity.target]
    nk = template.natural_key
    for column in (nk.system_column, nk.id_column):
        if column not in table.columns:
            raise MappingError(f"{where}: target table {table.qualified} has no natural-key column {column!r}")
    carriers = {ref.field for ref in entity.references.values()}
    write_fields = [f for f in entity.fields if f not in carriers and f != entity.source_id]
    problems = []
    for field in write_fields:
        column = table.columns.get(field)
        if column is None:
            problems.append(f"field {field!r} is not a column of {table.qualified}"
                            f" (columns: {', '.join(table.columns)})")
        elif not column.writable:
            problems.append(f"field {field!r} maps to {table.qualified}.{field}, a computed column the database"
                            " fills itself; remove the field")
        elif field in (nk.system_column, table.primary_key):
            problems.append(f"field {field!r} is managed by the import (natural key / primary key)")
    references = []
    for column, ref in entity.references.items():
        if column not in table.columns:
            problems.append(f"reference {column!r} is not a column of {table.qualified}")
            continue
        ref_table = tables[template.entities[ref.entity].target]
        late = is_late(template, entity_name, column)
        if late and table.columns[column].not_null:
            problems.append(f"reference {column!r} points back at {ref.entity!r} (a cycle or self reference), so it"
                            f" is loaded empty and resolved by late_seed; {table.qualified}.{column} is NOT NULL,"
                            " which leaves no way to load the row first")
        references.append(ResolvedReference(column=column, entity=ref.entity, field=ref.field, table=ref_table,
                                            on_missing=ref.on_missing,
                                            required=ref.required or table.columns[column].not_null, late=late,
                                            via_state=template.entities[ref.entity].dedupe is not None))
    if entity.dedupe is not None:
        for name in entity.dedupe.columns:
            if name not in table.columns:
                problems.append(f"dedupe field {name!r} is not a column of {table.qualified}, so target rows"
                                " cannot be compared on it")
    if problems:
        raise MappingError(f"{where}: " + "; ".join(problems))
    touch = [c for c in ("updated_at",) if c in table.columns and c not in write_fields and table.columns[c].writable]
    return LoadPlan(profile=profile, entity_name=entity_name, entity=entity, template=template,
                    source_system=source_system or template.source_system, mode=mode or entity.mode or template.mode,
                    table=table, write_fields=write_fields, references=references,
                    touch_columns=touch)
