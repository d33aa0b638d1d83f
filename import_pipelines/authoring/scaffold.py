"""Scaffold a template from a source and a target: the first draft a person then reviews.

For each target table named, the scaffold chooses a base table of the source (by name, the
synonyms help-desk schemas use, and how many of the target's fields its columns fill), maps the
fields (:func:`import_pipelines.authoring.fields.suggest`, or any matcher passed as ``suggest``),
adds the joins the suggestions support where a field needs another table (the many-to-one side
as a plain join, the one-to-many side keeping one row per parent), turns the target's foreign
keys between the named tables into references resolved by natural key, and writes all of it as
a commented YAML file that the template loader accepts as it is.

Every choice made on less than certain evidence carries a ``# REVIEW:`` comment that says what
was chosen and why, and is listed in :attr:`Scaffold.reviews`: a base table not named like the
target, a field matched by a synonym or a join, JSON taken apart, codes that need a value map, a
required field no column fills. Everything else is either an exact name match, the source's
primary key, or a declared or near-certain reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import yaml
from psycopg import sql

from import_pipelines.authoring import fields as field_matching
from import_pipelines.authoring.fields import SourceColumn, Suggest, TargetField, family
from import_pipelines.authoring.inspect import Catalogue
from import_pipelines.authoring.joins import JoinSuggestion
from import_pipelines.authoring.names import normalised, shared_prefix, words
from import_pipelines.db.introspect import SchemaInfo, TableInfo
from import_pipelines.db.sql import ident

REVIEW = "REVIEW"
SURE_JOIN = 0.9
"""A join suggestion at least this confident is used without asking for review."""
USABLE_JOIN = 0.5
CODE_VALUES = 20
"""A column with more distinct values than this is no code list to map value by value."""

TABLE_SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(group) for group in (
    {"ticket", "conversation", "case", "issue", "request"},
    {"customer", "customer_user", "contact", "client", "requester", "end_user", "person"},
    {"agent", "user", "staff", "employee", "operator"},
    {"account", "company", "organization", "organisation", "org"},
    {"time_entry", "timelog", "time_log", "worklog", "work_log"},
    {"message", "thread", "reply", "note", "comment", "article"},
))
_BOOKKEEPING = {"created_at", "updated_at"}
_LABELS = ("name", "title", "label", "display_name", "full_name", "email", "code")


@dataclass(frozen=True)
class Review:
    """One choice to check: where in the YAML, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Scaffold:
    """The scaffolded template: the YAML text and the choices marked for review."""

    text: str
    reviews: list[Review]

    def data(self) -> Any:
        """The YAML parsed."""
        return yaml.safe_load(self.text)


@dataclass
class _Line:
    value: Any
    comment: str | None = None
    review: bool = False


@dataclass
class _Join:
    table: str
    alias: str
    on: dict[str, str]
    first: list[str] | None
    comment: str
    review: bool
    used: bool = False


@dataclass
class _Entity:
    name: str
    table: TableInfo
    base: str
    alias: str
    base_line: _Line
    joins: list[_Join] = field(default_factory=list)
    fields: dict[str, _Line] = field(default_factory=dict)
    references: dict[str, _Line] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def scaffold_template(source: psycopg.Connection, catalogue: Catalogue, target: SchemaInfo, *, tables: Sequence[str],
                      bases: dict[str, str] | None = None, name: str = "scaffold", source_system: str = "source",
                      suggest: Suggest = field_matching.suggest) -> Scaffold:
    """Scaffold a template importing ``catalogue``'s source into ``tables`` of ``target``.

    ``source`` (read-only) is asked for the distinct values of code columns; ``bases`` names
    the source table of a target table where the scaffold should not choose; ``suggest`` is the
    field matcher (see :data:`import_pipelines.authoring.fields.Suggest`).
    """
    bases = bases or {}
    missing = [t for t in tables if t not in target.tables]
    if missing:
        raise ValueError(f"target schema {target.schema!r} has no table {', '.join(map(repr, missing))}")
    unknown = [b for b in bases.values() if b not in catalogue.info.tables]
    if unknown:
        raise ValueError(f"source schema {catalogue.schema!r} has no table {', '.join(map(repr, unknown))}")
    builder = _Builder(source, catalogue, target, suggest)
    entities = [builder.entity(table, base=bases.get(table)) for table in tables]
    for entity in entities:
        builder.references(entity, entities)
    return _render(entities, builder, name=name, source_system=source_system, target_schema=target.schema)


class _Builder:
    def __init__(self, source: psycopg.Connection, catalogue: Catalogue, target: SchemaInfo, suggest: Suggest):
        self.source = source
        self.catalogue = catalogue
        self.info = catalogue.info
        self.target = target
        self.suggest = suggest
        self.reviews: list[Review] = []
        self.notes: list[str] = []
        self.joins = [s for s in catalogue.join_suggestions if len(s.columns) == 1 and s.confidence >= USABLE_JOIN]
        self.prefix = shared_prefix(list(self.info.tables))

    # -- base table ---------------------------------------------------------------------------
    def entity(self, table_name: str, *, base: str | None) -> _Entity:
        table = self.target.table(table_name)
        wanted = self._fields(table)
        if base is not None:
            line = _Line({"table": base}, f"{base}: named for this entity")
        else:
            base, line = self._choose_base(table_name, wanted)
        alias = _alias(base, set())
        line.value["alias"] = alias
        entity = _Entity(name=table_name, table=table, base=base, alias=alias, base_line=line)
        self._map_fields(entity, wanted)
        return entity

    def _choose_base(self, table_name: str, wanted: list[TargetField]) -> tuple[str, _Line]:
        scored = []
        for candidate in self.info.tables.values():
            if len(candidate.primary_key) != 1 or candidate.readable is False:
                continue
            columns = [SourceColumn(f"x.{c.name}", c.name, c.data_type) for c in candidate.columns]
            coverage = len(self.suggest(columns, {}, wanted)) / max(1, len(wanted))
            similarity = _table_similarity(table_name, candidate.name, prefix=self.prefix)
            scored.append((0.5 * similarity + 0.5 * coverage, similarity, candidate.name))
        if not scored:
            raise ValueError("the source has no readable table with a single-column primary key to import from")
        scored.sort(key=lambda s: (-s[0], s[2]))
        score, similarity, best = scored[0]
        runner_up = f"; next: {scored[1][2]} ({scored[1][0]:.2f})" if len(scored) > 1 else ""
        reason = f"{best} chosen by its name and the fields its columns fill (score {score:.2f}{runner_up})"
        return best, _Line({"table": best}, reason, review=similarity < 1.0)

    # -- fields -------------------------------------------------------------------------------
    def _fields(self, table: TableInfo) -> list[TargetField]:
        """The target columns an import fills: not keys, not computed, not references, not bookkeeping."""
        skip = set(table.primary_key) | {"source_system", "external_id"}
        skip |= {fk.columns[0] for fk in table.foreign_keys if len(fk.columns) == 1}
        wanted = []
        for column in table.columns:
            if column.name in skip or column.is_generated or column.identity == "always":
                continue
            if column.name in _BOOKKEEPING and column.default and "now()" in column.default.lower():
                continue
            wanted.append(TargetField(column.name, column.data_type, required=not column.nullable
                                      and not column.has_default))
        return wanted

    def _map_fields(self, entity: _Entity, wanted: list[TargetField]) -> None:
        base = self.info.table(entity.base)
        pk = base.primary_key[0]
        entity.fields["external_id"] = _Line(f"{entity.alias}.{pk}", f"the primary key of {base.name}")
        base_columns = [SourceColumn(f"{entity.alias}.{c.name}", c.name, c.data_type) for c in base.columns]
        chosen = {t.name: (c, score, None) for c, t, score in
                  self.suggest(base_columns, self._samples(entity.base, entity.alias), wanted)}
        joins = self._candidate_joins(entity)
        # a base column x_id pointing at a table says more about field x than a joined table's own
        # column called x does (ost_ticket.status_id -> ost_ticket_status.name, not ost_user.status)
        labels = {t.name: found for t in wanted if t.name not in chosen
                  and (found := self._label(entity, t, joins)) is not None}
        rest = [t for t in wanted if t.name not in chosen and t.name not in labels]
        if rest:
            joined_columns, samples, via = [], {}, {}
            for join in joins:
                table = self.info.table(join.table)
                for column in table.columns:
                    if column.name in table.primary_key or any(key.endswith(f".{column.name}") for key in join.on):
                        continue
                    ref = f"{join.alias}.{column.name}"
                    joined_columns.append(SourceColumn(ref, column.name, column.data_type))
                    via[ref] = join
                samples.update(self._samples(join.table, join.alias))
            for column, target, score in self.suggest(joined_columns, samples, rest):
                chosen[target.name] = (column, score, via[column.ref])
        for target in wanted:
            if target.name in chosen:
                column, score, join = chosen[target.name]
                self._field(entity, target, column, score, join)
            elif target.name in labels:
                column, join = labels[target.name]
                self._field(entity, target, column, 0.0, join,
                            why=f"the {column.name} of the {join.table} row {entity.base}.{target.name}_id points at")
            elif target.required:
                entity.fields[target.name] = self._placeholder(entity, target)
            else:
                entity.notes.append(f"{target.name}: not mapped, no source column found"
                                    + (" (the target's default applies)" if entity.table.column(target.name).has_default
                                       else " (left empty)"))
        entity.joins = [j for j in joins if j.used]

    def _field(self, entity: _Entity, target: TargetField, column: SourceColumn, score: float,
               join: _Join | None, *, why: str | None = None) -> None:
        exact = why is None and normalised(column.name) == normalised(target.name)
        where = f"{join.table}.{column.name}" if join else f"{entity.base}.{column.name}"
        if join is not None:
            join.used = True
        samples = self.catalogue.samples.get(join.table if join else entity.base, {}).get(column.name, ())
        spec: Any = column.ref
        reasons = []
        if why is not None:
            reasons.append(why)
        elif not exact:
            reasons.append(f"{where} matched by {'name' if score >= 0.9 else 'a synonym'} ({score:.2f})")
        elif join is not None:
            reasons.append(f"{where}, through a join")
        path = _json_path(samples, target.name) if family(target.data_type) != "json" else None
        if path is not None:
            spec = {"json": {"column": column.ref, "path": path}}
            reasons.append(f"{where} holds JSON: the value at {_flow(path)} is taken")
        codes = self._code_map(entity, target, column, join)
        if codes is not None:
            spec, reason = codes
            reasons.append(reason)
        entity.fields[target.name] = _Line(spec, "; ".join(reasons) or None, review=bool(reasons))

    def _samples(self, table: str, alias: str) -> dict[str, tuple[str, ...]]:
        return {f"{alias}.{column}": values for column, values in self.catalogue.samples.get(table, {}).items()}

    def _candidate_joins(self, entity: _Entity) -> list[_Join]:
        """Joins the suggestions support from the base: to parents (many-to-one), then from children."""
        joins: list[_Join] = []
        used = {entity.alias}
        base_pk = self.info.table(entity.base).primary_key
        for s in self.joins:
            if s.table == entity.base and s.ref_table != entity.base:
                alias = _alias(s.ref_table, used)
                used.add(alias)
                on = {f"{alias}.{s.ref_columns[0]}": f"{entity.alias}.{s.columns[0]}"}
                joins.append(_Join(s.ref_table, alias, on, None, _join_reason(s, "many-to-one"),
                                   review=s.confidence < SURE_JOIN))
        for s in self.joins:
            if s.ref_table == entity.base and s.ref_columns == base_pk and s.table != entity.base:
                alias = _alias(s.table, used)
                used.add(alias)
                on = {f"{alias}.{s.columns[0]}": f"{entity.alias}.{base_pk[0]}"}
                child = self.info.table(s.table)
                if s.columns == child.primary_key or any(k.columns == s.columns for k in child.unique_keys):
                    # the child's key is the reference: at most one row per parent, nothing to choose
                    joins.append(_Join(s.table, alias, on, None, _join_reason(s, "one-to-one"),
                                       review=s.confidence < SURE_JOIN))
                    continue
                order = [f"{alias}.{child.primary_key[0]}"] if len(child.primary_key) == 1 else [f"{alias}.{s.columns[0]}"]
                joins.append(_Join(s.table, alias, on, order,
                                   _join_reason(s, "one-to-many") + f"; one {entity.base} row has several {s.table}"
                                   f" rows: the first by {order[0].split('.', 1)[1]} is kept", review=True))
        return joins

    def _label(self, entity: _Entity, target: TargetField, joins: list[_Join]) -> tuple[SourceColumn, _Join] | None:
        """For a text field ``x`` with a base column ``x_id``: the name (title, label) of the row it points at."""
        if family(target.data_type) != "text":
            return None
        for join in joins:
            if join.first is None and next(iter(join.on.values())) == f"{entity.alias}.{target.name}_id":
                table = self.info.table(join.table)
                for label in _LABELS:
                    if table.has_column(label):
                        return SourceColumn(f"{join.alias}.{label}", label, table.column(label).data_type), join
        return None

    def _code_map(self, entity: _Entity, target: TargetField, column: SourceColumn,
                  join: _Join | None) -> tuple[dict, str] | None:
        """A value map where the target accepts a fixed list of values the source column does not hold."""
        allowed = _allowed_values(entity.table, target.name)
        if not allowed:
            return None
        table = join.table if join else entity.base
        values = self._distinct(table, column.name)
        if values is None or set(values) <= set(allowed):
            return None
        keys = [int(v) if re.fullmatch(r"-?\d+", v) else v for v in values]
        spec = {"case": {"column": column.ref, "map": {k: None for k in keys}}}
        return spec, (f"{table}.{column.name} holds {', '.join(values)}; {entity.table.name}.{target.name} accepts"
                      f" {', '.join(allowed)}: map each value (a value left unmapped fails its row)")

    def _distinct(self, table: str, column: str) -> list[str] | None:
        info = self.info.table(table)
        rows = self.source.execute(sql.SQL(
            "SELECT DISTINCT ({c})::text FROM {t} WHERE {c} IS NOT NULL LIMIT {n}").format(
            c=ident(column), t=ident(info.schema, info.name), n=sql.Literal(CODE_VALUES + 1))).fetchall()
        self.source.rollback()
        values = sorted((r[0] for r in rows), key=lambda v: (len(v), v))
        return values if len(values) <= CODE_VALUES else None

    def _placeholder(self, entity: _Entity, target: TargetField) -> _Line:
        base = self.info.table(entity.base)
        first = next((c.name for c in base.columns if normalised(c.name) in ("first_name", "firstname")), None)
        last = next((c.name for c in base.columns if normalised(c.name) in ("last_name", "lastname", "surname")), None)
        if first and last and "name" in words(target.name):
            return _Line({"concat": [f"{entity.alias}.{first}", f"{entity.alias}.{last}"]},
                         f"required, no {target.name} column: first and last name joined (a row with neither fails)",
                         review=True)
        return _Line({"value": None}, f"required ({entity.table.name}.{target.name} is NOT NULL) and no source column"
                     " fills it: every row fails until this is set", review=True)

    # -- references ---------------------------------------------------------------------------
    def references(self, entity: _Entity, entities: list[_Entity]) -> None:
        """The target's foreign keys to other named tables, as references carried by a source column."""
        by_target = {e.table.name: e for e in entities}
        for fk in entity.table.foreign_keys:
            if len(fk.columns) != 1:
                continue
            column = fk.columns[0]
            not_null = not entity.table.column(column).nullable
            other = by_target.get(fk.ref_table)
            if other is None:
                note = f"{column} -> {fk.ref_table}: not an entity of this template, so it is not filled"
                if not_null:
                    entity.fields.setdefault(column, _Line({"value": None}, note + f"; {entity.table.name}.{column}"
                                                           " is NOT NULL: add the entity or map a value", review=True))
                else:
                    entity.notes.append(note)
                continue
            carrier = f"{column.removesuffix('_id')}_external_id"
            found = self._carrier(entity, other, column)
            spec: dict[str, Any] = {"entity": other.name, "field": carrier}
            if not_null:
                spec["required"] = True
            else:
                spec["on_missing"] = "set_null"
            if found is None:
                entity.fields[carrier] = _Line({"value": None}, f"no column of {entity.base} is known to point at"
                                               f" {other.base}: set the column that holds its {other.base} id",
                                               review=True)
                entity.references[column] = _Line(spec, f"{entity.table.name}.{column} -> {fk.ref_table}")
                continue
            suggestion, exact = found
            sure = exact and suggestion.confidence >= SURE_JOIN
            entity.fields[carrier] = _Line(f"{entity.alias}.{suggestion.columns[0]}",
                                           f"{suggestion.from_ref} -> {suggestion.to_ref} ({suggestion.confidence:.2f}:"
                                           f" {suggestion.summary()})", review=not sure)
            entity.references[column] = _Line(spec, f"{entity.table.name}.{column} -> {fk.ref_table}, by natural key"
                                              + ("" if not_null else "; left empty when the record is missing"))

    def _carrier(self, entity: _Entity, other: _Entity, column: str) -> tuple[JoinSuggestion, bool] | None:
        other_pk = self.info.table(other.base).primary_key
        candidates = [s for s in self.joins if s.table == entity.base and s.ref_table == other.base
                      and s.ref_columns == other_pk]
        if not candidates:
            return None
        wanted = normalised(column.removesuffix("_id"))
        candidates.sort(key=lambda s: (normalised(s.columns[0].removesuffix("_id")) != wanted, -s.confidence))
        best = candidates[0]
        return best, normalised(best.columns[0].removesuffix("_id")) == wanted


def _table_similarity(target: str, source: str, *, prefix: str | None = None) -> float:
    """1 for the same noun, 0.9 for synonyms, 0.6 for a shared word; a source's table prefix (``ost_``) aside."""
    parts = words(source)
    if prefix and len(parts) > 1 and parts[0] == prefix:
        source = "_".join(parts[1:])
    a, b = normalised(target), normalised(source)
    if a == b:
        return 1.0
    if any(a in group and b in group for group in TABLE_SYNONYMS):
        return 0.9
    if set(words(a)) & set(words(b)):
        return 0.6
    return 0.0


def _alias(table: str, used: set[str]) -> str:
    parts = words(table) or ["t"]
    candidate = "".join(p[0] for p in parts)
    length = 1
    while candidate in used or not re.match(r"^[a-z_]", candidate):
        length += 1
        candidate = "".join(p[:length] for p in parts)
        if length > max(len(p) for p in parts):
            candidate = f"{candidate}{len(used)}"
            break
    return candidate


def _allowed_values(table: TableInfo, column: str) -> list[str]:
    """The values a CHECK constraint restricts ``column`` to (``col IN (...)`` / ``= ANY (ARRAY[...])``)."""
    for check in table.checks:
        text = check.definition
        if re.search(rf"\b{re.escape(column)}\b", text) and ("ANY" in text or " IN " in text):
            values = re.findall(r"'((?:[^']|'')*)'", text)
            if values:
                return [v.replace("''", "'") for v in values]
    return []


def _json_path(samples: Sequence[str], field_name: str) -> list[str | int] | None:
    """Where in JSON text the value for ``field_name`` sits: ``[0, "value"]`` for ``[{"value": ...}]``."""
    for sample in samples:
        text = sample.strip()
        if not text.startswith(("[", "{")):
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            continue  # a sample is cut at 80 characters: try the next, else read the prefix
        return _path_in(parsed, field_name)
    for sample in samples:
        match = re.match(r'^\s*(\[)?\s*\{\s*"([^"]+)"\s*:\s*"', sample)
        if match:
            return ([0] if match.group(1) else []) + [match.group(2)]
    return None


def _path_in(value: Any, field_name: str) -> list[str | int] | None:
    if isinstance(value, list):
        if not value:
            return None
        inner = _path_in(value[0], field_name)
        return [0] + inner if inner is not None else None
    if isinstance(value, dict):
        strings = [k for k, v in value.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        if not strings:
            return None
        named = [k for k in strings if normalised(k) == normalised(field_name) or k in ("value", "name")]
        return [(named or strings)[0]]
    return None


# -- YAML ---------------------------------------------------------------------------------------
def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _join_reason(s: JoinSuggestion, kind: str) -> str:
    return f"{s.from_ref} -> {s.to_ref} ({s.confidence:.2f}, {kind})"


def _render(entities: list[_Entity], builder: _Builder, *, name: str, source_system: str,
            target_schema: str) -> Scaffold:
    reviews: list[Review] = []
    lines = [
        f"# Scaffolded from source schema {builder.catalogue.schema} into target schema {target_schema}.",
        f"# Lines marked {REVIEW} are choices made on weaker evidence: check each one before the first real",
        "# run. `python -m import_pipelines preview <this file>` shows what the template would import.",
        f"name: {_flow(name)}",
        f"description: {_flow('Scaffolded: ' + ', '.join(e.name for e in entities))}",
        "version: 1",
        f"source_system: {_flow(source_system)}  # the name this source's records carry in the target's natural key",
        "mode: upsert",
        f"target_schema: {_flow(target_schema)}",
        "natural_key: {system_column: source_system, id_column: external_id}",
        "",
        "entities:",
    ]
    nk_missing = [e.name for e in entities if not {"source_system", "external_id"} <= set(e.table.column_names)]
    if nk_missing:
        reviews.append(Review("natural_key", f"target tables {', '.join(nk_missing)} have no source_system and"
                                             " external_id columns to find imported rows by"))
        lines.insert(3, f"# {REVIEW}: {reviews[-1].reason}")

    def emit(indent: int, key: str, line: _Line, path: str) -> None:
        comment = ""
        if line.review:
            reviews.append(Review(path, line.comment or "check this choice"))
            comment = f"  # {REVIEW}: {line.comment}" if line.comment else f"  # {REVIEW}"
        elif line.comment:
            comment = f"  # {line.comment}"
        head = "- " if key == "-" else f"{key}: "
        lines.append(f"{' ' * indent}{head}{_flow(line.value)}{comment}")

    for entity in _dependency_order(entities):
        path = f"entities.{entity.name}"
        lines += [f"  {entity.name}:",
                  f"    description: {_flow(f'{entity.table.name} from {entity.base}')}",
                  f"    target: {_flow(entity.table.name)}",
                  "    source_id: external_id",
                  "    query:"]
        emit(6, "base", entity.base_line, f"{path}.query.base")
        if entity.joins:
            lines.append("      joins:")
            for number, join in enumerate(entity.joins):
                spec: dict[str, Any] = {"table": join.table, "alias": join.alias, "type": "left", "on": join.on}
                if join.first:
                    spec["first"] = {"order_by": join.first}
                line = _Line(spec, join.comment, join.review)
                emit(8, "-", line, f"{path}.query.joins[{number}]")
        lines.append("    fields:")
        for field_name, line in entity.fields.items():
            emit(6, field_name, line, f"{path}.fields.{field_name}")
        if entity.references:
            lines.append("    references:")
            for column, line in entity.references.items():
                emit(6, column, line, f"{path}.references.{column}")
        for note in entity.notes:
            lines.append(f"    # {note}")
        lines.append("")
    return Scaffold(text="\n".join(lines).rstrip() + "\n", reviews=reviews)


def _dependency_order(entities: list[_Entity]) -> list[_Entity]:
    """Referenced entities first (a cycle keeps the given order)."""
    by_name = {e.name: e for e in entities}
    ordered: list[_Entity] = []
    seen: set[str] = set()

    def visit(entity: _Entity) -> None:
        if entity.name in seen:
            return
        seen.add(entity.name)
        for line in entity.references.values():
            other = by_name.get(line.value["entity"])
            if other is not None:
                visit(other)
        ordered.append(entity)

    for entity in entities:
        visit(entity)
    return ordered
