"""The scaffold's field matcher reads names, values and types, like the field mapping of files."""

from __future__ import annotations

from import_pipelines.authoring.fields import SourceColumn, TargetField, suggest

COLUMNS = [SourceColumn("k.ref", "ref", "integer"), SourceColumn("k.contact", "contact", "text"),
           SourceColumn("k.tel_no", "tel_no", "character varying(40)"), SourceColumn("k.vorname", "vorname", "text"),
           SourceColumn("k.since", "since", "timestamp with time zone")]
SAMPLES = {"k.ref": ["1", "2", "3"], "k.contact": ["ann@example.org", "bo@example.com", "cy@example.net"],
           "k.tel_no": ["+49 30 1234567", "030 7654321", "+44 20 7946 0958"], "k.vorname": ["Anna", "Bodo", "Cem"],
           "k.since": ["2024-01-02 10:00:00+00", "2023-05-06 11:00:00+00", "2022-07-08 12:00:00+00"]}
TARGETS = [TargetField("email", "character varying(255)"), TargetField("phone", "character varying(64)"),
           TargetField("first_name", "character varying(255)"), TargetField("source_created_at", "timestamp with time zone")]


def test_columns_named_unlike_their_field_are_found_by_their_values_and_other_languages() -> None:
    found = {target.name: (column.name, confidence) for column, target, confidence in suggest(COLUMNS, SAMPLES, TARGETS)}
    assert found["email"][0] == "contact"  # a column of email addresses, whatever its name
    assert found["phone"][0] == "tel_no"
    assert found["first_name"][0] == "vorname"  # German for first name
    assert all(confidence >= 0.5 for _, confidence in found.values())


def test_a_type_that_does_not_fit_lowers_even_an_exact_name() -> None:
    columns = [SourceColumn("k.email", "email", "boolean")]
    assert [c for _, _, c in suggest(columns, {"k.email": ["true", "false"]}, [TargetField("email", "text")])] == [0.7]
    assert suggest(columns, {"k.email": ["true"]}, [TargetField("email", "integer")]) == []  # no fit at all
