"""Check a whole template against the source and the target before a run writes anything.

Template validation (:mod:`import_pipelines.templates.loader`) checks what a template says; this
checks what it says against the two databases it will run on, for every entity at once, so a
mistake in the last entity fails the run before the first entity has written a row:

- target: each entity's load plan (:func:`import_pipelines.pipeline.plan.build_plan`) — the target
  table exists, every field is a writable column (no generated or identity-always column), no
  reference that must be late-seeded is NOT NULL (a cycle through NOT NULL references) — and
  every NOT NULL column without a default is written, where the mode inserts rows;
- source: every table the query reads exists and is not part of the server's catalogue, and the
  compiled query runs: ``SELECT * FROM (<query>) LIMIT 0`` in the read-only source session, which
  plans it (columns, types, functions) without reading a row. A failing query is narrowed to the
  part that breaks it (base table, a join, a filter, a ``where`` or ``ORDER BY`` item, a field).

Each problem is reported as (YAML path, rule), like a template error, in one
:class:`PreflightError` naming the template file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from import_pipelines.db.connect import connect
from import_pipelines.db.sql import ident
from import_pipelines.query.compile import compile_query
from import_pipelines.templates.loader import TemplateError
from import_pipelines.templates.model import Entity, FieldSpec, Mode, Query, Template

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class PreflightError(TemplateError):
    """A template that does not fit its source or target: ``problems`` are (YAML path, rule) pairs."""

    headline = "the template does not fit its source or target databases"


@dataclass(frozen=True)
class PreflightReport:
    """What a successful preflight checked."""

    entities: int
    seconds: float


def preflight(template: Template, *, source_url: str | None, target_url: str, profile: str, template_source: str,
              source_system: str | None = None, mode: Mode | None = None,
              entity_modes: dict[str, Mode] | None = None) -> PreflightReport:
    """Check every entity of ``template`` against both databases; raise :class:`PreflightError`.

    ``mode`` and ``entity_modes`` are the profile's overrides (they decide whether rows are
    inserted, which makes unwritten NOT NULL columns a problem). Nothing is written anywhere.
    """
    started = time.perf_counter()
    modes = {name: (entity_modes or {}).get(name, mode) for name in template.entities}
    problems = target_problems(template, target_url=target_url, profile=profile, source_system=source_system,
                               modes=modes)
    if source_url is not None and any(entity.query is not None for entity in template.entities.values()):
        problems += source_problems(template, source_url=source_url, profile=profile)
    problems += expectation_problems(template)
    if problems:
        raise PreflightError(template_source, problems)
    return PreflightReport(entities=len(template.entities), seconds=time.perf_counter() - started)


def target_problems(template: Template, *, target_url: str, profile: str, source_system: str | None,
                    modes: dict[str, Mode | None]) -> list[tuple[str, str]]:
    """Problems of every entity against the target schema (nothing is written)."""
    from import_pipelines.pipeline.plan import MappingError, build_plan

    problems: list[tuple[str, str]] = []
    with connect(target_url, autocommit=True, purpose=f"target of profile {profile}") as conn:
        for name in template.entities:
            try:
                plan = build_plan(conn, template=template, entity_name=name, profile=profile,
                                  source_system=source_system, mode=modes.get(name))
            except MappingError as error:
                problems.append((f"entities.{name}", f"target: {error}"))
                continue
            if plan.mode == "update_only":
                continue
            written = {*plan.write_fields, *(c for r in plan.merge.refs for c in r.columns), plan.table.primary_key,
                       template.natural_key.system_column, template.natural_key.id_column}
            unwritten = [c.name for c in plan.table.columns.values()
                         if not c.nullable and not c.has_default and not c.generated and not c.identity
                         and c.name not in written]
            if unwritten:
                problems.append((f"entities.{name}.fields",
                                 f"target: {plan.table.qualified} requires {', '.join(unwritten)} (NOT NULL, no"
                                 f" default) and no field writes {'it' if len(unwritten) == 1 else 'them'}, so"
                                 f" every new row would fail (mode {plan.mode})"))
    return problems


def source_problems(template: Template, *, source_url: str, profile: str) -> list[tuple[str, str]]:
    """Problems of every entity's query against the source (read-only; no row is read)."""
    problems: list[tuple[str, str]] = []
    with connect(source_url, read_only=True, autocommit=True, purpose=f"source of profile {profile}") as conn:
        # the statements below read only catalogue names, valid in any encoding (a SQL_ASCII
        # server would otherwise hand them over as bytes)
        conn.execute("SET standard_conforming_strings = on; SET client_encoding = 'UTF8'")
        version = conn.info.server_version
        for name, entity in template.entities.items():
            if entity.query is not None:  # a records entity's source is read by the run, not planned here
                problems += _entity_source_problems(conn, name=name, entity=entity, version=version)
    return problems


def _entity_source_problems(conn: psycopg.Connection, *, name: str, entity: Entity,
                            version: int) -> list[tuple[str, str]]:
    query = entity.query
    tables = [("query.base", query.base.schema_, query.base.table)]
    tables += [(f"query.joins[{i}]", j.schema_, j.table) for i, j in enumerate(query.joins)]
    problems = []
    for where, schema, table in tables:
        rule = _table_problem(conn, schema=schema, table=table)
        if rule:
            problems.append((f"entities.{name}.{where}.table", f"source: {rule}"))
    if problems:
        return problems

    def fails(q: Query, fields: dict[str, FieldSpec]) -> str | None:
        return _runs(conn, q, fields, version=version)

    failure = fails(query, entity.fields)
    if failure is None:
        return []
    # narrow down: the tables and joins alone, then each condition, then each field
    bare = query.model_copy(update={"joins": [], "filters": [], "where": [], "order_by": [], "distinct": False})
    if (rule := fails(bare, {})) is not None:
        return [(f"entities.{name}.query.base", f"source: {rule}")]
    for i in range(len(query.joins)):
        if (rule := fails(bare.model_copy(update={"joins": query.joins[:i + 1]}), {})) is not None:
            return [(f"entities.{name}.query.joins[{i}]", f"source: {rule}")]
    joined = bare.model_copy(update={"joins": query.joins})
    for part in ("filters", "where", "order_by"):
        for i, item in enumerate(getattr(query, part)):
            if (rule := fails(joined.model_copy(update={part: [item]}), {})) is not None:
                problems.append((f"entities.{name}.query.{part}[{i}]", f"source: {rule}"))
    for field, spec in entity.fields.items():
        if (rule := fails(joined, {field: spec})) is not None:
            problems.append((f"entities.{name}.fields.{field}", f"source: {rule}"))
    return problems or [(f"entities.{name}.query", f"source: {failure}")]


def _table_problem(conn: psycopg.Connection, *, schema: str | None, table: str) -> str | None:
    name = ident(schema, table) if schema else ident(table)
    found = conn.execute(sql.SQL("SELECT n.nspname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                                 " WHERE c.oid = to_regclass({})").format(sql.Literal(name.as_string(conn)))).fetchone()
    shown = f"{schema}.{table}" if schema else table
    if found is None:
        return f"table {shown} does not exist"
    if found[0] in _SYSTEM_SCHEMAS or found[0].startswith("pg_"):
        return f"table {shown} is {found[0]}.{table}, part of the server's catalogue"
    return None


def _runs(conn: psycopg.Connection, query: Query, fields: dict[str, FieldSpec], *, version: int) -> str | None:
    """``None`` when the compiled query plans and runs with ``LIMIT 0``, else the server's message."""
    try:
        compiled = compile_query(query, fields, server_version=version)
        conn.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(compiled.statement))
    except psycopg.Error as error:
        return (error.diag.message_primary or str(error)).strip()
    except ValueError as error:
        return str(error)
    return None


def expectation_problems(template: Template) -> list[tuple[str, str]]:
    """Each great-expectations expectation without a built-in form, built from its kwargs.

    great_expectations is imported only when a template has such an expectation.
    """
    from import_pipelines.validation.rules import sql_form

    problems: list[tuple[str, str]] = []
    for name, entity in template.entities.items():
        items = [(i, e) for i, e in enumerate(entity.validate_) if sql_form(e) is None]
        if not items:
            continue
        from import_pipelines.validation.gx_chunks import ExpectationConfigError, build_expectations

        for item in items:
            try:
                build_expectations([item], where=f"entities.{name}.validate")
            except ExpectationConfigError as error:
                problems.append((error.where, str(error).removeprefix(f"{error.where}: ")))
    return problems
