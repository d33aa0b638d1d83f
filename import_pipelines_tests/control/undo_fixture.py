"""A small two-entity import (accounts, and contacts that reference them) for the undo and export tests."""

from __future__ import annotations

from import_pipelines.db import connection
from import_pipelines.templates.loader import parse_template
from import_pipelines.templates.model import Template

SOURCE_DDL = """
CREATE TABLE src_accounts (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE src_contacts (id int PRIMARY KEY, account_id int, name text, note text, visits text);
"""
TARGET_DDL = """
CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100) PRIMARY KEY,
    source_system text NOT NULL, external_id text, name text NOT NULL, UNIQUE (source_system, external_id));
CREATE TABLE contacts (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 500) PRIMARY KEY,
    source_system text NOT NULL, external_id text, name text, note text, visits integer,
    account_id bigint REFERENCES accounts (id), UNIQUE (source_system, external_id));
"""


def template(visits: str | dict = "c.visits") -> Template:
    """``visits`` is the field spec of ``contacts.visits`` (a template error makes it fail a cast)."""
    return parse_template(template_data(visits))


def template_data(visits: str | dict = "c.visits") -> dict:
    """The template as YAML would hold it."""
    return {
        "name": "crm", "source_system": "crm",
        "entities": {
            "accounts": {"target": "accounts", "source_id": "external_id",
                         "query": {"base": {"table": "src_accounts", "alias": "a"}},
                         "fields": {"external_id": "a.id", "name": "a.name"}},
            "contacts": {"target": "contacts", "source_id": "external_id",
                         "query": {"base": {"table": "src_contacts", "alias": "c"}},
                         "fields": {"external_id": "c.id", "name": "c.name", "note": "c.note", "visits": visits,
                                    "account_key": "c.account_id"},
                         "references": {"account_id": {"entity": "accounts", "field": "account_key"}}},
        },
    }


def create_tables(source_url: str, target_url: str) -> None:
    """The source and target tables, empty."""
    with connection(source_url) as conn:
        conn.execute(SOURCE_DDL)
        conn.commit()
    with connection(target_url) as conn:
        conn.execute(TARGET_DDL)
        conn.commit()


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of both target tables, ids included, in key order."""
    with connection(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("accounts", "contacts")}
