"""The offline heuristic's rules, one behaviour at a time."""

from __future__ import annotations

import datetime as dt

import pytest

from import_pipelines.mapping.fields import CONTACT_FIELDS, template_fields
from import_pipelines.mapping.heuristic import suggest_heuristic
from import_pipelines.mapping.model import CUSTOM, TargetField
from import_pipelines.mapping.normalize import header_words, normalize_header
from import_pipelines.mapping.sniff import is_empty, profile_column, value_kinds


def _fields_of(headers: list[str], rows: list[list[object]], fields=CONTACT_FIELDS, **kwargs) -> dict[str, str | None]:
    return suggest_heuristic(headers, rows, fields, **kwargs).mapping()


@pytest.mark.parametrize(("header", "words"), [
    ("E-Mail-Adresse", ("email", "adresse")), ("EmailAddress", ("email", "address")),
    ("email_address", ("email", "address")), ("E-mail 1 - Value", ("email", "1", "value")),
    ("POAddressLine1", ("po", "address", "line", "1")), ("Associated Company IDs", ("associated", "company", "id")),
    ("Nº", ("no",)), ("N°", ("number",)), ("#", ("number",)), ("Straße", ("strasse",)), ("Manager's Name", ("manager", "name")),
])
def test_headers_become_comparable_words(header: str, words: tuple[str, ...]) -> None:
    assert header_words(header) == words


def test_normalised_header_ignores_case_accents_and_punctuation() -> None:
    assert normalize_header("E-Mail") == normalize_header("email") == normalize_header("EMAIL") == "email"
    assert normalize_header("Téléphone fixe") == normalize_header("telephone_fixe")


def test_sniffer_recognises_value_kinds() -> None:
    assert value_kinds("maria@example.io") == {"email"}
    assert "phone" in value_kinds("+1 617-555-0143") and "phone" in value_kinds("915 550 101")
    assert "date" in value_kinds("2023-02-14 09:31") and "date" in value_kinds("12.04.1968") and "date" in value_kinds(dt.date(2024, 1, 2))
    assert "postcode" in value_kinds("EC1V 9HL") and "postcode" in value_kinds("'02134")
    assert "country" in value_kinds("Deutschland") and "country" in value_kinds("FR") and "country" in value_kinds("España")
    assert value_kinds("https://x.example/a") == {"url"} and "url" in value_kinds("nordlicht.de")
    assert "boolean" in value_kinds("ja") and value_kinds(True) == {"boolean"}
    assert "salutation" in value_kinds("Mme") and value_kinds("203.0.113.17") == {"ip"}
    assert "phone" not in value_kinds("33.7490000") and "id" in value_kinds("zcrm_4373810000000298001")


def test_sniffer_treats_export_markers_as_empty_and_finds_row_numbers() -> None:
    assert is_empty("0/0/00") and is_empty("  ") and is_empty(None) and not is_empty(0)
    assert profile_column(["1", "2", "3"]).sequence and not profile_column(["1001", "1002"]).sequence
    profile = profile_column(["2024-01-01", None], declared_type="timestamp without time zone")
    assert profile.share("date") == 1.0 and profile.fill_rate == 0.5


def test_synonyms_in_four_languages() -> None:
    rows = [["Ana", "García", "ana@x.es", "Berlin", "10115", "Nice", "75002"]]
    assert _fields_of(["Nombre", "Apellidos", "Correo electrónico", "Ort", "PLZ", "Ville", "Code postal"],
                      rows)["Apellidos"] == "last_name"
    mapping = _fields_of(["Vorname", "Nachname", "E-Mail", "Ort", "PLZ"], [["Ana", "García", "a@x.de", "Berlin", "10115"]])
    assert mapping == {"Vorname": "first_name", "Nachname": "last_name", "E-Mail": "email", "Ort": "city", "PLZ": "zip_code"}
    assert _fields_of(["Prénom", "Nom", "Courriel", "Portable"], [["Léa", "Roux", "l@x.fr", "06 12 34 56 78"]]) == {
        "Prénom": "first_name", "Nom": "last_name", "Courriel": "email", "Portable": "mobile"}


def test_one_field_goes_to_one_column_the_others_become_candidates() -> None:
    suggestion = suggest_heuristic(["Email", "E-mail 2 Address", "Secondary Email"],
                                   [["a@x.com", "b@x.com", "c@x.com"]], CONTACT_FIELDS)
    assert [c.field for c in suggestion.columns] == ["email", CUSTOM, CUSTOM]
    assert "email" in [c.field for c in suggestion.columns[1].candidates]


def test_values_overrule_a_weak_or_misleading_header() -> None:
    rows = [["Mr.", "anna@x.org", "DE"], ["Dr.", "bob@y.org", "FR"], ["Ms.", "cy@z.org", "US"]]
    mapping = _fields_of(["Title", "Column 7", "CC"], rows)
    assert mapping == {"Title": CUSTOM, "Column 7": "email", "CC": "country"}
    # the same "Title" full of job titles is the job title
    assert _fields_of(["Title"], [["Head of Sales"], ["CTO"]])["Title"] == "job_title"


def test_unwanted_columns_are_left_out() -> None:
    headers = ["#", "Email", "OwnerId", "user_pass", "Last Modified Date", "Total Orders", "Fax", "Phone 1 - Label",
               "Phone 1 - Value", "Empty"]
    rows = [["1", "a@x.com", "0055g000003QwErAAK", "$P$Bhash", "2024-01-01", "3", "+1 555 0100", "Mobile", "+1 555 0101", ""],
            ["2", "b@x.com", "0055g000003QwEsAAK", "$P$Bhash2", "2024-01-02", "0", "", "Mobile", "+1 555 0102", ""]]
    mapping = _fields_of(headers, rows)
    assert mapping == {"#": None, "Email": "email", "OwnerId": None, "user_pass": None, "Last Modified Date": None,
                       "Total Orders": None, "Fax": CUSTOM, "Phone 1 - Label": None, "Phone 1 - Value": "mobile",
                       "Empty": None}


def test_billing_address_wins_over_shipping_and_the_filled_block_over_the_empty_one() -> None:
    headers = ["shipping_address_1", "shipping_city", "billing_address_1", "billing_city"]
    rows = [["1 Ship St", "Leeds", "2 Bill St", "York"]]
    assert _fields_of(headers, rows) == {"shipping_address_1": CUSTOM, "shipping_city": CUSTOM,
                                         "billing_address_1": "address_line1", "billing_city": "city"}
    rows = [["1 Ship St", "Leeds", "", ""]]
    assert _fields_of(headers, rows) == {"shipping_address_1": "address_line1", "shipping_city": "city",
                                         "billing_address_1": None, "billing_city": None}


def test_prefixes_of_the_exporting_tool_are_read_through() -> None:
    headers = ["Person - Name", "Person - Email - Work", "Person - Phone - Mobile", "Default Address City", "Default Address Zip"]
    rows = [["Ann Lee", "ann@x.com", "+44 7700 900123", "Leeds", "LS1 4AP"]]
    assert list(_fields_of(headers, rows).values()) == ["full_name", "email", "mobile", "city", "zip_code"]


def test_a_bare_name_beside_a_first_name_is_the_last_name() -> None:
    rows = [["Becker", "Jürgen"]]
    assert _fields_of(["Name", "Vorname"], rows) == {"Name": "last_name", "Vorname": "first_name"}
    assert _fields_of(["Name", "Email"], [["Jürgen Becker", "j@x.de"]])["Name"] == "full_name"


def test_typos_plurals_and_compounds_are_understood() -> None:
    mapping = _fields_of(["Adress", "Emial", "Telefonnummer", "Notes", "Kategorien"],
                         [["1 Main St", "a@x.com", "030 1234567", "vip", "a, b"]])
    assert mapping == {"Adress": "address_line1", "Emial": "email", "Telefonnummer": "phone", "Notes": "notes",
                       "Kategorien": "tags"}


def test_database_columns_use_their_declared_types() -> None:
    headers = ["id", "created_ts", "updated_ts", "flag"]
    rows = [[1, dt.datetime(2020, 1, 1), dt.datetime(2024, 1, 1), True], [2, dt.datetime(2021, 1, 1), None, False]]
    types = {"id": "integer", "created_ts": "timestamp", "updated_ts": "timestamp", "flag": "boolean"}
    assert _fields_of(headers, rows, column_types=types) == {"id": "external_id", "created_ts": "created_at",
                                                             "updated_ts": None, "flag": CUSTOM}


def test_the_field_list_is_a_parameter() -> None:
    fields = [TargetField(name="sku", kind="id", description="article number", synonyms=("artikelnummer", "item code")),
              TargetField(name="price", kind="number", description="unit price", synonyms=("preis", "unit price")),
              TargetField(name="title", kind="text", description="product name", synonyms=("product name", "bezeichnung"))]
    mapping = _fields_of(["Artikelnummer", "Bezeichnung", "Preis", "Lager"], [["A-100", "Schraube", "0.10", "12"]], fields)
    assert mapping == {"Artikelnummer": "sku", "Bezeichnung": "title", "Preis": "price", "Lager": CUSTOM}
    with pytest.raises(ValueError, match="no field list for template 'orders'; known: contacts"):
        template_fields("orders")


def test_confidence_is_high_for_clear_columns_and_low_for_guesses() -> None:
    suggestion = suggest_heuristic(["Email", "Column 7"], [["a@x.com", "hello"], ["b@x.com", "world"]], CONTACT_FIELDS)
    email, vague = suggestion.columns
    assert email.confidence >= 0.95 and vague.confidence < 0.6
    assert 0 < suggestion.overall_confidence < 1
    assert suggest_heuristic([], [], CONTACT_FIELDS).columns == []


@pytest.mark.parametrize("seed", range(40))
def test_the_assignment_is_as_good_as_scipys(seed: int) -> None:
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    from import_pipelines.mapping.heuristic import best_assignment

    rng = np.random.default_rng(seed)
    fields, columns = int(rng.integers(1, 8)), int(rng.integers(1, 12))
    gains = np.round(rng.uniform(-0.5, 0.5, size=(fields, columns)), 2)
    result = best_assignment(gains.tolist())
    taken = [c for c in result if c is not None]
    assert len(taken) == len(set(taken))
    ours = sum(gains[f, c] for f, c in enumerate(result) if c is not None)
    padded = np.hstack([gains, np.zeros((fields, fields))])  # a field may stay unassigned at gain 0
    rows, cols = linear_sum_assignment(padded, maximize=True)
    assert ours == pytest.approx(padded[rows, cols].sum())
    assert all(gains[f, c] > 0 for f, c in enumerate(result) if c is not None)
