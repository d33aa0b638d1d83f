"""A template entity checked against the target tables, and the merge plan the engine runs for it.

Built before anything is written, so a template that maps a field to a missing or computed
column fails with a message naming the entity, the field and the column. The entity's natural
key is the template's (source system, external id) pair; each reference resolves through the
referenced entity's table by that same pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.introspect import describe_schema
from import_pipelines.db.sql import ident
from import_pipelines.engine.plan import MergePlan, Mode, Ref, Value
from import_pipelines.engine.target import TargetTable, read_target_tables
from import_pipelines.templates.graph import is_late
from import_pipelines.templates.model import Entity, Template


class MappingError(ValueError):
    """A template mapping that does not fit the target schema."""


@dataclass(frozen=True)
class EntityPlan:
    """One entity of one profile: the template's view of it and the engine's merge plan."""

    profile: str
    entity_name: str
    entity: Entity
    template: Template
    source_system: str
    table: TargetTable
    write_fields: list[str]  # fields written to target columns of the same name
    merge: MergePlan

    @property
    def mode(self) -> Mode:
        """The mode the entity is merged with."""
        return self.merge.mode

    @property
    def source_table(self) -> str:
        """The source table the entity is read from (its base table)."""
        return self.entity.source_label


def build_plan(conn: psycopg.Connection, *, template: Template, entity_name: str, profile: str,
               source_system: str | None = None, mode: Mode | None = None) -> EntityPlan:
    """Check ``entity_name`` of ``template`` against the target database and return its plan."""
    entity = template.entities[entity_name]
    system = source_system or template.source_system
    where = f"entity {entity_name!r}"
    wanted = [entity.target, *(template.entities[ref.entity].target for ref in entity.references.values())]
    described = describe_schema(conn, template.target_schema)
    try:
        tables = read_target_tables(conn, schema=described, tables=wanted)
    except LookupError as error:
        raise MappingError(f"{where}: {error}") from None
    table = tables[entity.target]
    nk = template.natural_key
    problems = []
    for column in (nk.system_column, nk.id_column):
        if column not in table.columns:
            raise MappingError(f"{where}: target table {table.qualified} has no natural-key column {column!r}")
    if len(table.row_key) != 1:
        problems.append(f"target table {table.qualified} needs a single-column primary key (has {len(table.row_key)})")
    carriers = {ref.field for ref in entity.references.values()}
    write_fields = [f for f in entity.fields if f not in carriers and f != entity.source_id]
    for field in write_fields:
        column = table.columns.get(field)
        if column is None:
            problems.append(f"field {field!r} is not a column of {table.qualified}"
                            f" (columns: {', '.join(table.columns)})")
        elif not column.writable:
            problems.append(f"field {field!r} maps to {table.qualified}.{field}, a computed column the database"
                            " fills itself; remove the field")
        elif field in (nk.system_column, *table.row_key):
            problems.append(f"field {field!r} is managed by the import (natural key / primary key)")
    refs = []
    reviews = bool(entity.references) and conn.execute(
        "SELECT to_regclass('import_control.review_pairs') IS NOT NULL").fetchone()[0]
    for column, ref in entity.references.items():
        if column not in table.columns:
            problems.append(f"reference {column!r} is not a column of {table.qualified}")
            continue
        ref_table = tables[template.entities[ref.entity].target]
        for fk in described.table(entity.target).foreign_keys:
            if fk.columns == (column,) and (fk.ref_schema, fk.ref_table) != (ref_table.schema, ref_table.name):
                problems.append(f"reference {column!r} points at entity {ref.entity!r} ({ref_table.qualified}), but"
                                f" foreign key {fk.name} of {table.qualified}.{column} references"
                                f" {fk.ref_schema}.{fk.ref_table}")
        refs.append(_reference(template, entity_name=entity_name, column=column, table=table,
                               ref_table=tables[template.entities[ref.entity].target], system=system,
                               profile=profile, reviews=reviews))
    if entity.dedupe is not None:
        for name in entity.dedupe.columns:
            if name not in table.columns:
                problems.append(f"dedupe field {name!r} is not a column of {table.qualified}, so target rows"
                                " cannot be compared on it")
    if problems:
        raise MappingError(f"{where}: " + "; ".join(problems))
    touch = tuple(c for c in ("updated_at",) if c in table.columns and c not in write_fields and table.columns[c].writable)
    source_id = sql.SQL("(s.{})::text").format(ident(entity.source_id))
    merge = MergePlan(
        profile=profile, entity=entity_name, table=table,
        key=(Value(nk.system_column, sql.Literal(system)), Value(nk.id_column, source_id)),
        key_null=sql.SQL("({}) IS NULL").format(source_id),
        key_message=f"{entity.source_id}: the source identifier is empty",
        values=tuple(Value(f, ident("s", f)) for f in write_fields), refs=tuple(refs), touch=touch,
        change="hash", mode=mode or entity.mode or template.mode, source_id=source_id,
        unlinked_key=(nk.id_column,), dedupes=entity.dedupe is not None)
    return EntityPlan(profile=profile, entity_name=entity_name, entity=entity, template=template, source_system=system,
                      table=table, write_fields=write_fields, merge=merge)


def _reference(template: Template, *, entity_name: str, column: str, table: TargetTable, ref_table: TargetTable,
               system: str, profile: str, reviews: bool) -> Ref:
    """A template reference: the carrier field holds the referenced record's source id.

    ``reviews``: the target keeps review pairs (its control schema has them), so a referenced
    record held back for review can be told from a missing one.
    """
    ref = template.entities[entity_name].references[column]
    reviewed = reviews and template.entities[ref.entity].dedupe is not None

    def describe_missing(atoms):
        message = sql.SQL("({} || {})").format(sql.Literal(f"{column}: no {ref.entity} with {nk.id_column} "), atoms[1])
        if not reviewed:
            return message
        # a referenced record held back as a possible duplicate is not missing: it waits for a person
        return sql.SQL(
            "({} || COALESCE((SELECT {} || rp.review_id || {} || rp.review_id || {} FROM {} AS rp"
            " WHERE rp.profile = {} AND rp.entity = {} AND rp.source_id = {} AND rp.decision IS NULL"
            " ORDER BY rp.confidence DESC LIMIT 1), ''))").format(
            message, sql.Literal(" (it waits for review as a possible duplicate: `python -m import_pipelines review"
                                 " accept "), sql.Literal("` or `review reject "), sql.Literal("`)"),
            ident(CONTROL_SCHEMA, "review_pairs"), sql.Literal(profile), sql.Literal(ref.entity), atoms[1])
    nk = template.natural_key
    carrier = sql.SQL("(s.{})::text").format(ident(ref.field))
    target_column = table.columns[column]
    relation = sql.SQL("SELECT x.{} AS r0, x.{} AS k0, x.{} AS k1 FROM {} AS x").format(
        ident(ref_table.primary_key), ident(nk.system_column), ident(nk.id_column),
        ident(ref_table.schema, ref_table.name))
    required = ref.required or not target_column.nullable
    return Ref(
        name=column, columns=(column,), column_types=(target_column.data_type,), table=ref_table,
        ref_columns=(ref_table.primary_key,), relation=relation, atoms=(sql.Literal(system), carrier),
        atom_names=(nk.system_column, nk.id_column), atom_types=("text", "text"),
        present=sql.SQL("s.{} IS NOT NULL").format(ident(ref.field)),
        describe_missing=describe_missing,
        source_key=carrier, ref_stream=ref.entity, deferred=is_late(template, entity_name, column),
        not_null=not target_column.nullable,
        required_message=f"{column}: required reference ({ref.field}) is empty" if required else None,
        on_missing="fail" if required else ref.on_missing,
        follows_duplicates=template.entities[ref.entity].dedupe is not None)
