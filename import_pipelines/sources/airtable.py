"""Airtable tables as a record source, through pyairtable, within Airtable's limits by construction.

:class:`AirtableSource` lists the records of one table (optionally one view, a filter formula,
the fields to read, a sort, a page size), one :class:`~import_pipelines.sources.SourceRecord` per
Airtable record: ``record_id`` is the Airtable record id, ``values`` the fields mapped by type
(:mod:`import_pipelines.sources.airtable_fields`) plus ``_record_id`` and ``_created_time``.

pyairtable builds the URLs and the query parameters and follows the ``offset`` from page to
page; its HTTP session is replaced by a :class:`~import_pipelines.sources.http_session.PoliteSession`
and its own retries are switched off, so every request, retries included, goes through one
limiter per base (5 requests per second by default, shared by every reader of the base in the
process) and one retry policy (a 429 waits Airtable's 30-second penalty plus an exponential
backoff with jitter; a dropped connection retries the same page). Retrying below pyairtable's
pagination is what makes a transient failure resume at the page it interrupted.

The personal access token is read from the environment variable the configuration names, sent
only in the ``Authorization`` header, and redacted from every message.

An incremental read (``since``) adds ``IS_AFTER(LAST_MODIFIED_TIME(), ...)`` (or a creation after
the same instant) to the user's formula, with the look-back subtracted; the next high-water mark
is the greatest value of ``modified_field`` (a "Last modified time" field) seen, or of the
creation time where that field is empty.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from import_pipelines.sources.airtable_fields import AirtableField, CellError, Converter, absent_value, converter
from import_pipelines.sources.api_read import ReadReport, format_timestamp, parse_timestamp, read_window
from import_pipelines.sources.http_session import Log, PoliteSession, RetryPolicy
from import_pipelines.sources.ratelimit import shared_limiter
from import_pipelines.sources.records import SourceError, SourceRecord

RECORD_ID_FIELD = "_record_id"
CREATED_TIME_FIELD = "_created_time"
MAX_PAGE_SIZE = 100  # Airtable's maximum
AIRTABLE_REQUESTS_PER_SECOND = 5  # per base
DEFAULT_ENDPOINT = "https://api.airtable.com"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AirtableConfig(BaseModel):
    """Where and what to read in Airtable, and how politely."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(description="the base id (appXXXXXXXXXXXXXX)")
    table: str = Field(description="the table's name or id (tblXXXXXXXXXXXXXX)")
    view: str | None = Field(default=None, description="a view's name or id: its filter and order apply")
    formula: str | None = Field(default=None, description="an Airtable filterByFormula expression")
    fields: list[str] | None = Field(default=None, description="the fields to read; all when left out")
    sort: list[str] = Field(default_factory=list, description="fields to sort by, '-Field' for descending")
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    token_env: str = Field(default="AIRTABLE_TOKEN",
                           description="the environment variable holding the personal access token")
    endpoint_url: str = DEFAULT_ENDPOINT
    field_types: dict[str, AirtableField] | None = Field(
        default=None, description="field name -> type; read from the metadata API when left out")
    modified_field: str | None = Field(default=None,
                                       description="a 'Last modified time' field: the high-water mark of a read")
    lookback_s: float = Field(default=300.0, ge=0, description="incremental reads re-read this much before the mark")
    requests_per_second: int | None = Field(default=AIRTABLE_REQUESTS_PER_SECOND, ge=1,
                                            description="per base; None for no limit (benchmarks against a fake)")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: tuple[float, float] = Field(default=(10.0, 60.0), description="connect and read timeouts")

    @field_validator("token_env")
    @classmethod
    def _names_a_variable(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError("token_env must name an environment variable (letters, digits, _), never hold the token")
        return value

    @field_validator("field_types", mode="before")
    @classmethod
    def _type_shorthand(cls, value: Any) -> Any:
        # field_types: {Paid: checkbox} is short for {Paid: {type: checkbox}}
        if isinstance(value, Mapping):
            return {name: {"type": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
        return value


def base_scope(base: str, endpoint_url: str = DEFAULT_ENDPOINT) -> str:
    """The rate-limit scope of a base: every reader of it shares Airtable's 5 requests per second."""
    return f"airtable:{endpoint_url.rstrip('/')}/{base}"


def since_formula(moment: datetime) -> str:
    """The filter for records modified (or created) after ``moment``."""
    stamp = format_timestamp(moment)
    return (f"OR(IS_AFTER(LAST_MODIFIED_TIME(), DATETIME_PARSE('{stamp}')),"
            f" IS_AFTER(CREATED_TIME(), DATETIME_PARSE('{stamp}')))")


def combined_formula(user_formula: str | None, since: datetime | None) -> str | None:
    """The user's formula, and the incremental filter when there is one."""
    parts = [part for part in (user_formula, since_formula(since) if since else None) if part]
    if len(parts) == 2:
        return f"AND({parts[0]}, {parts[1]})"
    return parts[0] if parts else None


class AirtableSource:
    """One Airtable table as a :class:`~import_pipelines.sources.RecordSource`.

    ``since``: read only records modified after ``since - config.lookback_s`` (an incremental
    read); None reads everything. After :meth:`records` is exhausted, :attr:`report` holds the
    counts, the high-water mark and whether the read was complete.
    """

    def __init__(self, config: AirtableConfig, *, since: datetime | None = None, log: Log | None = None) -> None:
        self.config = config
        self.window = read_window(since, config.lookback_s)
        self._log = log or (lambda message: None)
        self._field_types: dict[str, AirtableField] | None = dict(config.field_types) \
            if config.field_types is not None else None
        self.report = ReadReport(source=self.name, since=self.window)

    @property
    def name(self) -> str:
        """``airtable <base>/<table>`` (and the view): no secrets."""
        view = f" view {self.config.view}" if self.config.view else ""
        return f"airtable {self.config.base}/{self.config.table}{view}"

    @property
    def rate_limit_scope(self) -> str:
        """The requests that share Airtable's limit with this read: those to the same base."""
        return base_scope(self.config.base, self.config.endpoint_url)

    def columns(self) -> list[str]:
        """The fields read (the configured ones, else every field whose type is known), then id and created time."""
        names = self.config.fields if self.config.fields is not None else list(self._field_types or {})
        return [*names, RECORD_ID_FIELD, CREATED_TIME_FIELD]

    def records(self) -> Iterator[SourceRecord]:
        """Stream the table's records page by page, within the rate limit, retrying transient failures."""
        config = self.config
        token = os.environ.get(config.token_env)
        if not token:
            raise SourceError(f"{self.name}: the environment variable {config.token_env} (the Airtable token) is not set")
        limiter = shared_limiter(self.rate_limit_scope, config.requests_per_second)
        session = PoliteSession(policy=config.retry, limiter=limiter, secrets=(token,), log=self._log, label=self.name)
        self.report = ReadReport(source=self.name, since=self.window, stats=session.stats)
        with session:  # its pooled connections close with the read, finished, failed or abandoned
            yield from self._read(_api(token, config=config, session=session), session)
        self.report.complete = self.window is None and not config.formula and not config.view
        self._log(self.report.summary())

    def _read(self, api: Any, session: PoliteSession) -> Iterator[SourceRecord]:
        config, report, name = self.config, self.report, self.name
        table = api.table(config.base, config.table)
        types = self._types(api, session)
        converters = {field_name: converter(field) for field_name, field in types.items()}
        absent = {field_name: absent_value(field) for field_name, field in self._wanted(types).items()}

        options: dict[str, Any] = {"page_size": config.page_size}
        if config.view:
            options["view"] = config.view
        if config.fields is not None:
            options["fields"] = list(dict.fromkeys([*config.fields, *([config.modified_field]
                                                                     if config.modified_field else [])]))
        if config.sort:
            options["sort"] = list(config.sort)
        formula = combined_formula(config.formula, self.window)
        if formula:
            options["formula"] = formula

        pages = api.iterate_requests(method="get", url=table.urls.records, fallback=("post", table.urls.records_post),
                                     options=options)
        page_number = 0
        while True:
            page_number += 1
            try:
                page = next(pages)
            except StopIteration:
                break
            except SourceError as error:
                raise SourceError(f"{name}: page {page_number}: {error}") from None
            except (requests.RequestException, ValueError) as error:
                raise SourceError(session.redact(f"{name}: page {page_number} ({session.last_url}):"
                                                 f" {_reason(error)}")) from None
            records = page.get("records") if isinstance(page, dict) else None
            if not isinstance(records, list):
                raise SourceError(session.redact(f"{name}: page {page_number} ({session.last_url}) is not an"
                                                 f" Airtable list of records: no 'records' list in the answer"))
            report.pages += 1
            for raw in records:
                began = time.perf_counter()
                record = self._record(raw, name=name, types=types, converters=converters, absent=absent,
                                      page_number=page_number)
                report.mapping_s += time.perf_counter() - began
                report.records += 1
                report.failed += record.error is not None
                yield record

    def _types(self, api: Any, session: PoliteSession) -> dict[str, AirtableField]:
        """The table's field types: configured, or read once from the metadata API."""
        if self._field_types is None:
            url = api.base(self.config.base).urls.tables
            try:
                tables = api.get(url).get("tables", [])
            except SourceError as error:
                raise SourceError(f"{self.name}: field types: {error}") from None
            except (requests.RequestException, ValueError, AttributeError) as error:
                raise SourceError(session.redact(
                    f"{self.name}: field types: could not read the base's schema from {url} ({_reason(error)});"
                    " grant the token schema.bases:read or configure field_types")) from None
            found = next((t for t in tables if self.config.table in (t.get("id"), t.get("name"))), None)
            if found is None:
                raise SourceError(f"{self.name}: field types: the base's schema has no table {self.config.table!r}")
            self._field_types = {field["name"]: AirtableField.from_metadata(field) for field in found.get("fields", [])}
        types = self._field_types
        for reserved in (RECORD_ID_FIELD, CREATED_TIME_FIELD):
            if reserved in types:
                raise SourceError(f"{self.name}: the table has a field named {reserved!r}, a name this reader reserves")
        if types and self.config.fields is not None:
            unknown = [name for name in self.config.fields if name not in types]
            if unknown:
                raise SourceError(f"{self.name}: fields: no such field {', '.join(map(repr, unknown))}"
                                  f" (the table has {', '.join(map(repr, types))})")
        if types and self.config.modified_field and self.config.modified_field not in types:
            raise SourceError(f"{self.name}: modified_field: no such field {self.config.modified_field!r}")
        return types

    def _wanted(self, types: dict[str, AirtableField]) -> dict[str, AirtableField]:
        """The typed fields every record carries a value for (absent ones as False or None)."""
        if self.config.fields is None:
            return types
        return {name: types[name] for name in self.config.fields if name in types}

    def _record(self, raw: Any, *, name: str, types: dict[str, AirtableField], converters: dict[str, Converter | None],
                absent: dict[str, Any], page_number: int) -> SourceRecord:
        """One Airtable record as a SourceRecord; a cell that does not fit its type fails the record, by name."""
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("fields"), dict):
            return SourceRecord(values={}, location=f"{name} page {page_number}",
                                error=f"page {page_number}: a record without an id and fields: {str(raw)[:200]}")
        record_id: str = raw["id"]
        values: dict[str, Any] = absent.copy()
        problems: list[str] = []
        for field_name, cell in raw["fields"].items():
            convert = converters.get(field_name)
            if convert is None:
                values[field_name] = cell
                continue
            try:
                values[field_name] = convert(cell)
            except CellError as error:
                values[field_name] = None
                problems.append(f"field {field_name!r} ({types[field_name].type}): {error}")
        created = raw.get("createdTime")
        try:
            values[CREATED_TIME_FIELD] = parse_timestamp(created) if created is not None else None
        except ValueError as error:
            values[CREATED_TIME_FIELD] = None
            problems.append(f"createdTime: {error}")
        values[RECORD_ID_FIELD] = record_id
        modified = self._see_modified(values, problems)
        return SourceRecord(values=values, location=f"{name} {record_id}", record_id=record_id,
                            error="; ".join(problems) or None, modified=modified)

    def _see_modified(self, values: dict[str, Any], problems: list[str]) -> datetime | None:
        """The record's modification time (its creation when the field is empty), kept for the next mark."""
        modified_field = self.config.modified_field
        if modified_field is None:
            return None
        moment = values.get(modified_field)
        if moment is None:
            moment = values.get(CREATED_TIME_FIELD)
        elif not isinstance(moment, datetime):
            try:
                moment = parse_timestamp(moment)
            except ValueError as error:
                problems.append(f"modified_field {modified_field!r}: {error}")
                return None
        self.report.saw_modified(moment)
        return moment


def _api(token: str, *, config: AirtableConfig, session: PoliteSession) -> Any:
    """A pyairtable Api whose requests all go through ``session`` (pyairtable's own retries off)."""
    from pyairtable import Api

    api = Api(token, endpoint_url=config.endpoint_url, timeout=config.timeout_s, retry_strategy=None)
    api.session = session
    api.api_key = token  # sets the Authorization header on the session now in use
    return api


def _reason(error: Exception) -> str:
    """A one-line reason for a failed page: the HTTP status and Airtable's error, or what was wrong with the body."""
    if isinstance(error, requests.HTTPError):
        return " ".join(str(part) for part in error.args)
    if isinstance(error, requests.JSONDecodeError):
        return f"the answer is not JSON ({error})"
    return f"{type(error).__name__}: {error}"
