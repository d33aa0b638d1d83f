"""Mapping suggestions from OpenAI, as structured output parsed into a pydantic model.

The request carries the target fields (name, kind, description) and, per column, its header,
what the sniffer saw in it and at most three *masked* sample values: letters become ``x``,
digits ``9``, so ``jordan.ellis@example.com`` goes out as ``xxxxxx.xxxxx@xxxxxxx.xxx``. Only
values from closed vocabularies that identify nobody (country names and codes, state codes,
booleans, salutations) go out as they are. No row is ever sent whole.

The API key is passed in by the caller (read from an environment variable there), never logged
and never part of an error: :class:`AIMappingError` messages name the failure and the HTTP
status, with anything that looks like a key removed from the server's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from import_pipelines.mapping.model import CUSTOM, Candidate, ColumnSuggestion, Suggestion, TargetField
from import_pipelines.mapping.sniff import is_empty, profile_column, value_kinds

MAX_SAMPLES_PER_COLUMN = 3
MAX_SAMPLE_LENGTH = 40

# kinds of values that identify nobody and are sent unmasked
_OPEN_KINDS = frozenset({"country", "boolean", "salutation"})

_INSTRUCTIONS = """\
You map the columns of a data export onto the target fields of an import template.
For every column in the input, in the same order, answer one object:
- header: the column's header, exactly as given;
- field: the name of the one target field the column's values belong in; or "custom" when the column
  describes the record but no target field fits (keep it as a custom field); or null when it must not be
  imported (row numbers, ids of other records, the exporting tool's own metadata such as modification
  stamps, IP addresses, password hashes, computed statistics, empty columns);
- confidence: 0 to 1, how sure you are;
- alternatives: up to three other answers (field name, "custom" or null) with their confidence.
Give each target field to at most one column. Sample values are masked: letters became x/X and digits 9.
Finally give overall_confidence, 0 to 1, for the whole mapping."""


class AIAlternative(BaseModel):
    """Another answer the model considered for a column."""

    field: str | None
    confidence: float


class AIColumn(BaseModel):
    """The model's answer for one column."""

    header: str
    field: str | None
    confidence: float
    alternatives: list[AIAlternative]


class AIAnswer(BaseModel):
    """The structured output the model must produce."""

    columns: list[AIColumn]
    overall_confidence: float


class AIMappingError(RuntimeError):
    """The AI suggestion failed (no answer, an API error, an answer that does not fit). Never holds the key."""


def suggest_ai(headers: Sequence[str], samples: Sequence[Sequence[Any] | Mapping[str, Any]],
               fields: Sequence[TargetField], *, api_key: str, model: str, base_url: str | None = None,
               timeout: float = 30.0, max_retries: int = 2,
               column_types: Mapping[str, str] | None = None) -> Suggestion:
    """Ask OpenAI for a mapping of ``headers`` onto ``fields``; raise :class:`AIMappingError` on any failure.

    ``timeout`` bounds each HTTP request (seconds) and ``max_retries`` the client's retries of
    connection errors, 408/409/429 and 5xx answers, so one call takes at most about
    ``(max_retries + 1) * timeout`` plus the client's short back-off.
    """
    from openai import OpenAI, OpenAIError

    payload = request_payload(headers, samples, fields, column_types=column_types)
    failure = None
    try:
        with OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries) as client:
            response = client.responses.parse(model=model, instructions=_INSTRUCTIONS,
                                              input=json.dumps(payload, ensure_ascii=False), text_format=AIAnswer)
    except OpenAIError as exc:
        failure = _describe(exc, api_key)
    except ValidationError as exc:
        failure = f"the AI answer does not match the expected shape ({exc.error_count()} errors)"
    except ValueError as exc:  # a body that is not JSON
        failure = f"the AI answer is not valid JSON ({type(exc).__name__})"
    if failure is not None:
        # raised outside the handler: the client's exception (which holds the request) is not kept as context
        raise AIMappingError(failure)
    answer = response.output_parsed
    if answer is None:
        raise AIMappingError("the AI gave no parsed answer (a refusal or an empty output)")
    return to_suggestion(answer, headers, fields)


def request_payload(headers: Sequence[str], samples: Sequence[Sequence[Any] | Mapping[str, Any]],
                    fields: Sequence[TargetField], *, column_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON document sent to the model: target fields, and per column its header, kinds and masked samples."""
    columns: list[dict[str, Any]] = []
    for index, header in enumerate(headers):
        values = [row.get(header) if isinstance(row, Mapping) else (row[index] if index < len(row) else None)
                  for row in samples]
        declared = (column_types or {}).get(header)
        profile = profile_column(values, declared_type=declared)
        shown: list[str] = []
        for value in values:
            if is_empty(value):
                continue
            masked = mask_value(value)
            if masked not in shown:
                shown.append(masked)
            if len(shown) == MAX_SAMPLES_PER_COLUMN:
                break
        column: dict[str, Any] = {
            "header": header,
            "filled": f"{profile.filled} of {profile.rows} sample rows",
            "looks_like": sorted(kind for kind, share in profile.shares.items() if share >= 0.6),
            "samples": shown,
        }
        if declared:
            column["declared_type"] = declared
        columns.append(column)
    return {"target_fields": [{"name": f.name, "kind": f.kind, "description": f.description} for f in fields],
            "columns": columns}


def mask_value(value: Any) -> str:
    """``value`` with letters as x/X and digits as 9, unless it is a country, boolean or salutation."""
    text = str(value).strip()
    if value_kinds(value) & _OPEN_KINDS and len(text) <= MAX_SAMPLE_LENGTH:
        return text
    masked = "".join("9" if ch.isdigit() else ("X" if ch.isupper() else "x") if ch.isalpha() else ch for ch in text)
    return masked[:MAX_SAMPLE_LENGTH] + ("…" if len(masked) > MAX_SAMPLE_LENGTH else "")


def to_suggestion(answer: AIAnswer, headers: Sequence[str], fields: Sequence[TargetField]) -> Suggestion:
    """Check the model's answer against the headers and fields and turn it into a :class:`Suggestion`.

    Every header must be answered once, in order, with a known field, ``"custom"`` or null; a
    field the model gave to two columns stays with the surer one, the other column keeps its
    columns as custom with half its confidence and the field as a candidate.
    """
    names = {f.name for f in fields}
    if [c.header for c in answer.columns] != [str(h) for h in headers]:
        raise AIMappingError(f"the AI answered {len(answer.columns)} columns that do not match the "
                             f"{len(headers)} headers in order")
    for column in answer.columns:
        for option in (column.field, *(a.field for a in column.alternatives)):
            if option not in names and option not in (CUSTOM, None):
                raise AIMappingError(f"the AI mapped column {column.header!r} to {option!r}, which is not a target "
                                     "field, 'custom' or null")
    holder: dict[str, int] = {}
    for index, column in enumerate(answer.columns):
        if column.field in names and (column.field not in holder
                                      or answer.columns[holder[column.field]].confidence < column.confidence):
            holder[column.field] = index
    columns: list[ColumnSuggestion] = []
    for index, column in enumerate(answer.columns):
        candidates = [Candidate(field=a.field, confidence=_unit(a.confidence)) for a in column.alternatives
                      if a.field != column.field][:3]
        field, confidence = column.field, _unit(column.confidence)
        if field in names and holder[field] != index:
            candidates.insert(0, Candidate(field=field, confidence=confidence))
            field, confidence = CUSTOM, round(confidence / 2, 3)
        columns.append(ColumnSuggestion(header=column.header, field=field, confidence=confidence,
                                        candidates=candidates))
    return Suggestion(columns=columns, overall_confidence=_unit(answer.overall_confidence), method="ai")


def _unit(value: float) -> float:
    return round(min(1.0, max(0.0, float(value))), 3)


_KEY_LIKE = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-*]{6,}")


def _describe(exc: Exception, api_key: str) -> str:
    """A message for a failed request: the error's kind, its HTTP status and the server's words without keys."""
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "message", None) or str(exc)
    detail = _KEY_LIKE.sub("<key>", detail.replace(api_key, "<key>") if api_key else detail)
    return f"OpenAI request failed: {type(exc).__name__}" + (f" (HTTP {status})" if status else "") + \
        (f": {detail[:200]}" if detail else "")
