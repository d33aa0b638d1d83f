"""Read a Google Sheet through gspread, and tell when it last changed.

The service-account key comes from an environment variable whose *name* is configured (the
key's JSON, or a path to the key file); it never appears in a message. gspread's own readers are
not used for the values, because of their known traps:

- ``get_all_records`` takes the first row as the header (no preamble), turns ``"01234"`` into
  ``1234`` and needs unique, non-empty header names;
- the Sheets API leaves out trailing empty cells of each row and trailing empty rows, so a row
  zipped with the header loses columns, and a reader that infers columns from the first data
  row drops every column that row leaves empty.

Values are fetched with ``spreadsheets.values.get`` (gspread's ``Spreadsheet.values_get``) in
blocks of rows, as ``UNFORMATTED_VALUE`` (numbers and booleans typed, not their display
strings) with dates as their ``FORMATTED_STRING`` (as a person typed them; a serial number would
be indistinguishable from a number). Rows are anchored at the range's first row and column and
padded to the table's width, and the header is placed by the same rule as in files, so empty
leading cells or an empty first data row lose no column.

The modification time a sheet sensor needs is the Drive API's ``modifiedTime``
(:func:`sheet_modified_time`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from import_pipelines.sources.records import SourceError
from import_pipelines.sources.tabular import SHEET_SAMPLE_ROWS, LayoutReport, SheetSource

if TYPE_CHECKING:
    import gspread
    from requests.adapters import BaseAdapter

DEFAULT_CREDENTIALS_ENV = "GOOGLE_SERVICE_ACCOUNT_JSON"
CHUNK_ROWS = 5000
DEFAULT_TIMEOUT_S = 60.0
_LARGEST_EXACT_FLOAT = 2 ** 53
_VALUE_PARAMS = {"valueRenderOption": "UNFORMATTED_VALUE", "dateTimeRenderOption": "FORMATTED_STRING",
                 "majorDimension": "ROWS"}


def sheets_client(*, credentials_env: str = DEFAULT_CREDENTIALS_ENV, adapter: BaseAdapter | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> gspread.Client:
    """A read-only gspread client authenticated with the service-account key in ``credentials_env``.

    ``adapter`` (a requests transport adapter) carries every request, the OAuth token exchange
    included, instead of the network: tests answer the Sheets, Drive and token endpoints with it.
    Every request is bounded by ``timeout_s``.
    """
    import gspread
    import requests
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2.service_account import Credentials

    info = _service_account_info(credentials_env)
    try:
        credentials = Credentials.from_service_account_info(info, scopes=gspread.auth.READONLY_SCOPES)
    except (ValueError, KeyError, GoogleAuthError):
        raise SourceError(f"the service-account key in {credentials_env} is not a valid key "
                          f"(need type, client_email, private_key and token_uri)") from None
    token_session = requests.Session()
    session = AuthorizedSession(credentials, auth_request=Request(token_session))
    if adapter is not None:
        for scheme in ("https://", "http://"):
            token_session.mount(scheme, adapter)
            session.mount(scheme, adapter)
    client = gspread.Client(auth=credentials, session=session)
    client.set_timeout(timeout_s)
    return client


def spreadsheet_key(spreadsheet: str) -> str:
    """The spreadsheet's key from its URL (``https://docs.google.com/spreadsheets/d/<key>/edit``) or the key itself."""
    from gspread.utils import extract_id_from_url

    if "/" not in spreadsheet:
        return spreadsheet
    try:
        return extract_id_from_url(spreadsheet)
    except Exception:  # noqa: BLE001 - gspread raises NoValidUrlKeyFound
        raise SourceError(f"{spreadsheet!r} is not a Google Sheets URL (…/spreadsheets/d/<key>/…)") from None


def sheet_modified_time(spreadsheet: str, *, client: gspread.Client | None = None,
                        credentials_env: str = DEFAULT_CREDENTIALS_ENV) -> str:
    """The spreadsheet's last modification time (RFC 3339, from the Drive API's ``modifiedTime``)."""
    client = client or sheets_client(credentials_env=credentials_env)
    key = spreadsheet_key(spreadsheet)
    with _api_errors(f"Google Sheet {key}", client):
        return client.get_file_drive_metadata(key)["modifiedTime"]


class GoogleSheetSource(SheetSource):
    """One worksheet (or an A1 range of it) of a Google Sheet as a record source.

    ``spreadsheet`` is the sheet's URL or key; ``worksheet`` its title (default: the first);
    ``cell_range`` an optional A1 range within it (``"B3:H"``, ``"A1:F500"``). Rows are numbered
    as the sheet numbers them.
    """

    def __init__(self, spreadsheet: str, *, worksheet: str | None = None, cell_range: str | None = None,
                 client: gspread.Client | None = None, credentials_env: str = DEFAULT_CREDENTIALS_ENV,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        from gspread.utils import a1_range_to_grid_range

        self.client = client or sheets_client(credentials_env=credentials_env)
        self.key = spreadsheet_key(spreadsheet)
        with _api_errors(f"Google Sheet {self.key}", self.client):
            self.spreadsheet = self.client.open_by_key(self.key)
            sheets = self.spreadsheet.worksheets()
        if not sheets:
            raise SourceError(f"Google Sheet {self.spreadsheet.title!r} has no worksheet")
        if worksheet is None:
            self.worksheet = sheets[0]
        else:
            matches = [sheet for sheet in sheets if sheet.title == worksheet]
            if not matches:
                raise SourceError(f"Google Sheet {self.spreadsheet.title!r}: no worksheet named {worksheet!r} "
                                  f"(worksheets: {', '.join(sheet.title for sheet in sheets)})")
            self.worksheet = matches[0]
        self.name = f"{self.spreadsheet.title} {self.worksheet.title}"
        grid = {"startRowIndex": 0, "endRowIndex": self.worksheet.row_count,
                "startColumnIndex": 0, "endColumnIndex": self.worksheet.col_count}
        if cell_range:
            try:
                grid.update(a1_range_to_grid_range(cell_range))
            except Exception:  # noqa: BLE001 - gspread raises its own for a malformed label
                raise SourceError(f"{self.name}: {cell_range!r} is not an A1 range (e.g. \"A1:F500\", \"B3:H\")") from None
        self._grid = grid
        # A block holds at least the rows that place the header, so that costs one request, reused.
        self._chunk_rows = max(chunk_rows, SHEET_SAMPLE_ROWS)
        self._first_block: dict[str, Any] | None = None  # placing the header reads it; reading reuses it
        self.report = LayoutReport(source=self.name, details={"spreadsheet": self.key, "worksheet": self.worksheet.title,
                                                             "range": cell_range})

    def modified_time(self) -> str:
        """The spreadsheet's last modification time (Drive ``modifiedTime``)."""
        return sheet_modified_time(self.key, client=self.client)

    def raw_rows(self) -> Iterator[tuple[int, list[Any]]]:
        """Every row of the range from its first, cells from its first column, in blocks of ``chunk_rows``."""
        from gspread.utils import absolute_range_name, rowcol_to_a1

        first_row, last_row = self._grid["startRowIndex"] + 1, self._grid["endRowIndex"]
        first_col, last_col = self._grid["startColumnIndex"] + 1, self._grid["endColumnIndex"]
        for start in range(first_row, last_row + 1, self._chunk_rows):
            end = min(start + self._chunk_rows - 1, last_row)
            block = absolute_range_name(self.worksheet.title,
                                        f"{rowcol_to_a1(start, first_col)}:{rowcol_to_a1(end, last_col)}")
            if start == first_row and self._first_block is not None:
                response = self._first_block
            else:
                with _api_errors(self.name, self.client):
                    response = self.spreadsheet.values_get(block, params=dict(_VALUE_PARAMS))
                if start == first_row:
                    self._first_block = response
            # The API anchors values at the requested range's first cell and leaves out trailing
            # empty rows, so a short block is padding, not the end of the sheet.
            for offset, cells in enumerate(response.get("values", [])):
                yield start + offset, [_typed(value) for value in cells]

    def close(self) -> None:
        """Release the HTTP session."""
        self.client.http_client.session.close()


def _typed(value: Any) -> Any:
    """A cell as the API gave it, with "" as None and an integral number as an int."""
    if value == "":
        return None
    if value.__class__ is float and value.is_integer() and -_LARGEST_EXACT_FLOAT < value < _LARGEST_EXACT_FLOAT:
        return int(value)
    return value


def _service_account_info(credentials_env: str) -> dict[str, Any]:
    """The key from the environment: its JSON, or the path of a file holding it. Never echoed."""
    raw = os.environ.get(credentials_env)
    if not raw or not raw.strip():
        raise SourceError(f"environment variable {credentials_env} is not set: it must hold a Google "
                          f"service-account key (its JSON, or the path of the key file)")
    text = raw
    if not raw.lstrip().startswith("{"):
        path = Path(raw.strip()).expanduser()
        if not path.is_file():
            raise SourceError(f"{credentials_env} holds neither a service-account key's JSON nor the path of a file")
        text = path.read_text(encoding="utf-8")
    try:
        info = json.loads(text)
    except ValueError:
        raise SourceError(f"the service-account key in {credentials_env} is not valid JSON") from None
    if not isinstance(info, dict):
        raise SourceError(f"the service-account key in {credentials_env} is not a JSON object")
    return info


class _api_errors:  # noqa: N801 - used as a context manager
    """Turn gspread and transport errors into SourceErrors naming the sheet and the service account."""

    def __init__(self, what: str, client: gspread.Client) -> None:
        self.what = what
        self.client = client

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, SourceError):
            return False
        import gspread
        import requests
        from google.auth.exceptions import GoogleAuthError

        account = getattr(getattr(self.client.http_client.session, "credentials", None), "service_account_email", None)
        shared = f" (is it shared with {account}?)" if account else ""
        if isinstance(error, gspread.exceptions.APIError):
            status = error.response.status_code
            if status == 404:
                raise SourceError(f"{self.what}: not found{shared}") from None
            if status == 403:
                raise SourceError(f"{self.what}: permission denied{shared}") from None
            raise SourceError(f"{self.what}: the Sheets API answered {status}: {error.error.get('message', '')}") from None
        if isinstance(error, gspread.exceptions.SpreadsheetNotFound):
            raise SourceError(f"{self.what}: not found{shared}") from None
        if isinstance(error, PermissionError):
            raise SourceError(f"{self.what}: permission denied{shared}") from None
        if isinstance(error, GoogleAuthError):
            raise SourceError(f"{self.what}: the service account could not sign in ({type(error).__name__})") from None
        if isinstance(error, requests.RequestException):
            raise SourceError(f"{self.what}: the request failed ({type(error).__name__})") from None
        return False
