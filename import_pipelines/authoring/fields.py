"""Which source column fills which target field: the scaffold's matcher, by name, values and type.

:func:`suggest` is the one place the scaffold asks. Two readings of each (column, field) pair,
the better one counting, times whether the types meet without loss:

- by name: normalised names (words, singular; a target ``source_created_at`` keeps the source's
  ``created_at``) and a short list of synonyms help-desk and CRM schemas use for the same thing;
- by the field matcher of files (:mod:`import_pipelines.mapping`): the multilingual synonyms,
  the exporting tools' prefixes, and the column's sample values (emails, phones, dates...), with
  its declared type; OpenAI answers instead of the offline heuristic when a key is configured.

Anything with the signature of :data:`Suggest` can take its place, passed to
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
    """For each target field the best column by name, values and type.

    Confidence is the better of the name score and the field matcher's, times the type fit;
    below 0.5 a field is left out. Among equal confidences the earlier column wins, so callers
    list the columns they prefer first.
    """
    matched = _matcher_scores(columns, samples, target_fields)
    chosen = []
    for target in target_fields:
        best: tuple[SourceColumn, float] | None = None
        for index, column in enumerate(columns):
            by_name = name_score(column.name, target.name)
            score = max(by_name, matched.get((index, target.name), 0.0)) * type_fit(column.data_type, target.data_type)
            if score >= 0.5 and (best is None or score > best[1]):
                best = (column, score)
        if best is not None:
            chosen.append((best[0], target, round(best[1], 3)))
    return chosen


def _matcher_scores(columns: Sequence[SourceColumn], samples: Mapping[str, Sequence[str]],
                    target_fields: Sequence[TargetField]) -> dict[tuple[int, str], float]:
    """The file field matcher's confidence for (column position, field): its choice and candidates."""
    from import_pipelines.mapping.model import CUSTOM
    from import_pipelines.mapping.model import TargetField as MatcherField
    from import_pipelines.mapping.suggest import AISettings, suggest as suggest_mapping

    if not columns or not target_fields:
        return {}
    fields = [MatcherField(name=t.name, description=t.name.replace("_", " "), kind=_kind(t),
                           synonyms=tuple(sorted(next((g for g in SYNONYMS if t.name in g), frozenset()) - {t.name})))
              for t in target_fields]
    headers = [c.name for c in columns]
    depth = max((len(samples.get(c.ref, ())) for c in columns), default=0)
    rows = [[(samples.get(c.ref) or [None] * depth)[i] if i < len(samples.get(c.ref) or ()) else None
             for c in columns] for i in range(depth)]
    import os

    ai = AISettings() if os.environ.get(AISettings().api_key_env) else None
    suggestion = suggest_mapping(headers, rows, fields, column_types={c.name: c.data_type for c in columns}, ai=ai)
    scores: dict[tuple[int, str], float] = {}
    for index, column in enumerate(suggestion.columns):
        for field, confidence in [(column.field, column.confidence),
                                  *((c.field, c.confidence) for c in column.candidates)]:
            if field not in (None, CUSTOM):
                scores[(index, field)] = max(scores.get((index, field), 0.0), confidence)
    return scores


def _kind(target: TargetField) -> str:
    """What a target column's values look like, for the field matcher's value sniffing."""
    name, family_name = target.name, family(target.data_type)
    for needle, kind in (("email", "email"), ("phone", "phone"), ("mobile", "phone"), ("website", "url"),
                         ("url", "url"), ("country", "country"), ("city", "city"), ("zip", "postcode"),
                         ("postcode", "postcode"), ("state", "state"), ("note", "notes"), ("tag", "tags")):
        if needle in name:
            return kind
    if name in ("first_name", "last_name", "display_name", "full_name", "name"):
        return "name"
    if name == "external_id" or name.endswith("_id"):
        return "id"
    return {"timestamp": "date", "integer": "number", "numeric": "number", "boolean": "boolean"}.get(
        family_name or "", "text")
