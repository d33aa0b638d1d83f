"""The public shapes of field mapping: target fields, a suggestion, its columns and candidates.

A suggestion maps every source column to a target field, to ``"custom"`` (keep the column as a
custom field: worth keeping, no target field fits) or to ``None`` (do not import: row numbers,
the exporting tool's internal ids and metadata, empty columns). Its JSON form is what
``python -m import_pipelines mapping suggest`` prints::

    {"columns": [{"header": "E-mail", "field": "email", "confidence": 0.97,
                  "candidates": [{"field": "custom", "confidence": 0.3}]}],
     "overall_confidence": 0.91, "method": "heuristic"}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CUSTOM = "custom"

Method = Literal["ai", "heuristic", "preset"]

# What a field's values look like; the value sniffer compares a column's samples with it
FieldKind = Literal["text", "name", "email", "phone", "date", "postcode", "country", "state", "city", "address",
                    "url", "number", "boolean", "id", "tags", "notes"]


class TargetField(BaseModel):
    """One field a template can map a column onto.

    ``synonyms`` add header names (any language, any spelling: they are normalised like headers)
    to the built-in synonym table of :mod:`import_pipelines.mapping.synonyms`, which already knows
    the common contact fields by name.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    kind: FieldKind = "text"
    synonyms: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name_is_not_reserved(cls, value: str) -> str:
        if value == CUSTOM or not value.strip():
            raise ValueError(f"a target field cannot be called {value!r}")
        return value


class Candidate(BaseModel):
    """Another answer for a column, with its confidence: a field name, ``"custom"`` or ``None``."""

    field: str | None
    confidence: float = Field(ge=0, le=1)


class ColumnSuggestion(BaseModel):
    """The suggested target of one source column."""

    header: str
    field: str | None
    confidence: float = Field(ge=0, le=1)
    candidates: list[Candidate] = Field(default_factory=list)


class Suggestion(BaseModel):
    """A mapping of a source's columns, in source column order, with how it was made.

    ``fallback_reason`` says why an AI suggestion was not used (no key, an API error, low
    confidence); it is for logs and metadata and stays out of the JSON form.
    """

    columns: list[ColumnSuggestion]
    overall_confidence: float = Field(ge=0, le=1)
    method: Method
    fallback_reason: str | None = Field(default=None, exclude=True)

    def mapping(self) -> dict[str, str | None]:
        """``{header: field, "custom" or None}``; with repeated headers the first one wins."""
        result: dict[str, str | None] = {}
        for column in self.columns:
            result.setdefault(column.header, column.field)
        return result


def overall_confidence(columns: list[ColumnSuggestion]) -> float:
    """The confidence of a whole mapping: the mean of its columns', mapped columns counting double.

    Columns kept as custom fields or left out lose nothing when they are wrong in the safe
    direction, so they weigh half as much as the columns that fill target fields.
    """
    if not columns:
        return 0.0
    weights = [2.0 if column.field not in (None, CUSTOM) else 1.0 for column in columns]
    return round(sum(w * c.confidence for w, c in zip(weights, columns)) / sum(weights), 4)
