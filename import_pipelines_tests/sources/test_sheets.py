"""Google Sheets through the real gspread and google-auth code, against a fake transport."""

from __future__ import annotations

import datetime as dt

import pytest

from import_pipelines.sources import RecordSource, SourceError
from import_pipelines.sources.sheets import GoogleSheetSource, sheet_modified_time, sheets_client
from import_pipelines_tests.sources.conftest import CREDENTIALS_ENV
from import_pipelines_tests.sources.fake_google import (
    TOKEN_URI,
    FakeSpreadsheet,
    FakeWorksheet,
    Formatted,
    date_cell,
)

LEADS = [
    ["Leads export", None, None, None, None],
    [None, None, None, None, None],
    [None, "Name", "Email", "Zip", "Since", "Score", "VIP"],
    [None, None, None, None, None, None, None],  # an empty first data row
    [None, None, "ann@example.com", "01234", date_cell(dt.date(2024, 3, 1), "01/03/2024"), 12.5, True],
    [None, "Bob", None, None, None, Formatted(3, "3.00", is_date=False), False],
    [None, "Cleo", "cleo@example.com", "99999", None, 7, None],
]


@pytest.fixture
def leads(google):
    return google.add(FakeSpreadsheet(key="1LeadsKey", title="Sales", worksheets=[
        FakeWorksheet(title="Notes", rows=[["read me first"]], row_count=10, col_count=3),
        FakeWorksheet(title="Leads", rows=LEADS, row_count=40, col_count=9, sheet_id=7)]))


def test_empty_leading_cells_and_an_empty_first_data_row_keep_every_column(google, sheets, leads) -> None:
    source = GoogleSheetSource("1LeadsKey", worksheet="Leads", client=sheets)
    assert isinstance(source, RecordSource)
    assert source.columns() == ["Name", "Email", "Zip", "Since", "Score", "VIP"]
    records = list(source.records())
    assert [(r.line, r.location) for r in records] == [(5, "Sales Leads row 5"), (6, "Sales Leads row 6"),
                                                       (7, "Sales Leads row 7")]
    assert records[0].values == {"Name": None, "Email": "ann@example.com", "Zip": "01234", "Since": "01/03/2024",
                                 "Score": 12.5, "VIP": True}
    # Unformatted values: the number behind "3.00", not its display text; missing trailing cells are None.
    assert records[1].values == {"Name": "Bob", "Email": None, "Zip": None, "Since": None, "Score": 3, "VIP": False}
    assert records[2].values["VIP"] is None
    assert source.report.preamble_lines == [1] and source.report.header_line == 3
    assert source.report.blank_rows == 1


def test_gspread_get_all_records_would_lose_what_the_source_keeps(google, sheets, leads) -> None:
    """The trap the source avoids: the first row as header and numericised text."""
    worksheet = sheets.open_by_key("1LeadsKey").worksheet("Leads")
    records = worksheet.get_all_records(head=3)
    assert records[1]["Zip"] == 1234  # "01234" lost its leading zero
    assert "" in records[0]  # the empty first column became a key ""


def test_the_first_worksheet_an_a1_range_and_blocks_of_rows(google, sheets) -> None:
    rows = [["id", "email", "name"]] + [[n, f"p{n}@example.com", f"Person {n}"] for n in range(1, 120)]
    rows[50] = [50, None, None]  # sheet row 51: empty within the range B:C
    google.add(FakeSpreadsheet(key="1Big", title="Big", worksheets=[
        FakeWorksheet(title="All", rows=rows, row_count=200, col_count=5),
        FakeWorksheet(title="Other", rows=[["x"]])]))
    source = GoogleSheetSource("https://docs.google.com/spreadsheets/d/1Big/edit", cell_range="B1:C200",
                               client=sheets, chunk_rows=70)
    assert source.worksheet.title == "All"
    assert source.columns() == ["email", "name"]
    records = list(source.records())
    assert len(records) == 118 and records[0].values == {"email": "p1@example.com", "name": "Person 1"}
    assert records[-1].line == 120 and records[49].line == 52
    value_requests = [url for method, url in google.requests if "/values/" in url]
    assert len(value_requests) == 3  # 200 rows in blocks of 70, the first block read once
    assert all("B" in url and "C" in url for url in value_requests)


def test_modified_time_comes_from_drive(google, sheets, leads) -> None:
    source = GoogleSheetSource("1LeadsKey", client=sheets)
    assert source.modified_time() == "2024-03-01T10:00:00.000Z"
    leads.modified_time = "2024-03-02T08:30:00.000Z"
    assert sheet_modified_time("https://docs.google.com/spreadsheets/d/1LeadsKey/edit", client=sheets) == \
        "2024-03-02T08:30:00.000Z"
    assert any(url.startswith("https://www.googleapis.com/drive/v3/files/1LeadsKey") for _, url in google.requests)


def test_the_service_account_signs_in_through_the_token_endpoint(google, sheets, leads) -> None:
    GoogleSheetSource("1LeadsKey", client=sheets)
    assert google.requests[0] == ("POST", TOKEN_URI)
    assert google.issued_tokens == {"fake-token-1"}


def test_errors_name_the_sheet_and_account_never_the_key(google, google_key, sheets, leads, monkeypatch) -> None:
    key, _ = google_key
    with pytest.raises(SourceError) as missing:
        GoogleSheetSource("1Unknown", client=sheets)
    assert str(missing.value) == ("Google Sheet 1Unknown: not found "
                                  "(is it shared with importer@test-project.iam.gserviceaccount.com?)")
    with pytest.raises(SourceError, match=r"no worksheet named 'Contacts' \(worksheets: Notes, Leads\)"):
        GoogleSheetSource("1LeadsKey", worksheet="Contacts", client=sheets)
    monkeypatch.delenv(CREDENTIALS_ENV)
    with pytest.raises(SourceError, match=f"environment variable {CREDENTIALS_ENV} is not set"):
        sheets_client(credentials_env=CREDENTIALS_ENV, adapter=google)
    monkeypatch.setenv(CREDENTIALS_ENV, '{"type": "service_account", "private_key": "-----BEGIN nonsense"}')
    with pytest.raises(SourceError) as invalid:
        sheets_client(credentials_env=CREDENTIALS_ENV, adapter=google)
    assert "not a valid key" in str(invalid.value) and "nonsense" not in str(invalid.value)
    assert key["private_key"][40:80] not in str(missing.value)
