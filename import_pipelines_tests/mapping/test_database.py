"""A source table's columns, types and rows mapped by the same matcher as a file's."""

from __future__ import annotations

import pytest

from import_pipelines.db import connect
from import_pipelines.mapping import CONTACT_FIELDS, suggest
from import_pipelines.mapping.database import table_sample


def test_a_source_table_is_mapped_with_its_declared_types(source_url: str) -> None:
    with connect(source_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA crm")
        conn.execute("CREATE TABLE crm.kunden (id integer PRIMARY KEY, vorname text, nachname text, mail text,"
                     " angelegt timestamptz, geaendert timestamptz, aktiv boolean, vertreter_id integer, \"Dropped\" int)")
        conn.execute("ALTER TABLE crm.kunden DROP COLUMN \"Dropped\"")
        conn.execute("INSERT INTO crm.kunden VALUES (7, 'Anna', 'Muster', 'anna@example.de', '2020-01-02', '2024-01-01',"
                     " true, 3), (9, 'Ben', 'Bauer', 'ben@example.de', '2021-05-06', NULL, false, 3)")
    with connect(source_url, read_only=True) as conn:
        headers, rows, types = table_sample(conn, "kunden", schema="crm", rows=10)
        with pytest.raises(ValueError, match="no table crm.leads"):
            table_sample(conn, "leads", schema="crm")
    assert headers == ["id", "vorname", "nachname", "mail", "angelegt", "geaendert", "aktiv", "vertreter_id"]
    assert types["angelegt"] == "timestamp with time zone" and len(rows) == 2
    mapping = suggest(headers, rows, CONTACT_FIELDS, column_types=types, ai=None).mapping()
    assert mapping == {"id": "external_id", "vorname": "first_name", "nachname": "last_name", "mail": "email",
                       "angelegt": "created_at", "geaendert": None, "aktiv": "custom", "vertreter_id": None}
