"""The records front end: which source a records entity reads, and which column holds each input.

A profile names its record source (``source:`` in ``defs.yaml``, or run config for a file or a
push): a file (CSV, Excel/ODS, JSON: by content), a Google Sheet, records pushed in the run
config, an Airtable table or a paginated HTTP API. :func:`open_source` opens it.

:func:`map_columns` decides where each of the entity's inputs is read: an input with ``from``
is fixed by the template; the others are found by the field mapping (a saved preset for these
headers, else OpenAI, else the offline heuristic) from the source's headers and a sample of its
records. A mapping not certain enough stops the run before anything is written, with the
uncertain columns, their candidates and the command that accepts or corrects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from import_pipelines.extract.records import Location
from import_pipelines.mapping.model import CUSTOM, Suggestion, TargetField
from import_pipelines.sources.records import ListSource, RecordSource, SourceError
from import_pipelines.templates.model import Entity, Template

# the mapping's kinds of value for each kind of input
_FIELD_KIND = {"datetime": "date", "list": "tags", "json": "text"}
# the API sources: each can be asked for only the records changed since a moment, and shares a
# rate limit with every reader of its scope (an Airtable base, an API's origin)
API_KINDS = ("airtable", "http")


class MappingRefused(ValueError):
    """The field mapping is not certain enough to load; the message says what to run."""


@dataclass(frozen=True)
class ColumnMapping:
    """Where each input is read, which columns are kept as custom fields, and how that was decided."""

    columns: dict[str, Location]
    custom: list[str] = field(default_factory=list)
    suggestion: Suggestion | None = None  # None when the template fixes every input


def open_source(spec: Mapping[str, Any], *, name: str = "records", since: datetime | None = None,
                log: Callable[[str], None] | None = None) -> RecordSource:
    """The record source a profile (or a run) names: ``{kind: file|sheet|push|airtable|http, ...}``.

    ``since`` asks an API source for the records modified after it (less its look-back); the
    other kinds cannot be asked that and refuse it. ``log`` hears an API source's waits and its
    summary (requests, waits after 429s, retries).
    """
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if since is not None and kind not in API_KINDS:
        raise SourceError(f"a {kind} source cannot be read incrementally (only {', '.join(API_KINDS)} can);"
                          " remove incremental from the entity's records")
    if kind == "file":
        from import_pipelines.sources.files import open_file

        path = spec.pop("path", None)
        if not path:
            raise SourceError("a file source needs a path (profile source.path, or the run's file)")
        return open_file(path, **{k: v for k, v in spec.items() if k in ("sheet", "encoding", "delimiter",
                                                                          "records_path")})
    if kind == "sheet":
        from import_pipelines.sources.sheets import GoogleSheetSource

        return GoogleSheetSource(spec.pop("spreadsheet"), **{k: v for k, v in spec.items() if k in (
            "worksheet", "cell_range", "credentials_env")})
    if kind == "push":
        return ListSource(name=spec.get("name", name), items=list(spec.get("records") or []), label="record")
    if kind == "airtable":
        from import_pipelines.sources.airtable import AirtableConfig, AirtableSource

        return AirtableSource(AirtableConfig(**spec), since=since, log=log)
    if kind == "http":
        from import_pipelines.sources.http_api import HttpApiConfig, HttpApiSource

        return HttpApiSource(HttpApiConfig(**spec), since=since, log=log)
    raise SourceError(f"unknown record source kind {kind!r} (file, sheet, push, airtable, http)")


def input_fields(entity: Entity) -> list[TargetField]:
    """The entity's inputs as the field mapping's target fields (those the template does not fix)."""
    assert entity.records is not None
    return [TargetField(name=name, description=spec.description or name.replace("_", " "),
                        kind=_FIELD_KIND.get(spec.kind, spec.kind), synonyms=tuple(spec.synonyms))
            for name, spec in entity.records.inputs.items() if spec.from_ is None]


def map_columns(source: RecordSource, entity: Entity, *, template: Template, conn: psycopg.Connection | None,
                mapper: Any = None, sample_rows: int = 20, spec: Mapping[str, Any] | None = None,
                resource_key: str = "field_mapper") -> ColumnMapping:
    """Where each input of ``entity`` is read in ``source``; :class:`MappingRefused` when not certain.

    ``mapper`` is a :class:`~import_pipelines.mapping.resource.FieldMapper` (OpenAI settings,
    thresholds, this run's overrides); without one the offline heuristic and a saved preset decide.
    ``spec`` (the source as the profile names it) and ``resource_key`` (the mapper's resource) make
    the refusal's command and run config the ones to run: the file's path, the sheet's URL.
    """
    from import_pipelines.mapping.resource import FieldMapper
    from import_pipelines.sources.files import sample_source

    assert entity.records is not None
    fixed: dict[str, Location] = {name: spec.from_ for name, spec in entity.records.inputs.items()
                                  if spec.from_ is not None}
    if (spec or {}).get("kind") == "push":
        # a push speaks the template's language: a key named like an input is that input
        keys = set(source.columns())
        fixed |= {name: name for name in entity.records.inputs if name not in fixed and name in keys}
    fields = [field for field in input_fields(entity) if field.name not in fixed]
    if not fields and not entity.records.custom:
        return ColumnMapping(columns=fixed)
    sample = sample_source(source, rows=sample_rows)
    taken = {where for where in fixed.values() if isinstance(where, str)}
    headers = [h for h in sample.columns if h not in taken]
    if not headers:
        return ColumnMapping(columns=fixed)
    samples = [{h: row.get(h) for h in headers} for row in sample.rows]
    mapper = mapper or FieldMapper(use_ai=False)
    suggestion = mapper.suggest(headers, samples, fields, template=template.name, conn=conn)
    where, sheet = source_argument(spec, default=source.name)
    decision = mapper.decide(suggestion, source=where, template=template.name, sheet=sheet, resource_key=resource_key)
    if not decision.accepted:
        raise MappingRefused(decision.message)
    columns = dict(fixed)
    custom: list[str] = []
    for header, target in decision.mapping.items():
        if target == CUSTOM:
            if entity.records.custom:
                custom.append(header)
        elif target is not None:
            columns[target] = header
    return ColumnMapping(columns=columns, custom=custom, suggestion=suggestion)


def source_argument(spec: Mapping[str, Any] | None, *, default: str) -> tuple[str, str | None]:
    """What ``mapping suggest`` / ``mapping presets save`` take for a source: a file's path or a sheet's
    URL, and the worksheet (``--sheet``); ``default`` for a push or an API."""
    spec = spec or {}
    if spec.get("kind") == "file" and spec.get("path"):
        return str(spec["path"]), spec.get("sheet")
    if spec.get("kind") == "sheet" and spec.get("spreadsheet"):
        return str(spec["spreadsheet"]), spec.get("worksheet")
    return default, None
