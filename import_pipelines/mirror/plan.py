"""What to load and how rows are recognised: natural keys, references, the staging layout.

Ids differ between source and target, so rows are matched by *natural key* and every reference
travels as the natural key of the referenced row, never as its id:

- A table's natural key is a unique constraint or unique index other than the surrogate primary
  key (or the primary key itself when it is not surrogate, e.g. ``project_members(project_id,
  user_id)``), or the columns named in the overrides file.
- A natural key may contain foreign-key columns; such a column is expressed through the
  referenced table's own natural key, recursively. Flattened, a natural key is a tuple of
  *atoms*: ``project_members`` is keyed by (``project_id->projects.code``,
  ``user_id->users.sysmail``).
- The *staging layout* of a table is what the source query (and an archive file) carries per
  row: the plain copied columns, then for every reference group an optional presence flag and
  the referenced row's key atoms. Computed columns (generated, identity) and the surrogate
  primary key are left out.
- A *key relation* is a SELECT over a table (in source or target) exposing the referenced
  columns as ``r0..`` and the key atoms as ``k0..``; joining it on ``k*`` turns natural keys
  into target ids in one set-based step.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql

from import_pipelines.db.introspect import ColumnInfo, SchemaInfo, TableInfo
from import_pipelines.db.sql import ident
from import_pipelines.engine.graph import Edge, LoadOrder, Reference, dependency_edges, load_order
from import_pipelines.mirror.overrides import OVERRIDE_FORMAT_HELP, NaturalKeyOverrides
from import_pipelines.mirror.report import MirrorError


@dataclass(frozen=True)
class RefSpec:
    """A reference of a table: a foreign key (``declared``) or an extra reference."""

    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    declared: bool

    @property
    def label(self) -> str:
        """Column list as shown in messages: ``user_id`` or ``a,b``."""
        return ",".join(self.columns)


@dataclass(frozen=True)
class Atom:
    """One scalar of a flattened natural key, e.g. ``user_id->users.sysmail``."""

    name: str
    data_type: str
    nullable: bool


@dataclass(frozen=True)
class RefGroup:
    """A reference of a loaded table, with its place in the staging layout."""

    spec: RefSpec
    column_types: tuple[str, ...]
    atoms: tuple[Atom, ...]
    has_flag: bool
    not_null: bool
    deferred: bool
    flag_slot: int | None
    atom_slots: tuple[int, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Referencing columns in the loaded table."""
        return self.spec.columns

    @property
    def ref_table(self) -> str:
        """The referenced table."""
        return self.spec.ref_table


@dataclass(frozen=True)
class LayoutColumn:
    """One column of the staging layout (and of an archive file)."""

    name: str
    data_type: str


@dataclass(frozen=True)
class TablePlan:
    """How one table is loaded: staging layout, reference groups, natural and row keys."""

    table: str
    plain: tuple[ColumnInfo, ...]
    groups: tuple[RefGroup, ...]
    natural_key: tuple[str, ...]
    natural_key_origin: str
    row_key: tuple[str, ...]
    row_key_types: tuple[str, ...]
    layout: tuple[LayoutColumn, ...]
    key_slots: tuple[int, ...]
    key_atom_names: tuple[str, ...]

    def plain_slot(self, column: str) -> int | None:
        """Staging slot of a plain column, or None when the column is not plain."""
        for slot, info in enumerate(self.plain):
            if info.name == column:
                return slot
        return None

    def group_of(self, column: str) -> tuple[int, int] | None:
        """(group index, position in group) of a reference column, or None."""
        for index, group in enumerate(self.groups):
            if column in group.columns:
                return index, group.columns.index(column)
        return None

    @property
    def deferred_groups(self) -> tuple[int, ...]:
        """Indexes of groups loaded late."""
        return tuple(index for index, group in enumerate(self.groups) if group.deferred)


KeyElement = tuple[Literal["column"], str] | tuple[Literal["ref"], RefSpec]


class KeyModel:
    """Natural keys of every table in a schema, their flattened atoms and key-relation SQL."""

    def __init__(self, schema: SchemaInfo, *, overrides: NaturalKeyOverrides | None = None,
                 references: Iterable[Reference] = ()) -> None:
        self.schema = schema
        self.overrides = dict(overrides or {})
        self.extra = tuple(references)
        self._keys: dict[str, tuple[tuple[str, ...], str]] = {}

    # -- references ---------------------------------------------------------------------------
    def references_of(self, table: str) -> tuple[RefSpec, ...]:
        """Foreign keys within the schema and extra references of ``table``; a column belongs to
        at most one reference (the first by name), so every column gets one target value."""
        info = self.schema.table(table)
        specs = [RefSpec(fk.name, fk.columns, fk.ref_table, fk.ref_columns, True)
                 for fk in sorted(info.foreign_keys, key=lambda fk: fk.name) if fk.ref_schema == self.schema.schema]
        specs += [RefSpec(ref.label, tuple(ref.columns), ref.ref_table, tuple(ref.ref_columns), False)
                  for ref in self.extra if ref.table == table]
        taken: set[str] = set()
        result = []
        for spec in specs:
            if taken & set(spec.columns):
                continue
            taken |= set(spec.columns)
            result.append(spec)
        return tuple(result)

    def surrogate_key(self, table: str) -> tuple[str, ...]:
        """The primary key when the database assigns it (identity or default, not a reference)."""
        info = self.schema.table(table)
        if len(info.primary_key) != 1:
            return ()
        column = info.column(info.primary_key[0])
        ref_columns = {c for spec in self.references_of(table) for c in spec.columns}
        if column.name not in ref_columns and (column.identity is not None or column.default is not None):
            return info.primary_key
        return ()

    # -- natural keys -------------------------------------------------------------------------
    def natural_key(self, table: str) -> tuple[tuple[str, ...], str]:
        """(columns, where they come from) for ``table``; MirrorError with guidance when none."""
        if table not in self._keys:
            self._keys[table] = self._choose_key(table)
        return self._keys[table]

    def _choose_key(self, table: str) -> tuple[tuple[str, ...], str]:
        info = self.schema.table(table)
        if table in self.overrides:
            columns = self.overrides[table]
            for column in columns:
                if not info.has_column(column):
                    raise MirrorError(f"overrides: table {table!r} has no column {column!r} "
                                      f"(columns: {', '.join(info.column_names)})")
                if info.column(column).is_computed:
                    raise MirrorError(f"overrides: column {table}.{column} is computed by the database "
                                      f"and cannot be part of a natural key")
            return tuple(columns), "override"
        surrogate = set(self.surrogate_key(table))
        refs = self.references_of(table)
        self_ref_columns = {c for spec in refs if spec.ref_table == table for c in spec.columns}
        ref_columns = {c for spec in refs for c in spec.columns}
        candidates: list[tuple[tuple, tuple[str, ...], str]] = []
        keys = [(info.primary_key, "primary key", "constraint", "")] if info.primary_key and not surrogate else []
        keys += [(key.columns, f"unique {key.origin} {key.name}", key.origin, key.name) for key in info.unique_keys
                 if key.columns != info.primary_key]
        for columns, origin, kind, name in keys:
            if (surrogate & set(columns) or self_ref_columns & set(columns)
                    or any(info.column(c).is_computed for c in columns)):
                continue
            nullable = any(info.column(c).nullable for c in columns)
            # NOT NULL keys first (a NULL cannot be matched), plain columns before references
            # (cheaper to match), short keys, constraints before bare indexes, then by name
            rank = (nullable, bool(ref_columns & set(columns)), len(columns), origin != "primary key",
                    kind == "index", name)
            candidates.append((rank, tuple(columns), origin))
        if not candidates:
            raise MirrorError(no_natural_key_message(info, surrogate=tuple(sorted(surrogate))))
        _, columns, origin = min(candidates)
        return columns, origin

    def key_elements(self, table: str) -> tuple[KeyElement, ...]:
        """The natural key as plain columns and whole references, in key order."""
        columns, _ = self.natural_key(table)
        refs = self.references_of(table)
        elements: list[KeyElement] = []
        seen: set[str] = set()
        for column in columns:
            spec = next((spec for spec in refs if column in spec.columns), None)
            if spec is None:
                elements.append(("column", column))
            elif spec.name not in seen:
                seen.add(spec.name)
                elements.append(("ref", spec))
        return tuple(elements)

    def key_atoms(self, table: str, _stack: tuple[str, ...] = ()) -> tuple[Atom, ...]:
        """The flattened natural key of ``table`` (references expanded to their own keys)."""
        if table in _stack:
            path = " -> ".join((*_stack, table))
            raise MirrorError(f"the natural key of {table!r} depends on itself ({path}); name a natural key "
                              f"without that reference in the overrides file ({OVERRIDE_FORMAT_HELP})")
        info = self.schema.table(table)
        atoms: list[Atom] = []
        for kind, value in self.key_elements(table):
            if kind == "column":
                column = info.column(value)
                atoms.append(Atom(value, column.data_type, column.nullable))
            else:
                path_nullable = any(info.column(c).nullable for c in value.columns)
                for atom in self.key_atoms(value.ref_table, (*_stack, table)):
                    atoms.append(Atom(f"{value.label}->{value.ref_table}.{atom.name}", atom.data_type,
                                      atom.nullable or path_nullable))
        return tuple(atoms)

    def key_relation(self, table: str, expose: tuple[str, ...], *, schema_name: str,
                     _stack: tuple[str, ...] = ()) -> sql.Composed:
        """``SELECT x.<expose> AS r0.., <atoms> AS k0.. FROM schema.table x JOIN ...``.

        Inner joins inside: a row whose key reference is NULL has no complete natural key and
        cannot be matched by equality anyway.
        """
        if table in _stack:
            self.key_atoms(table, _stack)  # raises the explanatory error
        selects = [sql.SQL("{} AS {}").format(ident("x", column), ident(f"r{i}")) for i, column in enumerate(expose)]
        joins: list[sql.Composable] = []
        atom = 0
        for n, (kind, value) in enumerate(self.key_elements(table)):
            if kind == "column":
                selects.append(sql.SQL("{} AS {}").format(ident("x", value), ident(f"k{atom}")))
                atom += 1
                continue
            alias = f"j{n}"
            inner = self.key_relation(value.ref_table, value.ref_columns, schema_name=schema_name,
                                      _stack=(*_stack, table))
            on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident(alias, f"r{i}"), ident("x", column))
                                       for i, column in enumerate(value.columns))
            joins.append(sql.SQL(" JOIN ({}) AS {} ON {}").format(inner, ident(alias), on))
            for i in range(len(self.key_atoms(value.ref_table, (*_stack, table)))):
                selects.append(sql.SQL("{} AS {}").format(ident(alias, f"k{i}"), ident(f"k{atom}")))
                atom += 1
        return sql.SQL("SELECT {} FROM {} AS x{}").format(
            sql.SQL(", ").join(selects), ident(schema_name, table), sql.Composed(joins))


def no_natural_key_message(info: TableInfo, *, surrogate: tuple[str, ...] = ()) -> str:
    """The refusal for a table without natural key, saying how to name one."""
    pk = f" other than its surrogate primary key ({', '.join(surrogate)})" if surrogate else ""
    candidates = [c.name for c in info.columns if not c.is_computed and c.name not in surrogate][:2]
    example = ", ".join(candidates) or "column_a, column_b"
    return (f"table {info.name!r} has no natural key: it has no unique constraint or unique index{pk}, so its "
            f"rows cannot be matched between databases whose ids differ. Name the columns that identify a row "
            f"in an overrides YAML file, one line per table, e.g.\n"
            f"    {info.name}: [{example}]\n"
            f"and pass it as overrides= (command line: --overrides FILE), or leave the table out.")


@dataclass(frozen=True)
class LoadPlan:
    """Every table to load, in dependency order, with its staging layout and deferred references."""

    schema: str
    order: tuple[str, ...]
    tables: dict[str, TablePlan]
    deferred: tuple[Edge, ...]
    keys: KeyModel
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def select_sql(self, table: str, *, schema_name: str | None = None) -> sql.Composed:
        """The source query producing ``table``'s staging layout (for ``COPY (...) TO STDOUT``)."""
        plan = self.tables[table]
        schema_name = schema_name or self.schema
        selects: list[sql.Composable] = [ident("t", column.name) for column in plan.plain]
        joins: list[sql.Composable] = []
        for index, group in enumerate(plan.groups):
            alias = f"g{index}"
            if group.has_flag:
                # MATCH SIMPLE: a reference is present when all of its columns are non-NULL
                selects.append(sql.SQL("({})").format(sql.SQL(" AND ").join(
                    sql.SQL("{} IS NOT NULL").format(ident("t", column)) for column in group.columns)))
            selects.extend(ident(alias, f"k{i}") for i in range(len(group.atoms)))
            relation = self.keys.key_relation(group.ref_table, group.spec.ref_columns, schema_name=schema_name)
            on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident(alias, f"r{i}"), ident("t", column))
                                       for i, column in enumerate(group.columns))
            joins.append(sql.SQL(" LEFT JOIN ({}) AS {} ON {}").format(relation, ident(alias), on))
        return sql.SQL("SELECT {} FROM {} AS t{}").format(
            sql.SQL(", ").join(selects), ident(schema_name, table), sql.Composed(joins))

    @property
    def placeholder_tables(self) -> tuple[str, ...]:
        """Tables referenced by a deferred NOT NULL reference: they need a placeholder row."""
        return tuple(sorted({group.ref_table for plan in self.tables.values() for group in plan.groups
                             if group.deferred and group.not_null}))

    def describe(self) -> list[str]:
        """Deferred references as ``table.columns -> ref_table`` strings (for reports)."""
        return [f"{edge.table}.{','.join(edge.columns)} -> {edge.ref_table}"
                + ("" if edge.nullable else " (NOT NULL: placeholder)") for edge in self.deferred]


def check_override_keys(conn: psycopg.Connection, plan: LoadPlan, *, side: str, schema_name: str | None = None
                        ) -> None:
    """Refuse natural keys named in overrides that are not unique in a database.

    A key from a unique constraint is unique by construction; one named by hand is not, and a
    duplicate would make one source row match two target rows. ``side`` names the database in
    the message ("source", "target").
    """
    for table in plan.order:
        tp = plan.tables[table]
        if tp.natural_key_origin != "override":
            continue
        atoms = [ident(f"k{i}") for i in range(len(plan.keys.key_atoms(table)))]
        relation = plan.keys.key_relation(table, (), schema_name=schema_name or plan.schema)
        found = conn.execute(sql.SQL(
            "SELECT count(*), {} FROM ({}) AS x GROUP BY {} HAVING count(*) > 1 LIMIT 1").format(
            sql.SQL(", ").join(atoms), relation, sql.SQL(", ").join(atoms))).fetchone()
        conn.rollback()
        if found:
            values = ", ".join(f"{name}={value!r}" for name, value in zip(tp.key_atom_names, found[1:], strict=True))
            raise MirrorError(f"the natural key named for {table!r} in the overrides ({', '.join(tp.natural_key)}) is "
                              f"not unique in the {side}: {found[0]} rows have {values}; name columns that identify "
                              f"exactly one row")


def build_plan(schema: SchemaInfo, *, tables: Iterable[str] | None = None,
               overrides: NaturalKeyOverrides | None = None, references: Iterable[Reference] = (),
               available_columns: Mapping[str, Collection[str]] | None = None) -> LoadPlan:
    """Plan loading ``tables`` (all of the schema by default) into ``schema``.

    ``available_columns`` restricts plain columns to those the data source has (a source
    database or archive without a newer target column leaves it to its default). Every problem
    that makes the load impossible (missing table, table without natural key, a natural key that
    would have to be late-seeded) is raised here, before any row is read.
    """
    references = tuple(references)
    names = list(dict.fromkeys(tables)) if tables is not None else sorted(schema.tables)
    missing = [name for name in names if name not in schema.tables]
    if missing:
        raise MirrorError(f"schema {schema.schema!r} has no table {', '.join(map(repr, missing))}")
    for name in overrides or {}:
        if name not in schema.tables:
            raise MirrorError(f"overrides name table {name!r}, which schema {schema.schema!r} does not have")
    keys = KeyModel(schema, overrides=overrides, references=references)

    problems: list[str] = []
    natural_keys: dict[str, tuple[str, ...]] = {}
    for name in names:
        try:
            natural_keys[name] = keys.natural_key(name)[0]
        except MirrorError as exc:
            problems.append(str(exc))
    if problems:
        raise MirrorError("\n".join(problems))

    order: LoadOrder = load_order(names, dependency_edges(schema, tables=names, extra_references=references,
                                                          natural_keys=natural_keys))
    for edge in order.deferred:
        if edge.in_natural_key:
            raise MirrorError(
                f"{edge.table}.{','.join(edge.columns)} -> {edge.ref_table} is part of the natural key of "
                f"{edge.table!r} but lies on a reference cycle, so it would have to be filled in late and rows "
                f"could not be matched; name another natural key in the overrides file ({OVERRIDE_FORMAT_HELP})")

    warnings: list[str] = []
    plans = {name: _table_plan(schema, keys=keys, order=order, table=name, available_columns=available_columns,
                               warnings=warnings) for name in order.tables}
    return LoadPlan(schema=schema.schema, order=order.tables, tables=plans, deferred=order.deferred, keys=keys,
                    warnings=tuple(warnings))


def _table_plan(schema: SchemaInfo, *, keys: KeyModel, order: LoadOrder, table: str,
                available_columns: Mapping[str, Collection[str]] | None, warnings: list[str]) -> TablePlan:
    info = schema.table(table)
    available = set(available_columns[table]) if available_columns and table in available_columns else None
    surrogate = set(keys.surrogate_key(table))
    natural_key, origin = keys.natural_key(table)
    refs = keys.references_of(table)
    ref_columns = {c for spec in refs for c in spec.columns}

    for fk in info.foreign_keys:
        if fk.ref_schema != schema.schema:
            warnings.append(f"{table}.{','.join(fk.columns)} references {fk.ref_schema}.{fk.ref_table} outside "
                            f"schema {schema.schema!r}: its values are copied as they are")

    plain: list[ColumnInfo] = []
    for column in info.columns:
        if column.is_computed or column.name in surrogate or column.name in ref_columns:
            continue
        if available is not None and column.name not in available:
            if column.name in natural_key:
                raise MirrorError(f"the data for {table!r} lacks natural-key column {column.name!r}")
            warnings.append(f"{table}.{column.name} is not in the data; the target default applies")
            continue
        plain.append(column)

    layout = [LayoutColumn(column.name, column.data_type) for column in plain]
    groups: list[RefGroup] = []
    for spec in refs:
        if available is not None and not set(spec.columns) <= available:
            if set(spec.columns) & set(natural_key):
                raise MirrorError(f"the data for {table!r} lacks natural-key column(s) {spec.label}")
            warnings.append(f"{table}.{spec.label} is not in the data; the target default applies")
            continue
        if any(info.column(c).is_computed for c in spec.columns):
            continue
        try:
            atoms = keys.key_atoms(spec.ref_table)
        except MirrorError as exc:
            raise MirrorError(f"{table}.{spec.label} references {spec.ref_table!r}, whose rows cannot be "
                              f"identified: {exc}") from None
        has_flag = not spec.declared or any(atom.nullable for atom in atoms)
        flag_slot = len(layout) if has_flag else None
        if has_flag:
            layout.append(LayoutColumn(f"{spec.label}->{spec.ref_table}:present", "boolean"))
        atom_slots = tuple(range(len(layout), len(layout) + len(atoms)))
        layout.extend(LayoutColumn(f"{spec.label}->{spec.ref_table}.{atom.name}", atom.data_type) for atom in atoms)
        groups.append(RefGroup(
            spec=spec, column_types=tuple(info.column(c).data_type for c in spec.columns), atoms=atoms,
            has_flag=has_flag, not_null=any(not info.column(c).nullable for c in spec.columns),
            deferred=order.is_deferred(table, spec.name), flag_slot=flag_slot, atom_slots=atom_slots))

    key_slots: list[int] = []
    key_names: list[str] = []
    for kind, value in keys.key_elements(table):
        if kind == "column":
            slot = next(i for i, column in enumerate(plain) if column.name == value)
            key_slots.append(slot)
            key_names.append(value)
        else:
            group = next(g for g in groups if g.spec.name == value.name)
            key_slots.extend(group.atom_slots)
            key_names.extend(layout[slot].name for slot in group.atom_slots)

    row_key = info.primary_key or natural_key
    return TablePlan(
        table=table, plain=tuple(plain), groups=tuple(groups), natural_key=natural_key, natural_key_origin=origin,
        row_key=row_key, row_key_types=tuple(info.column(c).data_type for c in row_key), layout=tuple(layout),
        key_slots=tuple(key_slots), key_atom_names=tuple(key_names))
