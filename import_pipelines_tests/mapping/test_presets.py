"""Remembered mappings in import_control.mapping_presets, against a real PostgreSQL."""

from __future__ import annotations

import pytest

from import_pipelines.db import connect
from import_pipelines.mapping import suggest
from import_pipelines.mapping.fields import CONTACT_FIELDS
from import_pipelines.mapping.overrides import MappingError, apply_overrides, parse_assignments
from import_pipelines.mapping.presets import (
    PresetNotFound, apply_preset, delete_preset, find_preset, fingerprint, get_preset, list_presets, rename_preset,
    save_preset, update_preset,
)

HEADERS = ["Name", "E-Mail", "Tel", "Col 7"]
ROWS = [["Anna Muster", "anna@example.de", "+49 30 1234567", "x1"], ["Ben Bauer", "ben@example.de", "030 555010", "y2"]]
MAPPING = [("Name", "full_name"), ("E-Mail", "email"), ("Tel", "phone"), ("Col 7", "custom")]


def test_fingerprint_ignores_order_case_and_punctuation() -> None:
    assert fingerprint(["E-Mail", "Name"]) == fingerprint(["name", "email"]) == fingerprint(["NAME", "e_mail"])
    assert fingerprint(["E-Mail", "Name"]) != fingerprint(["E-Mail", "Name", "Tel"])


def test_a_saved_mapping_is_reused_without_asking_again(target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        assert suggest(HEADERS, ROWS, CONTACT_FIELDS, template="contacts", conn=conn, ai=None).method == "heuristic"
        saved = save_preset(conn, template="contacts", mapping=MAPPING, fields=CONTACT_FIELDS)
        assert saved.name == f"contacts-{fingerprint(HEADERS)[:8]}"
        # the same export, columns reordered and spelled differently
        again = suggest(["tel", "COL 7", "e_mail", "Name"], ROWS, CONTACT_FIELDS, template="contacts", conn=conn, ai=None)
        assert again.method == "preset" and again.overall_confidence == 1.0
        assert again.mapping() == {"tel": "phone", "COL 7": "custom", "e_mail": "email", "Name": "full_name"}
        assert find_preset(conn, template="other", headers=HEADERS) is None
        row = conn.execute("SELECT template, fingerprint, mapping -> 0 ->> 'field' FROM import_control.mapping_presets").fetchone()
        assert row == ("contacts", fingerprint(HEADERS), "full_name")


def test_presets_are_named_listed_edited_renamed_and_deleted(target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        first = save_preset(conn, template="contacts", mapping=MAPPING, fields=CONTACT_FIELDS, name="crm export")
        other = save_preset(conn, template="contacts", mapping=[("Email", "email")], fields=CONTACT_FIELDS, name="newsletter")
        assert [p.name for p in list_presets(conn)] == ["crm export", "newsletter"]
        assert list_presets(conn, template="nothing") == []
        assert get_preset(conn, "crm export") == get_preset(conn, first.preset_id) == first

        edited = update_preset(conn, "crm export", {"Tel": "mobile", "Col 7": None}, CONTACT_FIELDS)
        assert edited.preset_id == first.preset_id and edited.name == "crm export"
        assert dict(edited.mapping) == {"Name": "full_name", "E-Mail": "email", "Tel": "mobile", "Col 7": None}
        assert edited.created_at == first.created_at and edited.updated_at >= first.updated_at

        renamed = rename_preset(conn, first.preset_id, "CRM (2024)")
        assert renamed.name == "CRM (2024)"
        with pytest.raises(MappingError, match="a preset named 'newsletter' already exists"):
            rename_preset(conn, "CRM (2024)", "newsletter")

        # saving the same headers again replaces the mapping and keeps the name
        resaved = save_preset(conn, template="contacts", mapping=MAPPING, fields=CONTACT_FIELDS)
        assert resaved.preset_id == first.preset_id and resaved.name == "CRM (2024)"

        assert delete_preset(conn, "CRM (2024)").preset_id == first.preset_id
        with pytest.raises(PresetNotFound, match="no mapping preset with id or name 'CRM \\(2024\\)'"):
            get_preset(conn, "CRM (2024)")
        assert [p.preset_id for p in list_presets(conn)] == [other.preset_id]


def test_a_bad_mapping_is_refused_with_the_column_and_field(target_url: str) -> None:
    with connect(target_url, autocommit=True) as conn:
        with pytest.raises(MappingError, match="field 'email' is given to two columns: 'E-Mail' and 'Tel'"):
            save_preset(conn, template="contacts", mapping=[("E-Mail", "email"), ("Tel", "email")], fields=CONTACT_FIELDS)
        with pytest.raises(MappingError, match="column 'Tel': 'telephone' is not a target field"):
            save_preset(conn, template="contacts", mapping=[("Tel", "telephone")], fields=CONTACT_FIELDS)
        save_preset(conn, template="contacts", mapping=MAPPING, fields=CONTACT_FIELDS, name="crm")
        with pytest.raises(MappingError, match="preset 'crm' has no column 'Fax'"):
            update_preset(conn, "crm", {"Fax": "custom"}, CONTACT_FIELDS)
        with pytest.raises(MappingError, match="a preset named 'crm' already exists for other headers"):
            save_preset(conn, template="contacts", mapping=[("Email", "email")], fields=CONTACT_FIELDS, name="crm")
        assert conn.execute("SELECT count(*) FROM import_control.mapping_presets").fetchone() == (1,)


def test_a_preset_maps_repeated_headers_in_order() -> None:
    from import_pipelines.mapping.presets import Preset

    headers = ["Phone", "Phone", "Email"]
    preset = Preset(preset_id=1, name="p", template="contacts", fingerprint=fingerprint(headers), headers=headers,
                    mapping=[("Phone", "phone"), ("Phone", "mobile"), ("Email", "email")], created_at=None, updated_at=None)
    assert [c.field for c in apply_preset(preset, ["phone", "Email", "PHONE"]).columns] == ["phone", "email", "mobile"]
    with pytest.raises(MappingError, match="saved for other headers"):
        apply_preset(preset, ["Phone"])


def test_overrides_correct_a_suggestion_and_move_a_taken_field() -> None:
    suggestion = suggest(HEADERS, ROWS, CONTACT_FIELDS, ai=None)
    corrected = apply_overrides(suggestion, parse_assignments(["Col 7=phone", "Name=null"], CONTACT_FIELDS), CONTACT_FIELDS)
    assert corrected.mapping() == {"Name": None, "E-Mail": "email", "Tel": "custom", "Col 7": "phone"}
    assert corrected.columns[3].confidence == 1.0 and corrected.columns[2].candidates[0].field == "phone"
    with pytest.raises(MappingError, match="no column 'Fax' in this source"):
        apply_overrides(suggestion, {"Fax": "custom"}, CONTACT_FIELDS)
    with pytest.raises(MappingError, match="'Tel=phne'|column 'Tel': 'phne' is not a target field"):
        parse_assignments(["Tel=phne"], CONTACT_FIELDS)
    assert parse_assignments(["a=b=custom", "x=skip", "y="], CONTACT_FIELDS) == {"a=b": "custom", "x": None, "y": None}
