"""The contacts template: files, sheets and pushes into Service Vault's customer users.

Every test runs the import's own steps against a fresh, migrated Service Vault database.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from psycopg import sql

from import_pipelines.db import connection
from import_pipelines.dedupe.normalize import normalize_phone
from import_pipelines.mapping.fields import CONTACT_FIELDS
from import_pipelines.mapping.resource import FieldMapper
from import_pipelines.pipeline.duplicates import duplicate_options, match_on, strategy_mode
from import_pipelines.pipeline.records import MappingRefused, input_fields
from import_pipelines.pipeline.steps import EntityRun, LoadResult, dedupe, extract, load, map_and_validate
from import_pipelines.query.compile import compile_field
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.settings import DATA_DIR_ENV
from import_pipelines.templates.loader import load_template, template_path
from import_pipelines.templates.model import FieldSpec, Mode, Template
from import_pipelines_tests.sources import contacts
from import_pipelines_tests.sources.conftest import google, google_key, sheets  # noqa: F401 - fixtures
from import_pipelines_tests.sources.fake_google import FakeSpreadsheet, FakeWorksheet

TEMPLATE = load_template(template_path("contacts"))
# the 200 contacts' two columns no field fits: kept as custom fields
MAPPER = FieldMapper(use_ai=False, overrides={"score": "custom", "vip": "custom"})
COLUMNS = ("external_id, first_name, last_name, display_name, email, phone, phone_normalized, mobile, company,"
           " job_title, address_line1, address_line2, city, state, zip_code, country, website, notes,"
           " source_created_at, tags, custom_fields")


def run_contacts(source: dict[str, Any], target_url: str, *, template: Template = TEMPLATE, mode: Mode | None = None,
                 mapper: FieldMapper | None = MAPPER, run_id: str | None = None) -> LoadResult:
    """Extract, map, dedupe and load the contacts of ``source``, as the profile's job does."""
    run = EntityRun(profile="contacts_test", template=template, entity_name="contacts", run_id=run_id or str(uuid.uuid4()),
                    source_url=target_url, target_url=target_url, record_source=source, mapper=mapper, mode=mode)
    quiet = lambda message: None  # noqa: E731
    return load(run, dedupe(run, map_and_validate(run, extract(run, log=quiet), log=quiet), log=quiet), log=quiet)


@pytest.fixture
def vault(new_database: Callable[[str], str]) -> Callable[[], str]:
    """Factory: a fresh database with Service Vault's schema."""
    def make() -> str:
        url = new_database("vault")
        migrate(url)
        return url
    return make


def rows(url: str) -> list[tuple]:
    with connection(url) as conn:
        return conn.execute(f"SELECT {COLUMNS} FROM customer_users ORDER BY external_id").fetchall()


def pushed_contacts(count: int = 200) -> list[dict[str, Any]]:
    """The contacts as a bulk push sends them: JSON values, dates as ISO text."""
    return [{name: (value.isoformat() if isinstance(value, dt.date) else value) for name, value in row.items()}
            for row in contacts.contacts(count)]


def test_the_template_offers_the_mapping_packages_contact_fields() -> None:
    fields = input_fields(TEMPLATE.entities["contacts"])
    assert [(f.name, f.kind) for f in fields] == [(f.name, f.kind) for f in CONTACT_FIELDS]


def test_the_same_contacts_from_every_source_end_as_the_same_rows(vault, tmp_path: Path, google, sheets,  # noqa: F811
                                                                  monkeypatch) -> None:
    import import_pipelines.sources.sheets as sheet_module

    # the real gspread client, every request answered by the fake Google transport
    monkeypatch.setattr(sheet_module, "sheets_client", functools.partial(sheet_module.sheets_client, adapter=google))
    google.add(FakeSpreadsheet(key="1Contacts", title="CRM export", worksheets=[
        FakeWorksheet(title="Contacts", rows=contacts.sheet_rows(), row_count=1000, col_count=20)]))
    sources: dict[str, dict[str, Any]] = {}
    for encoding in ("utf-8-sig", "cp1252", "utf-16"):
        for delimiter in (",", ";"):
            path = contacts.write_csv(tmp_path / f"contacts-{encoding}-{ord(delimiter)}.csv", encoding=encoding,
                                      delimiter=delimiter)
            sources[f"csv {encoding} {delimiter}"] = {"kind": "file", "path": str(path)}
    sources["xlsx"] = {"kind": "file", "path": str(contacts.write_xlsx(tmp_path / "contacts.xlsx")), "sheet": "Contacts"}
    sources["json"] = {"kind": "file", "path": str(contacts.write_json(tmp_path / "contacts.json", shape="wrapped"))}
    sources["sheet"] = {"kind": "sheet", "spreadsheet": "https://docs.google.com/spreadsheets/d/1Contacts/edit",
                        "worksheet": "Contacts", "credentials_env": "IMPORT_PIPELINES_TEST_GOOGLE_KEY"}
    sources["push"] = {"kind": "push", "records": pushed_contacts(), "name": "push batch-1"}
    loaded = {}
    for label, source in sources.items():
        url = vault()
        result = run_contacts(source, url)
        assert result.counts["created"] == 200 and result.counts["failed"] == 0, (label, result.counts)
        loaded[label] = rows(url)
    reference = loaded.pop("csv utf-8-sig ,")
    assert len(reference) == 200
    for label, got in loaded.items():
        assert got == reference, label
    first = dict(zip([c.strip() for c in COLUMNS.split(",")], reference[0]))
    assert first["external_id"] == "5001" and first["zip_code"] == "00037"
    assert first["phone"] == "+1 (555) 381-5012" and first["phone_normalized"] == "15553815012"
    assert first["source_created_at"].date() == dt.date(2024, 2, 2)
    assert first["custom_fields"] == {"score": "1.25", "vip": "false"}


def write_people(path: Path, people: list[list[Any]], *, header: list[str]) -> str:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(people)
    return str(path)


HEADER = ["Full Name", "E-mail Address", "Phone", "City", "Tags"]


FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Margaret", "Dennis", "Frances", "Ken"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Ritchie", "Allen", "Thompson"]


def people(count: int) -> list[list[Any]]:
    return [[f"{FIRST[i % 10]} {LAST[i // 10 % 10]}", f"person{i}@example.org", f"+44 20 7946 {i:04d}", "London",
             "vip; newsletter"] for i in range(1, count + 1)]


def test_three_bad_rows_of_a_thousand_fail_with_their_lines_and_the_rest_loads(vault, tmp_path: Path,
                                                                               monkeypatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    url = vault()
    data = people(1000)
    data[99] = ["No Contact", "", "", "Leeds", ""]          # line 101: neither email nor phone
    data[499] = ["Bad Mail", "bad.mail@", "+44 1", "York", ""]  # line 501: an invalid email
    data[899] = data[899][:3]                                  # line 901: a ragged row
    path = write_people(tmp_path / "people.csv", data, header=HEADER)
    run_id = str(uuid.uuid4())
    result = run_contacts({"kind": "file", "path": path}, url, mapper=FieldMapper(use_ai=False), run_id=run_id)
    assert result.counts["created"] == 997 and result.counts["failed"] == 3
    with connection(url) as conn:
        failed = conn.execute("SELECT source_ref, error FROM import_control.import_records WHERE action = 'failed'"
                              " ORDER BY record_no").fetchall()
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 997
        tags, first, last = conn.execute("SELECT tags, first_name, last_name FROM customer_users"
                                         " WHERE email = 'person1@example.org'").fetchone()
    assert [ref for ref, _ in failed] == ["people.csv line 101", "people.csv line 501", "people.csv line 901"]
    assert failed[0][1].startswith("email: neither an email address nor a phone number")
    assert failed[1][1].startswith("email: 'bad.mail@' is not a valid email address")
    assert "3 fields where the header has 5" in failed[2][1]
    assert tags == ["vip", "newsletter"] and (first, last) == ("Alan", "Lovelace")
    # each rejected row in import_errors, and in the run's error report
    with connection(url) as conn:
        errors = conn.execute("SELECT source_ref, row_number, field, error_type, row_data->>'email', row_data->>'city'"
                              " FROM import_control.import_errors WHERE stage = 'row' ORDER BY error_id").fetchall()
    assert errors == [("people.csv line 101", 101, "email", "no_contact", None, "Leeds"),
                      ("people.csv line 101", 101, "external_id", "no_identifier", None, "Leeds"),
                      ("people.csv line 501", 501, "email", "invalid_email", "bad.mail@", "York"),
                      ("people.csv line 901", 901, None, "unreadable", "person900@example.org", None)]
    assert result.error_report == str(tmp_path / "data" / "reports" / run_id / "contacts_test_contacts_errors.csv")
    with open(result.error_report, newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [(r["row_number"], r["error_type"]) for r in report] == [
        ("101", "no_contact"), ("101", "no_identifier"), ("501", "invalid_email"), ("901", "unreadable")]
    assert json.loads(report[2]["row_data"])["display_name"] == "Bad Mail"


def test_a_second_import_creates_nothing_and_a_changed_row_updates_its_match(vault, tmp_path: Path) -> None:
    url = vault()
    data = people(50)
    path = write_people(tmp_path / "people.csv", data, header=HEADER)
    mapper = FieldMapper(use_ai=False)
    assert run_contacts({"kind": "file", "path": path}, url, mapper=mapper).counts["created"] == 50
    again = run_contacts({"kind": "file", "path": path}, url, mapper=mapper)
    assert again.counts["created"] == 0 and again.counts["unchanged"] == 50

    data[4][3] = "Bristol"                       # person5 moved: same email, the row is updated
    data[9][1] = "person10.new@example.org"      # person10's new address: found by the phone, updated
    data[19][2] = "020 7946 0020"                # person20's phone written nationally: still the same person
    changed = run_contacts({"kind": "file", "path": write_people(tmp_path / "people.csv", data, header=HEADER)}, url,
                           mapper=mapper)
    assert changed.counts["created"] == 0 and changed.counts["updated"] == 3 and changed.counts["unchanged"] == 47
    with connection(url) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 50
        assert conn.execute("SELECT city FROM customer_users WHERE email = 'person5@example.org'").fetchone() == (
            "Bristol",)
        assert conn.execute("SELECT external_id, phone FROM customer_users WHERE email = 'person10.new@example.org'"
                            ).fetchone() == ("email:person10@example.org", "+44 20 7946 0010")


def test_duplicate_strategies_and_match_fields(vault) -> None:
    # a customer the application holds already (created in the application, not by an import)
    incoming = [{"first_name": "Ada", "last_name": "King", "email": "ADA@example.org ", "phone": "+1 555 9999"},
                {"first_name": "Ada", "last_name": "Byron", "email": "countess@example.org", "phone": "(555) 0100"}]

    def outcome(strategy: str, fields: list[str]) -> tuple[dict[str, int], list[tuple]]:
        url = vault()
        with connection(url) as conn:
            conn.execute("INSERT INTO customer_users (first_name, last_name, display_name, email, phone) VALUES"
                         " ('Ada', 'Lovelace', 'Ada Lovelace', 'ada@example.org', '+1 555 0100')")
            conn.commit()
        template, mode = duplicate_options(TEMPLATE, "contacts", strategy=strategy, match_fields=fields)
        result = run_contacts({"kind": "push", "records": incoming}, url, template=template, mode=mode, mapper=None)
        with connection(url) as conn:
            names = conn.execute("SELECT last_name, email, phone FROM customer_users ORDER BY id").fetchall()
        return {k: v for k, v in result.counts.items() if v}, names

    # email and phone: both incoming records are Ada, found by her email and by her number; one
    # target row takes one record, the best match (here the first), the other is its duplicate
    counts, names = outcome("update", ["email", "phone"])
    assert counts == {"updated": 1, "skipped": 1} and names == [("King", "ada@example.org", "+1 555 9999")]
    counts, names = outcome("skip", ["email", "phone"])
    assert counts == {"skipped": 2} and names == [("Lovelace", "ada@example.org", "+1 555 0100")]
    counts, names = outcome("create_new", ["email", "phone"])  # matching is off: every record is a new row
    assert counts == {"created": 2} and len(names) == 3
    # email alone: the countess with Ada's number is someone else
    counts, names = outcome("update", ["email"])
    assert counts == {"updated": 1, "created": 1}
    assert names == [("King", "ada@example.org", "+1 555 9999"), ("Byron", "countess@example.org", "(555) 0100")]
    with pytest.raises(ValueError, match="duplicate_match_fields: fax is not a field of contacts"):
        match_on(TEMPLATE, "contacts", ["fax"])
    with pytest.raises(ValueError, match="duplicate_strategy 'merge' is not one of skip, update, create_new"):
        strategy_mode("merge")


def test_a_single_name_column_is_split(vault, tmp_path: Path) -> None:
    url = vault()
    path = write_people(tmp_path / "names.csv", [
        ["Lovelace, Ada", "ada@example.org"], ["Grace Brewster Hopper", "grace@example.org"],
        ["Cher", "cher@example.org"], ["", "nobody@example.org"]], header=["Full Name", "Email"])
    assert run_contacts({"kind": "file", "path": path}, url, mapper=FieldMapper(use_ai=False)).counts["created"] == 4
    with connection(url) as conn:
        assert conn.execute("SELECT first_name, last_name, display_name FROM customer_users ORDER BY id").fetchall() == [
            ("Ada", "Lovelace", "Lovelace, Ada"), ("Grace Brewster", "Hopper", "Grace Brewster Hopper"),
            (None, "Cher", "Cher"), (None, None, "nobody@example.org")]


def test_an_uncertain_mapping_stops_before_writing_with_the_command_that_accepts_it(vault, tmp_path: Path) -> None:
    url = vault()
    path = write_people(tmp_path / "opaque.csv", [["x1", "ada@example.org", "q"]], header=["col_a", "Email", "col_c"])
    with pytest.raises(MappingRefused) as refused:
        run_contacts({"kind": "file", "path": path}, url, mapper=FieldMapper(use_ai=False))
    message = str(refused.value)
    assert "'col_a' -> " in message and "Nothing was written" in message
    assert f"python -m import_pipelines mapping presets save {path} --template contacts" in message
    assert "contacts_test_field_mapper:" in message
    with connection(url) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 0


PHONES = ["+1 (555) 381-5012", "555-381-5012", "1.555.381.5012", "0044 20 7946 0958", "+44 20 7946 0958 ext. 12",
          "(555) 010-2000 x7", "020 7946 0958", "  +49 (0)30 1234567 ", "", "n/a", "0", "15553815012", "+1 555 0100",
          "555 0100 #4", "tel: 555-0100", "555x", "\t+1 555 0100", "1-555-123-4567 EXT 9", "(555) 123-4567 x 12 ",
          "555/123 45 67", "555_123_4567"]


def test_the_stored_normalised_phone_is_the_one_duplicate_detection_compares(target_url: str) -> None:
    spec = FieldSpec.model_validate({"column": "r.phone", "transform": [{"phone_country": "1"}]})
    expr = compile_field(spec, aliases={"r"})
    with connection(target_url) as conn:
        # template SQL runs without parameters (a '%' in it is just a character)
        got = [conn.execute(sql.SQL("SELECT {} FROM (SELECT {}::text AS phone) AS r").format(
            expr, sql.Literal(phone))).fetchone()[0] for phone in PHONES]
    assert got == list(normalize_phone(pd.Series(PHONES), country_code="1"))
    assert got[:3] == ["15553815012"] * 3 and got[3] == got[4] == "442079460958"
