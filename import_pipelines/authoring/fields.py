"""Which source column fills which target field: the scaffold's matcher, by name and type.

:func:`suggest` is the one place the scaffold asks. It reads normalised names (words, singular;
a target ``source_created_at`` keeps the source's ``created_at``), a short list of synonyms
help-desk and CRM schemas use for the same thing, and whether the types meet without loss. A
heuristic or AI matcher that also reads sample values can take its place: anything with the
signature of :data:`Suggest` is passed to
:func:`import_pipelines.authoring.scaffold.scaffold_template` as ``suggest=``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from import_pipelines.authoring.names import normalised, words


@dataclass(frozen=True)
class SourceColumn:
    """A column the template can read: ``ref`` is ``alias.column``."""

    ref: str
    name: str
    data_type: str


@dataclass(frozen=True)
class TargetField:
    """A target column to fill."""

    name: str
    data_type: str
    required: bool = False


Suggest = Callable[[Sequence[SourceColumn], Mapping[str, Sequence[str]], Sequence[TargetField]],
                   list[tuple[SourceColumn, TargetField, float]]]
"""``suggest(columns, samples, target_fields) -> [(column, field, confidence)]``; ``samples`` are
keyed by ``column.ref``. At most one column per field; fields nothing fits are left out."""

EXACT = 1.0
KEEPS_SOURCE = 0.9  # target source_x <- source x
SYNONYM = 0.7

# groups of names that mean the same thing in help-desk / CRM schemas
SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(group) for group in (
    {"opened_at", "created_at", "created", "created_on", "opened", "submitted_at"},
    {"closed_at", "closed", "resolved_at", "closed_on"},
    {"display_name", "full_name", "name"},
    {"body", "content", "text", "message", "description"},
    {"subject", "title", "topic"},
    {"job_title", "position", "role_title"},
    {"phone", "phone_number", "telephone", "mobile", "tel"},
    {"email", "email_address", "mail"},
    {"first_name", "firstname", "given_name", "forename"},
    {"last_name", "lastname", "surname", "family_name"},
    {"number", "ticket_number", "no"},
    {"logged_at", "created_at", "date", "spent_at"},
    {"minutes", "time_spent", "duration"},
))

_FAMILIES = {
    "text": ("text", "character", "varchar", "citext", "name"),
    "integer": ("smallint", "integer", "bigint"),
    "numeric": ("numeric", "decimal", "real", "double precision"),
    "timestamp": ("timestamp", "date"),
    "boolean": ("boolean",),
    "json": ("json", "jsonb"),
    "uuid": ("uuid",),
}
# how well a value of one family fills a field of another (missing pairs: not at all)
_TYPE_FIT = {("text", "text"): 1.0, ("integer", "integer"): 1.0, ("numeric", "numeric"): 1.0,
             ("timestamp", "timestamp"): 1.0, ("boolean", "boolean"): 1.0, ("json", "json"): 1.0,
             ("uuid", "uuid"): 1.0, ("integer", "numeric"): 1.0, ("numeric", "integer"): 0.8,
             ("integer", "text"): 0.9, ("numeric", "text"): 0.9, ("timestamp", "text"): 0.8, ("uuid", "text"): 0.9,
             ("json", "text"): 0.8, ("text", "json"): 0.8, ("boolean", "text"): 0.7, ("text", "integer"): 0.6,
             ("text", "timestamp"): 0.6, ("text", "numeric"): 0.6, ("integer", "boolean"): 0.6,
             ("text", "uuid"): 0.6, ("text", "boolean"): 0.5}


def family(data_type: str) -> str | None:
    """``character varying(255)`` -> ``text``; ``timestamp(0) with time zone`` -> ``timestamp``."""
    for name, prefixes in _FAMILIES.items():
        if data_type.startswith(prefixes):
            return name
    return None


def type_fit(source_type: str, target_type: str) -> float:
    """How well values of ``source_type`` fill a column of ``target_type`` (0: they do not)."""
    pair = (family(source_type), family(target_type))
    if None in pair:
        return 0.5 if source_type == target_type or pair[0] == "text" else 0.0
    return _TYPE_FIT.get(pair, 0.0)


def name_score(column: str, field: str) -> float:
    """How surely a column called ``column`` fills a field called ``field``, by name alone."""
    a, b = normalised(column), normalised(field)
    if a == b:
        return EXACT
    if b.startswith("source_") and normalised(b.removeprefix("source_")) == a:
        return KEEPS_SOURCE
    plain_a, plain_b = "_".join(words(column)), "_".join(words(field))
    if any({plain_a, plain_b} <= group or {a, b} <= group for group in SYNONYMS):
        return SYNONYM
    return 0.0


def suggest(columns: Sequence[SourceColumn], samples: Mapping[str, Sequence[str]],
            target_fields: Sequence[TargetField]) -> list[tuple[SourceColumn, TargetField, float]]:
    """For each target field the best column by name and type; ``samples`` are not read here.

    Confidence is the name score times the type fit; below 0.5 a field is left out. Among equal
    confidences the earlier column wins, so callers list the columns they prefer first.
    """
    chosen = []
    for target in target_fields:
        best: tuple[SourceColumn, float] | None = None
        for column in columns:
            score = name_score(column.name, target.name) * type_fit(column.data_type, target.data_type)
            if score >= 0.5 and (best is None or score > best[1]):
                best = (column, score)
        if best is not None:
            chosen.append((best[0], target, round(best[1], 3)))
    return chosen
