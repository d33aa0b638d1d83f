"""A fake of the Google endpoints gspread talks to, as a requests transport adapter (no network).

It answers as the real services do, for what the project uses:

- ``POST https://oauth2.googleapis.com/token``: the service-account JWT grant; the assertion's
  RS256 signature is checked against the test key, its issuer and scopes too;
- ``GET sheets/v4/spreadsheets/<key>``: the spreadsheet's properties and its sheets' grid sizes;
- ``GET .../values/<range>`` and ``GET .../values:batchGet``: values anchored at the range's first
  cell, trailing empty cells of each row and trailing empty rows left out, with
  ``valueRenderOption`` / ``dateTimeRenderOption`` applied (dates are cells holding a
  :class:`Formatted` serial number and its display text);
- ``GET drive/v3/files/<key>``: ``modifiedTime`` and the other ``fields`` asked for;
- 401 without a bearer token, 404 with Google's error body for an unknown spreadsheet.

Every request is recorded in :attr:`FakeGoogle.requests` so tests can assert what was asked.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter

TOKEN_URI = "https://oauth2.googleapis.com/token"
SHEETS_PREFIX = "https://sheets.googleapis.com/v4/spreadsheets/"
DRIVE_PREFIX = "https://www.googleapis.com/drive/v3/files/"
_SERIAL_EPOCH = dt.date(1899, 12, 30)


@dataclass(frozen=True)
class Formatted:
    """A cell whose unformatted value differs from its display text (a date: a serial number)."""

    value: float | int
    text: str
    is_date: bool = True


def date_cell(day: dt.date, text: str | None = None) -> Formatted:
    """A date cell as Sheets stores it: a serial number, shown as ``text`` (ISO by default)."""
    return Formatted(value=(day - _SERIAL_EPOCH).days, text=text or day.isoformat())


@dataclass
class FakeWorksheet:
    title: str
    rows: list[list[Any]]
    row_count: int = 1000
    col_count: int = 26
    sheet_id: int = 0


@dataclass
class FakeSpreadsheet:
    key: str
    title: str
    worksheets: list[FakeWorksheet]
    modified_time: str = "2024-03-01T10:00:00.000Z"
    created_time: str = "2024-01-01T09:00:00.000Z"


@dataclass
class FakeGoogle(BaseAdapter):
    """The fake endpoints; ``public_key_pem`` is the key the token endpoint verifies assertions with."""

    public_key_pem: bytes
    client_email: str
    spreadsheets: dict[str, FakeSpreadsheet] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    issued_tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__()

    def add(self, spreadsheet: FakeSpreadsheet) -> FakeSpreadsheet:
        self.spreadsheets[spreadsheet.key] = spreadsheet
        return spreadsheet

    def close(self) -> None:
        pass

    # --- transport ------------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests.append((request.method, request.url))
        if request.url == TOKEN_URI:
            return self._token(request)
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.issued_tokens:
            return _response(request, 401, _error(401, "Request is missing required authentication credential.",
                                                   "UNAUTHENTICATED"))
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        full = f"{url.scheme}://{url.netloc}{url.path}"
        if full.startswith(DRIVE_PREFIX):
            return self._drive_file(request, unquote(full[len(DRIVE_PREFIX):]), query)
        if full.startswith(SHEETS_PREFIX):
            rest = full[len(SHEETS_PREFIX):]
            key, _, tail = rest.partition("/")
            if key.endswith(":batchGet"):
                return self._batch_get(request, key.removesuffix(":batchGet"), query)
            if tail.startswith("values:batchGet"):
                return self._batch_get(request, key, query)
            if tail.startswith("values/"):
                return self._values(request, key, unquote(tail[len("values/"):]), query)
            if not tail:
                return self._spreadsheet(request, key)
        return _response(request, 404, _error(404, "Not Found", "NOT_FOUND"))

    # --- endpoints ------------------------------------------------------------------------------

    def _token(self, request: requests.PreparedRequest) -> requests.Response:
        from google.auth import jwt

        form = parse_qs(request.body if isinstance(request.body, str) else request.body.decode())
        assertion = form.get("assertion", [""])[0]
        try:
            claims = jwt.decode(assertion, certs=self.public_key_pem.decode(), audience=TOKEN_URI)
        except ValueError as error:
            return _response(request, 400, {"error": "invalid_grant", "error_description": str(error)})
        if claims.get("iss") != self.client_email or "spreadsheets.readonly" not in claims.get("scope", ""):
            return _response(request, 400, {"error": "invalid_scope", "error_description": "unexpected claims"})
        token = f"fake-token-{len(self.issued_tokens) + 1}"
        self.issued_tokens.add(token)
        return _response(request, 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _find(self, key: str) -> FakeSpreadsheet | None:
        return self.spreadsheets.get(key)

    def _spreadsheet(self, request: requests.PreparedRequest, key: str) -> requests.Response:
        spreadsheet = self._find(key)
        if spreadsheet is None:
            return _response(request, 404, _error(404, "Requested entity was not found.", "NOT_FOUND"))
        return _response(request, 200, {
            "spreadsheetId": key,
            "properties": {"title": spreadsheet.title, "locale": "en_US", "timeZone": "Europe/Paris",
                           "autoRecalc": "ON_CHANGE"},
            "sheets": [{"properties": {"sheetId": sheet.sheet_id, "title": sheet.title, "index": index,
                                       "sheetType": "GRID",
                                       "gridProperties": {"rowCount": sheet.row_count,
                                                          "columnCount": sheet.col_count}}}
                       for index, sheet in enumerate(spreadsheet.worksheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{key}/edit",
        })

    def _drive_file(self, request: requests.PreparedRequest, key: str, query: dict[str, list[str]]) -> requests.Response:
        spreadsheet = self._find(key)
        if spreadsheet is None:
            return _response(request, 404, _error(404, f"File not found: {key}.", "NOT_FOUND"))
        known = {"id": key, "name": spreadsheet.title, "createdTime": spreadsheet.created_time,
                 "modifiedTime": spreadsheet.modified_time, "mimeType": "application/vnd.google-apps.spreadsheet"}
        fields = query.get("fields", ["id,name,mimeType"])[0].split(",")
        return _response(request, 200, {name: known[name] for name in fields if name in known})

    def _values(self, request: requests.PreparedRequest, key: str, a1: str,
                query: dict[str, list[str]]) -> requests.Response:
        spreadsheet = self._find(key)
        if spreadsheet is None:
            return _response(request, 404, _error(404, "Requested entity was not found.", "NOT_FOUND"))
        try:
            return _response(request, 200, _value_range(spreadsheet, a1, query))
        except ValueError as error:
            return _response(request, 400, _error(400, str(error), "INVALID_ARGUMENT"))

    def _batch_get(self, request: requests.PreparedRequest, key: str, query: dict[str, list[str]]) -> requests.Response:
        spreadsheet = self._find(key)
        if spreadsheet is None:
            return _response(request, 404, _error(404, "Requested entity was not found.", "NOT_FOUND"))
        try:
            ranges = [_value_range(spreadsheet, a1, query) for a1 in query.get("ranges", [])]
        except ValueError as error:
            return _response(request, 400, _error(400, str(error), "INVALID_ARGUMENT"))
        return _response(request, 200, {"spreadsheetId": key, "valueRanges": ranges})


_CELL = re.compile(r"^([A-Z]*)(\d*)$")


def _value_range(spreadsheet: FakeSpreadsheet, a1: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """The ``ValueRange`` the API returns for ``a1`` on ``spreadsheet``."""
    sheet_part, bang, cells = a1.rpartition("!")
    if not bang:
        sheet_part, cells = a1, ""
    title = sheet_part[1:-1].replace("''", "'") if sheet_part.startswith("'") else sheet_part
    matches = [sheet for sheet in spreadsheet.worksheets if sheet.title == title]
    if not matches:
        if bang:
            raise ValueError(f"Unable to parse range: {a1}")
        sheet, cells = spreadsheet.worksheets[0], a1
    else:
        sheet = matches[0]
    start_label, _, end_label = cells.partition(":") if cells else ("A1", "", "")
    start_col, start_row = _label(start_label, default_row=1)
    end_col, end_row = _label(end_label or start_label, default_row=sheet.row_count,
                              default_col=sheet.col_count) if cells else (sheet.col_count, sheet.row_count)
    if end_row > sheet.row_count or end_col > sheet.col_count:
        raise ValueError(f"Range ({sheet.title}!{cells}) exceeds grid limits. Max rows: {sheet.row_count}, "
                         f"max columns: {sheet.col_count}")
    render = query.get("valueRenderOption", ["FORMATTED_VALUE"])[0]
    dates = query.get("dateTimeRenderOption", ["SERIAL_NUMBER"])[0]
    values = []
    for row in sheet.rows[start_row - 1:end_row]:
        out = [_render(cell, render, dates) for cell in row[start_col - 1:end_col]]
        while out and out[-1] == "":
            out.pop()
        values.append(out)
    while values and not values[-1]:
        values.pop()
    quoted = "'" + sheet.title.replace("'", "''") + "'"
    body: dict[str, Any] = {"range": f"{quoted}!{_a1(start_col, start_row)}:{_a1(end_col, end_row)}",
                            "majorDimension": query.get("majorDimension", ["ROWS"])[0]}
    if values:
        body["values"] = values
    return body


def _render(cell: Any, render: str, dates: str) -> Any:
    if cell is None:
        return ""
    if isinstance(cell, Formatted):
        if render == "FORMATTED_VALUE" or (cell.is_date and dates == "FORMATTED_STRING"):
            return cell.text
        return cell.value
    if render == "FORMATTED_VALUE":
        if isinstance(cell, bool):
            return "TRUE" if cell else "FALSE"
        return str(cell)
    return cell


def _label(label: str, *, default_row: int, default_col: int = 1) -> tuple[int, int]:
    match = _CELL.match(label)
    if not match:
        raise ValueError(f"Unable to parse range: {label}")
    letters, digits = match.groups()
    col = 0
    for letter in letters:
        col = col * 26 + ord(letter) - 64
    return (col or default_col), (int(digits) if digits else default_row)


def _a1(col: int, row: int) -> str:
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row}"


def _error(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _response(request: requests.PreparedRequest, status: int, body: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json; charset=UTF-8"
    response.url = request.url
    response.request = request
    response.encoding = "utf-8"
    return response


def service_account_key(client_email: str = "importer@test-project.iam.gserviceaccount.com") -> tuple[dict, bytes]:
    """A fresh service-account key (its JSON as a dict) and the public key the fake verifies with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    key = {"type": "service_account", "project_id": "test-project", "private_key_id": "key-1", "private_key": pem,
           "client_email": client_email, "client_id": "1234567890", "token_uri": TOKEN_URI,
           "auth_uri": "https://accounts.google.com/o/oauth2/auth"}
    return key, public
