"""A paginated HTTP JSON API as a record source.

:class:`HttpApiSource` GETs an endpoint page by page and yields the objects found at
``records_path`` in each answer (``data.items``; the empty path when the answer is the list
itself), one :class:`~import_pipelines.sources.SourceRecord` each, nested values kept as dicts and
lists for a field path to reach later. Pagination is one of:

- ``page``: ``?page=1, 2, ...``; ``offset``: ``?offset=0, 100, ...`` (both with an optional page
  size parameter); they stop at the first empty page, or at the first short one when the API is
  known to honour the page size (``short_page_is_last``): an API that caps the size silently
  would otherwise end the read early;
- ``cursor``: the next cursor read from a path in each answer, sent back as a parameter; it stops
  when the answer carries none;
- ``link``: the ``Link: <...>; rel="next"`` header (RFC 8288), followed only within the
  configured origin, so the token is never sent to another host.

Every loop is bounded (``max_pages``); a cursor or link that does not advance is an error. The
requests go through a :class:`~import_pipelines.sources.http_session.PoliteSession` (rate limit
per host, 429 and transient failures waited out and retried at the same page). The token comes
from an environment variable and goes in a header: ``Authorization: Bearer ...`` or a header of
the API's choosing (``X-API-Key: ...``). An incremental read sends ``since - lookback`` in the
API's ``updated_since``-style parameter; the greatest value at ``modified_path`` is the next
high-water mark.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urljoin, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from import_pipelines.sources.api_read import (MISSING, ReadReport, TimeFormat, format_timestamp, lookup,
                                               parse_timestamp, read_window)
from import_pipelines.sources.http_session import Log, PoliteSession, RetryPolicy
from import_pipelines.sources.ratelimit import shared_limiter
from import_pipelines.sources.records import SourceError, SourceRecord

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ParamValue = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoPagination(_Strict):
    """One request answers everything."""

    style: Literal["none"] = "none"


class _CountedPages(_Strict):
    """Pages found by counting: the read ends at an empty page (or a short one, when the API is trusted to fill them)."""

    page_size: int | None = Field(default=100, ge=1)
    short_page_is_last: bool = False


class PagePagination(_CountedPages):
    """``?page=N``, N from ``first_page``."""

    style: Literal["page"] = "page"
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = "per_page"


class OffsetPagination(_CountedPages):
    """``?offset=K``, K advancing by the number of records received."""

    style: Literal["offset"] = "offset"
    offset_param: str = "offset"
    size_param: str | None = "limit"


class CursorPagination(_Strict):
    """``?cursor=C``, C read at ``next_cursor_path`` of the previous answer."""

    style: Literal["cursor"] = "cursor"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"
    size_param: str | None = None
    page_size: int | None = Field(default=None, ge=1)


class LinkPagination(_Strict):
    """The ``Link`` header's ``rel="next"`` URL."""

    style: Literal["link"] = "link"
    size_param: str | None = None
    page_size: int | None = Field(default=None, ge=1)


Pagination = Annotated[NoPagination | PagePagination | OffsetPagination | CursorPagination | LinkPagination,
                       Field(discriminator="style")]


class HttpApiConfig(_Strict):
    """Where and how to read a JSON API, and how politely."""

    url: str = Field(description="the endpoint, http(s)://host/path (no credentials in it)")
    records_path: str = Field(default="", description="dotted path of the record list in an answer; '' for the answer")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="fixed query parameters")
    headers: dict[str, str] = Field(default_factory=dict, description="fixed request headers (no secrets)")
    token_env: str | None = Field(default=None, description="the environment variable holding the token")
    auth: Literal["bearer", "header"] = Field(default="bearer",
                                              description="bearer: Authorization: Bearer <token>; header: <token_header>: <token>")
    token_header: str = "Authorization"
    pagination: Pagination = Field(default_factory=NoPagination)
    max_pages: int = Field(default=100_000, ge=1, description="a read asking for more pages fails")
    id_path: str | None = Field(default="id", description="dotted path of a record's id; None when records have none")
    modified_path: str | None = Field(default=None, description="dotted path of a record's modification time")
    time_format: TimeFormat = Field(default="iso8601", description="of modified_path values and the since parameter")
    since_param: str | None = Field(default=None, description="the parameter an incremental read sends, e.g. updated_since")
    lookback_s: float = Field(default=300.0, ge=0)
    requests_per_second: int | None = Field(default=5, ge=1, description="per rate_limit_scope; None for no limit")
    rate_limit_scope: str | None = Field(default=None, description="requests sharing a limit; default the URL's origin")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: tuple[float, float] = Field(default=(10.0, 60.0), description="connect and read timeouts")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host/..., not {value!r}")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; name an environment variable in token_env")
        return value

    @field_validator("token_env")
    @classmethod
    def _names_a_variable(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("token_env must name an environment variable (letters, digits, _), never hold the token")
        return value


class HttpApiSource:
    """A paginated JSON API endpoint as a :class:`~import_pipelines.sources.RecordSource`.

    ``since``: read only records modified after ``since - config.lookback_s`` (needs
    ``since_param``); None reads everything. After :meth:`records` is exhausted, :attr:`report`
    holds the counts, the high-water mark and whether the read was complete.
    """

    def __init__(self, config: HttpApiConfig, *, since: datetime | None = None, log: Log | None = None) -> None:
        if since is not None and config.since_param is None:
            raise SourceError(f"{config.url}: an incremental read needs since_param (the API's updated-since parameter)")
        self.config = config
        self.window = read_window(since, config.lookback_s)
        self._log = log or (lambda message: None)
        self._columns: dict[str, None] = {}
        self.report = ReadReport(source=self.name, since=self.window)

    @property
    def name(self) -> str:
        """``api <url without query>``: no secrets."""
        parts = urlsplit(self.config.url)
        return f"api {parts.scheme}://{parts.netloc}{parts.path}"

    @property
    def rate_limit_scope(self) -> str:
        """The requests that share this read's limit: ``rate_limit_scope``, else those to the same origin."""
        return self.config.rate_limit_scope or f"http:{_origin(self.config.url)}"

    def columns(self) -> list[str]:
        """Top-level keys of the records read so far, in first-seen order (unknown before reading)."""
        return list(self._columns)

    def records(self) -> Iterator[SourceRecord]:
        """Stream the records page by page, within the rate limit, retrying transient failures."""
        config = self.config
        token = None
        if config.token_env is not None:
            token = os.environ.get(config.token_env)
            if not token:
                raise SourceError(f"{self.name}: the environment variable {config.token_env} (the API token) is not set")
        origin = _origin(config.url)
        limiter = shared_limiter(self.rate_limit_scope, config.requests_per_second)
        session = PoliteSession(policy=config.retry, limiter=limiter, secrets=(token,) if token else (),
                                log=self._log, label=self.name)
        session.headers.update(config.headers)
        if token:
            session.headers[config.token_header] = f"Bearer {token}" if config.auth == "bearer" else token
        report = self.report = ReadReport(source=self.name, since=self.window, stats=session.stats)
        paging = config.pagination

        params: dict[str, Any] = dict(config.params)
        if self.window is not None:
            params[config.since_param] = format_timestamp(self.window, config.time_format)
        if paging.style != "none" and paging.size_param and paging.page_size:
            params[paging.size_param] = paging.page_size
        url: str = config.url
        page_number, position = 0, 0
        if paging.style == "page":
            position = paging.first_page
        seen_next: set[str] = set()

        with session:
            while True:
                page_number += 1
                if page_number > config.max_pages:
                    raise SourceError(f"{self.name}: more than max_pages={config.max_pages} pages; raise the bound if"
                                      " the source is that large")
                if paging.style == "page":
                    params[paging.page_param] = position
                elif paging.style == "offset":
                    params[paging.offset_param] = position
                response = self._get(session, url, params, page_number)
                document = self._json(session, response, page_number)
                items = lookup(document, config.records_path)
                if not isinstance(items, list):
                    found = "nothing" if items is MISSING else f"a {type(items).__name__}"
                    keys = f" (the answer's keys: {', '.join(map(str, document))})" if isinstance(document, dict) else ""
                    raise SourceError(session.redact(
                        f"{self.name}: page {page_number} ({response.url}): no list of records at"
                        f" {config.records_path or 'the top level'!r}: found {found}{keys}"))
                report.pages += 1
                for index, item in enumerate(items, start=1):
                    began = time.perf_counter()
                    record = self._record(item, page_number=page_number, index=index)
                    report.mapping_s += time.perf_counter() - began
                    report.records += 1
                    report.failed += record.error is not None
                    yield record

                if paging.style in ("page", "offset"):
                    short = paging.page_size is not None and len(items) < paging.page_size
                    if not items or (short and paging.short_page_is_last):
                        break
                    position += 1 if paging.style == "page" else len(items)
                elif paging.style == "cursor":
                    cursor = lookup(document, paging.next_cursor_path)
                    if cursor is MISSING or cursor in (None, ""):
                        break
                    if str(cursor) in seen_next:
                        raise SourceError(f"{self.name}: page {page_number}: the next cursor repeats an earlier one;"
                                          " the API's pagination does not advance")
                    seen_next.add(str(cursor))
                    params[paging.cursor_param] = cursor
                elif paging.style == "link":
                    next_url = response.links.get("next", {}).get("url")
                    if not next_url:
                        break
                    next_url = urljoin(response.url, next_url)
                    if _origin(next_url) != origin:
                        raise SourceError(session.redact(
                            f"{self.name}: page {page_number}: the next link leads to another origin"
                            f" ({_origin(next_url)}); not following it with the token"))
                    if next_url in seen_next:
                        raise SourceError(f"{self.name}: page {page_number}: the next link repeats an earlier one")
                    seen_next.add(next_url)
                    url, params = next_url, {}
                else:
                    break
        report.complete = self.window is None
        self._log(report.summary())

    def _get(self, session: PoliteSession, url: str, params: dict[str, Any], page_number: int) -> requests.Response:
        try:
            response = session.get(url, params=params, timeout=self.config.timeout_s)
        except SourceError as error:
            raise SourceError(f"{self.name}: page {page_number}: {error}") from None
        except requests.RequestException as error:
            raise SourceError(session.redact(f"{self.name}: page {page_number} ({session.last_url}):"
                                             f" {type(error).__name__}: {error}")) from None
        if not response.ok:
            raise SourceError(session.redact(f"{self.name}: page {page_number} ({response.url}): HTTP"
                                             f" {response.status_code} {response.reason}: {response.text[:300]}"))
        return response

    def _json(self, session: PoliteSession, response: requests.Response, page_number: int) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise SourceError(session.redact(f"{self.name}: page {page_number} ({response.url}): the answer is not"
                                             f" JSON ({kind}): {response.text[:120]!r}")) from None

    def _record(self, item: Any, *, page_number: int, index: int) -> SourceRecord:
        location = f"{self.name} page {page_number} item {index}"
        if not isinstance(item, dict):
            return SourceRecord(values={}, location=location,
                                error=f"page {page_number} item {index} is a {type(item).__name__}, not an object")
        for key in item:
            self._columns.setdefault(key)
        problems: list[str] = []
        record_id, modified = None, None
        if self.config.id_path:
            found = lookup(item, self.config.id_path)
            if found is MISSING or found is None:
                problems.append(f"no id at {self.config.id_path!r}")
            else:
                record_id = str(found)
        if self.config.modified_path:
            found = lookup(item, self.config.modified_path)
            if found is not MISSING and found is not None:
                try:
                    modified = parse_timestamp(found, self.config.time_format)
                except ValueError as error:
                    problems.append(f"{self.config.modified_path}: {error}")
                self.report.saw_modified(modified)
        return SourceRecord(values=item, location=location, record_id=record_id, error="; ".join(problems) or None,
                            modified=modified)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
