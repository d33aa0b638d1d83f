"""The template model: one pydantic model per YAML construct, validated before anything runs.

A template describes an import once: its entities, each entity's source query (base table,
joins, fields, filters), the target table, the mode, the dedupe rule and the references to
other entities. Profiles (Dagster component instances) pick a template and add connections.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from import_pipelines.dedupe.matching import DedupeRule

Mode = Literal["create_only", "update_only", "upsert", "create_new"]
MODES: tuple[Mode, ...] = ("create_only", "update_only", "upsert", "create_new")
JoinType = Literal["inner", "left", "right", "full"]
FilterOp = Literal["=", "!=", "<", "<=", ">", ">=", "like", "ilike", "not_like", "not_ilike", "regex", "not_regex",
                   "in", "not_in", "is_null", "is_not_null", "between"]
OnMissing = Literal["fail", "set_null"]
# what extract does with text that is not valid UTF-8 (a SQL_ASCII source): fail the row, naming
# the field, or load it with each invalid byte replaced by U+FFFD
OnInvalidText = Literal["fail_row", "replace"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLUMN_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_$]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_column_ref(value: str) -> str:
    if not _COLUMN_REF.match(value):
        raise ValueError(f"column reference {value!r} must be written alias.column")
    return value


ColumnRef = Annotated[str, Field(description="a source column as alias.column")]


# the server's own schemas: a template reads the application's tables, never the catalogue
_SYSTEM_SCHEMA = re.compile(r"^(pg_.*|information_schema)$", re.IGNORECASE)


class TableRef(_Strict):
    """The base table of a query: ``{table: customers, alias: c, schema: public}``."""

    table: str
    alias: str
    schema_: str | None = Field(default=None, alias="schema")

    @field_validator("alias")
    @classmethod
    def _alias_is_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"alias {value!r} must be a plain identifier")
        if _SYSTEM_SCHEMA.match(value):
            raise ValueError(f"alias {value!r} is the name of a system schema; choose another")
        return value

    @field_validator("schema_")
    @classmethod
    def _not_a_system_schema(cls, value: str | None) -> str | None:
        if value is not None and _SYSTEM_SCHEMA.match(value):
            raise ValueError(f"schema {value!r} is the server's catalogue, not application data")
        return value

    @field_validator("table")
    @classmethod
    def _not_a_catalogue_table(cls, value: str) -> str:
        # an unqualified name is looked up in pg_catalog first, so pg_authid would be the catalogue's
        if value.lower().startswith("pg_"):
            raise ValueError(f"table {value!r}: names starting with pg_ resolve to the server's catalogue")
        return value


class FirstRow(_Strict):
    """Keep only the first joined row per parent, by ``order_by`` (SQL expressions, checked)."""

    order_by: list[str] = Field(min_length=1)


class Collect(_Strict):
    """Gather ``columns`` of every joined row per parent into arrays, ordered by ``order_by``.

    The joined alias then offers each listed column as an array (all of a customer's emails),
    so a parent never fans out into several rows.
    """

    columns: list[str] = Field(min_length=1)
    order_by: list[str] = Field(default_factory=list)

    @field_validator("columns")
    @classmethod
    def _plain_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"collect column {name!r} must be a plain column name (no alias)")
        return value


class Join(TableRef):
    """A join: ``on`` maps joined columns to parent columns; ``condition`` is one extra SQL predicate.

    With ``first`` only the first matching row per parent is kept (the preferred email, the first
    customer thread); with ``collect`` the listed columns of all matching rows become arrays. Either
    way a parent never fans out into several rows.
    """

    type: JoinType = "left"
    on: dict[str, str] = Field(min_length=1)
    condition: str | None = None
    first: FirstRow | None = None
    collect: Collect | None = None

    @model_validator(mode="after")
    def _one_way_per_parent(self) -> Join:
        if self.first is not None and self.collect is not None:
            raise ValueError("a join takes either first or collect, not both")
        if self.collect is not None and self.type not in ("left", "inner"):
            raise ValueError(f"a collect join is a left or inner join, not {self.type}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @field_validator("on")
    @classmethod
    def _on_refs(cls, value: dict[str, str]) -> dict[str, str]:
        for left, right in value.items():
            _check_column_ref(left)
            _check_column_ref(right)
        return value


Transform = Literal["trim", "upper", "lower", "nullif_empty", "seconds_to_minutes", "to_text", "to_integer",
                    "digits_only"]


class DateFormat(_Strict):
    """Format a date or timestamp with a PostgreSQL ``to_char`` pattern."""

    date_format: str


class PhoneNumber(_Strict):
    """A phone number as digits with its country calling code: ``{phone_country: "1"}``.

    The same rule duplicate detection applies (:func:`import_pipelines.dedupe.normalize.normalize_phone`):
    an extension dropped, ``+`` or ``00`` marks a number that carries its code, a longer number
    starting with the code keeps it, any other gets the code after its trunk ``0``s. Empty -> NULL.
    """

    phone_country: str = Field(pattern=r"^[1-9][0-9]{0,2}$")


class JsonValue(_Strict):
    """A value taken from JSON text: ``{column: c.phones, path: [0, value]}``.

    A ``"*"`` in the path takes every element of an array there, and the value becomes a JSON
    array of what was found: ``[*, value]`` is every phone number of the list.
    """

    column: str
    path: list[str | int] = Field(min_length=1)

    _col = field_validator("column")(classmethod(lambda cls, v: _check_column_ref(v)))

    @field_validator("path")
    @classmethod
    def _positions_from_the_start(cls, value: list[str | int]) -> list[str | int]:
        if "*" in value and any(isinstance(step, int) and step < 0 for step in value):
            raise ValueError("a path with '*' counts array positions from 0; a negative position is not one")
        return value


class CaseMap(_Strict):
    """Map the values of one column: ``{column: cv.status, map: {1: open, 2: pending}, default: open}``."""

    column: str
    map: dict[str | int, str | int | None] = Field(min_length=1)
    default: str | int | None = None

    _col = field_validator("column")(classmethod(lambda cls, v: _check_column_ref(v)))


class FieldSpec(_Strict):
    """How one target field is produced. Exactly one of the sources is given; transforms apply in order.

    - ``column``: a direct source column (``alias.column``)
    - ``concat``: columns joined by ``separator``, missing parts skipped, result trimmed, empty -> NULL
    - ``case``: a value map over one column
    - ``json``: a value from JSON text
    - ``expression``: one raw SQL scalar expression, parsed and checked
    - ``value``: a constant
    - ``coalesce``: the first non-empty of several field specs
    """

    column: str | None = None
    concat: list[str] | None = None
    separator: str = " "
    case: CaseMap | None = None
    json_: JsonValue | None = Field(default=None, alias="json")
    expression: str | None = None
    value: str | int | float | bool | None = None
    coalesce: list[FieldSpec] | None = None
    transform: list[Transform | DateFormat | PhoneNumber] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # "c.first_name" is shorthand for {column: c.first_name}
        if isinstance(data, str):
            return {"column": data}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [name for name in ("column", "concat", "case", "json_", "expression", "coalesce")
                 if getattr(self, name) is not None]
        if "value" in self.model_fields_set:
            given.append("value")
        if len(given) != 1:
            raise ValueError("a field needs exactly one of column, concat, case, json, expression, value, coalesce"
                             f" (got {', '.join(g.rstrip('_') for g in given) or 'none'})")
        if self.column is not None:
            _check_column_ref(self.column)
        for ref in self.concat or []:
            _check_column_ref(ref)
        return self


class Filter(_Strict):
    """One WHERE predicate; values become literals quoted by the connection, never SQL text."""

    column: str
    op: FilterOp
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        _check_column_ref(self.column)
        if self.op in ("is_null", "is_not_null"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"{self.op} needs a non-empty list value")
        elif self.op == "between":
            if not isinstance(self.value, list) or len(self.value) != 2:
                raise ValueError("between needs a list of two values [low, high]")
        elif self.value is None or isinstance(self.value, (list, dict)):
            raise ValueError(f"{self.op} needs one scalar value")
        return self


class Query(_Strict):
    """A declarative source query that compiles to one SELECT."""

    base: TableRef
    distinct: bool = False
    joins: list[Join] = Field(default_factory=list)
    filters: list[Filter] = Field(default_factory=list)
    where: list[str] = Field(default_factory=list, description="SQL predicates (checked like expressions), ANDed"
                                                               " with the filters")
    order_by: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _aliases_unique(self) -> Query:
        seen: set[str] = set()
        for alias in [self.base.alias, *(j.alias for j in self.joins)]:
            if alias in seen:
                raise ValueError(f"alias {alias!r} is used twice")
            seen.add(alias)
        return self

    @property
    def aliases(self) -> set[str]:
        """The table aliases this query defines."""
        return {self.base.alias, *(j.alias for j in self.joins)}


class Reference(_Strict):
    """A target column that points at another entity's target row, found by natural key.

    ``field`` is the mapped field that carries the referenced record's source identifier.
    """

    entity: str
    field: str
    on_missing: OnMissing = "fail"
    required: bool = False


InputKind = Literal["text", "name", "email", "phone", "date", "datetime", "number", "boolean", "url", "address",
                    "city", "state", "postcode", "country", "notes", "tags", "id", "list", "json"]
RECORD_ALIAS = "r"  # fields of a records entity read its inputs as r.<input>
RECORD_COLUMNS = ("_custom", "_source_ref", "_line")  # what else r holds: custom columns (jsonb), provenance


class RecordInput(_Strict):
    """A value a record source may carry; the field mapping finds which column holds it.

    ``from`` fixes the column (a header, an Airtable field name) or a path into nested JSON
    (``[address, city]``); without it, the column is found by the field mapping (a saved preset,
    the AI, or the heuristic) from the description, the kind, the synonyms and the sample values.
    """

    description: str = ""
    kind: InputKind = "text"
    from_: str | list[str | int] | None = Field(default=None, alias="from")
    synonyms: list[str] = Field(default_factory=list, description="header names (any language) that mean this input")


class RecordRule(_Strict):
    """A record the entity must not load: ``{field: email, error: invalid_email, when: <SQL over r>, message: ...}``.

    ``when`` is a predicate over the raw inputs (``r.<input>``, checked like an expression); a
    record it holds for fails with ``<field>: '<value>' <message>`` (the input's value cut to 40
    characters), or ``<field>: <message>`` when ``show_value`` is false, and is recorded with
    ``error`` as its error type. The rest of the source loads.
    """

    field: str = Field(description="the input the rule is about: named in the message, its value shown")
    error: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the error type recorded (invalid_email)")
    when: str = Field(description="SQL predicate over r: true for a record that must not load")
    message: str = Field(min_length=1)
    show_value: bool = True


class Records(_Strict):
    """The entity reads records (a file, a sheet, pushed JSON, Airtable, an HTTP API), not a query.

    ``inputs`` are the values a source may provide (what its columns are mapped onto); the
    entity's fields are SQL over them, as ``r.<input>`` (transforms, concat, coalesce, checked
    expressions), so every kind of source is mapped by the same compiler. With ``custom``, a
    column no input fits but worth keeping lands in ``r._custom`` (a jsonb object).

    ``source`` is merged over the profile's source for this entity (``{table: Notices}``: another
    table of the same Airtable base); secrets stay in the profile, named by their variables.
    ``incremental`` reads only what changed since the last committed run (the sync cursor), less
    the source's look-back window, where the source can be asked for that (Airtable's
    ``modified_field``, an API's ``since_param``); a full-refresh run reads everything.

    ``from_entity`` derives this entity from another entity's records instead: no read of its
    own, no inputs of its own; its fields are SQL over that entity's inputs, computed from the
    same records the run read once (the offender named on each case, from the cases' read).
    ``where`` keeps only the records an entity is about (SQL predicates over ``r``, checked like
    expressions): a case that names no offender yields no offender record. ``reject`` fails the
    records a rule holds for (an invalid email), each with its error type; the others load.
    """

    inputs: dict[str, RecordInput] = Field(default_factory=dict)
    custom: bool = False
    source: dict[str, Any] = Field(default_factory=dict, description="merged over the profile's source")
    incremental: bool = False
    from_entity: str | None = Field(default=None, description="derive the entity from this entity's records")
    where: list[str] = Field(default_factory=list, description="SQL predicates over r, ANDed: the records kept")
    reject: list[RecordRule] = Field(default_factory=list, description="records that fail instead of loading")

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, RecordInput]) -> dict[str, RecordInput]:
        for name in value:
            if not _NAME.match(name) or name.startswith("_"):
                raise ValueError(f"input name {name!r} must be a plain identifier not starting with '_'")
        return value

    @field_validator("source")
    @classmethod
    def _no_kind(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "kind" in value:
            raise ValueError("source: the kind of source is the profile's; an entity only narrows it (table, view,"
                             " formula, fields, modified_field, ...)")
        return value

    @model_validator(mode="after")
    def _own_read_or_derived(self) -> Records:
        if self.from_entity is None:
            if not self.inputs:
                raise ValueError("records need inputs (the values a source provides), or from_entity to derive"
                                 " the entity from another entity's records")
            return self
        given = [name for name in ("inputs", "custom", "source", "incremental") if getattr(self, name)]
        if given:
            raise ValueError(f"records derived from_entity {self.from_entity!r} are that entity's read: they take"
                             f" no {', '.join(given)} of their own")
        return self


SourceDeleteAction = Literal["leave", "deactivate", "delete"]


class SourceDelete(_Strict):
    """What a sync does with target rows whose source record disappeared.

    Found only from a complete read of the source (never an incremental or filtered one), and
    only for rows this source created (its ``source_system`` in their natural key) that no
    record still seen maps to. ``deactivate`` sets ``column`` to ``value``; ``delete`` deletes
    the row. Each is audited with the row's before-image. When more than ``max_share`` of the
    rows the stream knows (and more than 10) disappear at once, nothing is done and the step
    fails: an emptied or mis-filtered source must not empty the target.
    """

    action: SourceDeleteAction = "leave"
    column: str | None = Field(default=None, description="deactivate: the column marking a row inactive")
    value: str | int | float | bool | None = False
    max_share: float = Field(default=0.5, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # on_source_delete: delete is short for {action: delete}
        return {"action": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _column_for_deactivate(self) -> SourceDelete:
        if self.action == "deactivate" and not self.column:
            raise ValueError("deactivate needs the column that marks a row inactive (column: active, value: false)")
        return self


# expectations the validate step runs as set-based SQL over the staging table; any other
# ``expect_*`` name is a great-expectations 1.x expectation, run in chunks
SqlExpect = Literal["not_null", "email", "in_set", "between", "date_between", "unique", "matches"]
SQL_EXPECTS: tuple[str, ...] = ("not_null", "email", "in_set", "between", "date_between", "unique", "matches")
# a date bound: an ISO date or timestamp, or now/today plus or minus whole units
RELATIVE_DATE = re.compile(r"^\s*(now|today)\s*(?:([+-])\s*(\d+)\s*(second|minute|hour|day|week|month|year)s?)?\s*$",
                           re.IGNORECASE)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}(:?\d{2})?|Z)?)?$")
# the kwargs of a great-expectations expectation that name columns
GX_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")


class Expectation(_Strict):
    """One rule every staged row of an entity must pass before load (``validate:`` of an entity).

    Built in, run as SQL over the staging table: ``not_null`` (``fields``), ``email``, ``in_set``
    (``values``), ``between`` (numbers, ``min`` and/or ``max``), ``date_between`` (``min``/``max``:
    an ISO date or ``now``/``today`` +- N units), ``unique`` (``fields``, within the batch),
    ``matches`` (``pattern``, a PostgreSQL regular expression); each takes ``field`` or
    ``fields``. Any other ``expect_...`` name is a great-expectations 1.x expectation with its
    ``kwargs`` (``{column: email, min_value: 3}``); it must judge rows (a column map
    expectation), since rows are validated in chunks. A row failing one is recorded as failed
    with the expectation's name and the field, and is not loaded.
    """

    expect: str
    field: str | None = None
    fields: list[str] | None = Field(default=None, min_length=1)
    values: list[str | int | float | bool] | None = Field(default=None, min_length=1)
    min: str | int | float | None = None
    max: str | int | float | None = None
    pattern: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params_fit(self) -> Expectation:
        if self.expect in SQL_EXPECTS:
            if self.kwargs:
                raise ValueError(f"{self.expect} is built in and takes no kwargs (kwargs are for great-expectations"
                                 " expectations, expect_...)")
            if (self.field is None) == (self.fields is None):
                raise ValueError(f"{self.expect} needs exactly one of field, fields")
            needs = {"in_set": ("values",), "matches": ("pattern",)}.get(self.expect, ())
            for name in needs:
                if getattr(self, name) is None:
                    raise ValueError(f"{self.expect} needs {name}")
            allowed = {"in_set": {"values"}, "matches": {"pattern"}, "between": {"min", "max"},
                       "date_between": {"min", "max"}}.get(self.expect, set())
            extra = [n for n in ("values", "min", "max", "pattern") if getattr(self, n) is not None and n not in allowed]
            if extra:
                raise ValueError(f"{self.expect} takes no {', '.join(extra)}")
            if self.expect in ("between", "date_between") and self.min is None and self.max is None:
                raise ValueError(f"{self.expect} needs min, max or both")
            if self.expect == "between":
                for name in ("min", "max"):
                    value = getattr(self, name)
                    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                        raise ValueError(f"between: {name} must be a number (date_between compares dates)")
            if self.expect == "date_between":
                for name in ("min", "max"):
                    value = getattr(self, name)
                    if value is not None and not (isinstance(value, str) and (
                            _ISO_DATE.match(value) or RELATIVE_DATE.match(value))):
                        raise ValueError(f"date_between: {name} {value!r} must be an ISO date (1990-01-01) or"
                                         " now/today plus or minus whole units ('now + 1 day', 'today - 10 years')")
            if self.expect == "matches":
                try:
                    re.compile(self.pattern or "")
                except re.error as error:
                    raise ValueError(f"matches: pattern {self.pattern!r} is not a regular expression ({error})") from None
        elif self.expect.startswith("expect_") and _NAME.match(self.expect):
            given = [n for n in ("field", "fields", "values", "min", "max", "pattern") if getattr(self, n) is not None]
            if given:
                raise ValueError(f"{self.expect} is a great-expectations expectation: give its arguments in kwargs"
                                 f" ({{column: ..., ...}}), not {', '.join(given)}")
            if not any(k in self.kwargs for k in GX_COLUMN_KWARGS):
                raise ValueError(f"{self.expect}: kwargs must name the column(s) it checks"
                                 f" ({', '.join(GX_COLUMN_KWARGS)})")
        else:
            raise ValueError(f"unknown expectation {self.expect!r}: built in are {', '.join(SQL_EXPECTS)}; any other"
                             " is a great-expectations expectation name (expect_...)")
        return self

    @property
    def columns(self) -> list[str]:
        """The fields the expectation reads."""
        if self.expect in SQL_EXPECTS:
            return [self.field] if self.field is not None else list(self.fields or [])
        out: list[str] = []
        for key in GX_COLUMN_KWARGS:
            value = self.kwargs.get(key)
            out += [str(v) for v in value] if isinstance(value, list) else [str(value)] if value is not None else []
        return out


class Entity(_Strict):
    """One stream of a template: one Dagster asset, one target table."""

    description: str | None = None
    target: str
    source_id: str = Field(description="the field that identifies the source record (the natural key's external id)")
    mode: Mode | None = None
    query: Query | None = Field(default=None, description="a PostgreSQL source: the SELECT the entity compiles to")
    records: Records | None = Field(default=None, description="a record source: files, sheets, pushes, APIs")
    fields: dict[str, FieldSpec] = Field(min_length=1)
    references: dict[str, Reference] = Field(default_factory=dict)
    match_fields: dict[str, FieldSpec] = Field(
        default_factory=dict, description="fields staged for duplicate detection only, never written (lists of"
                                          " every email or phone)")
    dedupe: DedupeRule | None = Field(default=None, description="duplicate detection beyond the natural key")
    survivor_updated: str | None = Field(default=None, description="field whose latest value wins a duplicate cluster")
    on_invalid_text: OnInvalidText | None = Field(default=None, description="overrides the template's on_invalid_text")
    max_error_rate: float | None = Field(default=None, ge=0, le=1, description="overrides the template's"
                                         " max_error_rate for this entity")
    on_source_delete: SourceDelete | None = Field(default=None, description="a records entity: what becomes of target"
                                                  " rows whose source record disappeared (default: leave them)")
    validate_: list[Expectation] = Field(default_factory=list, alias="validate", description=(
        "rules the staged rows must pass before load (or a suite file's path, read by the loader)"))
    notes: list[str] = Field(default_factory=list)

    @property
    def aliases(self) -> set[str]:
        """The table aliases the fields may use: the query's, or ``r`` for a records entity."""
        return self.query.aliases if self.query is not None else {RECORD_ALIAS}

    @property
    def source_label(self) -> str:
        """What the audit names as the source: the base table, or ``records``."""
        return self.query.base.table if self.query is not None else "records"

    @model_validator(mode="after")
    def _consistent(self) -> Entity:
        if (self.query is None) == (self.records is None):
            raise ValueError("an entity reads either a query (a PostgreSQL source) or records (files, sheets,"
                             " pushes, APIs): give exactly one of query, records")
        if self.source_id not in self.fields:
            raise ValueError(f"source_id {self.source_id!r} is not one of the fields")
        clash = sorted(set(self.match_fields) & set(self.fields))
        if clash:
            raise ValueError(f"match_fields {', '.join(clash)} are also fields; a match field is staged, never written")
        if self.dedupe is not None:
            unknown = [f for f in self.dedupe.columns if f not in self.fields]
            if unknown:
                raise ValueError(f"dedupe uses {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not"
                                 " among the fields")
            lists = [f for f in self.dedupe.list_columns if f not in self.match_fields]
            if lists:
                raise ValueError(f"dedupe all_values uses {', '.join(lists)}, which {'is' if len(lists) == 1 else 'are'}"
                                 " not among the match_fields")
        if self.on_source_delete is not None and self.on_source_delete.action != "leave" and self.records is None:
            raise ValueError("on_source_delete needs a records entity: disappeared records are found from a complete"
                             " read of a record source")
        if self.survivor_updated is not None and self.survivor_updated not in self.fields:
            raise ValueError(f"survivor_updated {self.survivor_updated!r} is not one of the fields")
        for column, ref in self.references.items():
            if ref.field not in self.fields:
                raise ValueError(f"reference {column!r} uses field {ref.field!r}, which is not one of the fields")
            if column in self.fields:
                raise ValueError(f"reference column {column!r} is also a field; a target column is written once")
        return self

    @property
    def staged_fields(self) -> dict[str, FieldSpec]:
        """What extract stages: the written fields, then the match fields."""
        return {**self.fields, **self.match_fields}


class NaturalKey(_Strict):
    """The target tables' natural key: a source-system column and an external-id column."""

    system_column: str = "source_system"
    id_column: str = "external_id"


class Template(_Strict):
    """A reusable import description (see ``templates/*.yaml``)."""

    name: str
    description: str = ""
    version: int = 1
    source_system: str
    mode: Mode = "upsert"
    batch_rows: int = Field(default=100_000, gt=0)
    on_invalid_text: OnInvalidText = Field(default="fail_row", description="source text that is not valid UTF-8:"
                                           " fail that row naming the field, or replace the bytes with U+FFFD")
    max_error_rate: float = Field(default=0.1, ge=0, le=1, description="the error budget: a load stops when more"
                                  " than this share of an entity's processed records failed")
    error_budget_floor: int = Field(default=100, ge=0, description="records an entity's load processes before its"
                                    " error budget is judged (a few early failures do not stop a run)")
    target_schema: str = "public"
    natural_key: NaturalKey = Field(default_factory=NaturalKey)
    entities: dict[str, Entity] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_known(self) -> Template:
        for name, entity in self.entities.items():
            if not _NAME.match(name):
                raise ValueError(f"entity name {name!r} must be a plain identifier")
        return self

    def error_rate_budget(self, name: str) -> float:
        """The share of failed records entity ``name`` may have before its load stops."""
        rate = self.entities[name].max_error_rate
        return self.max_error_rate if rate is None else rate

    def read_owner(self, name: str) -> str:
        """The entity whose read feeds records entity ``name``: itself, or the one it is derived from."""
        records = self.entities[name].records
        return records.from_entity if records is not None and records.from_entity else name

    def record_inputs(self, name: str) -> dict[str, RecordInput]:
        """The inputs a records entity's fields read: its own, or those of the entity it is derived from."""
        records = self.entities[self.read_owner(name)].records
        return dict(records.inputs) if records is not None else {}

    def read_consumers(self, owner: str) -> list[str]:
        """The entities fed by ``owner``'s read: ``owner`` and every entity derived from it, in template order."""
        return [name for name, entity in self.entities.items()
                if entity.records is not None and self.read_owner(name) == owner]
