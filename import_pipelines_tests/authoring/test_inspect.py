"""Inspecting a source: the catalogue, masked samples, the JSON document, and the statements 500 tables take."""

from __future__ import annotations

import json
import re

import pytest

from import_pipelines.authoring.inspect import TABLES_PER_STATEMENT, inspect_source, render_text
from import_pipelines.authoring.joins import PROBES_PER_STATEMENT
from import_pipelines.authoring.masking import kind_by_name, kind_by_value, mask_kind
from import_pipelines.cli import main
from import_pipelines.db import connection
from import_pipelines.demo.wide_schema import create_wide_schema, table_name
from import_pipelines_tests.db.test_introspect import count_statements

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def test_catalogue_of_the_freescout_demo(freescout_source: str) -> None:
    with connection(freescout_source, read_only=True) as conn:
        catalogue = inspect_source(conn)
        real_customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
    document = catalogue.to_json()
    tables = {t["name"]: t for t in document["tables"]}
    assert set(tables) == {"mailboxes", "users", "customers", "emails", "conversations", "threads", "timelogs"}
    customers = tables["customers"]
    assert customers["row_estimate"] == real_customers  # the generator analyses its tables
    assert customers["size_bytes"] > 8192 and customers["size"].endswith(("kB", "MB"))
    assert customers["primary_key"] == ["id"] and customers["readable"] is True
    columns = {c["name"]: c for c in customers["columns"]}
    assert columns["id"]["type"] == "bigint" and columns["id"]["primary_key"] and not columns["id"]["nullable"]
    assert columns["id"]["default"].startswith("nextval(")
    assert columns["first_name"]["type"] == "character varying(255)" and columns["first_name"]["nullable"]
    assert 1 <= len(columns["first_name"]["samples"]) <= 3 and columns["first_name"]["masked"] is None
    indexes = {i["name"]: i for i in tables["emails"]["indexes"]}
    assert indexes["emails_email_unique"]["unique"] and indexes["emails_email_unique"]["columns"] == ["email"]
    assert indexes["emails_customer_id_index"]["method"] == "btree"
    assert indexes["emails_pkey"]["primary"]
    # secrets and personal data: masked by name or by value, and nothing that looks like an address leaks
    users = {c["name"]: c for c in tables["users"]["columns"]}
    assert users["password"]["masked"] == "secret" and users["password"]["samples"] == ["<secret>"] * len(
        users["password"]["samples"])
    assert users["email"]["masked"] == "email" and {c["name"]: c for c in tables["customers"]["columns"]}[
        "phones"]["masked"] == "phone"
    text = json.dumps(document)
    assert not EMAIL.search(text), EMAIL.search(text)
    assert not EMAIL.search(render_text(catalogue))
    # the join suggestions travel in the same document
    joins = {(j["from"], j["to"]) for j in document["join_suggestions"]}
    assert ("emails.customer_id", "customers.id") in joins


def test_unmasked_shows_the_values(freescout_source: str) -> None:
    with connection(freescout_source, read_only=True) as conn:
        catalogue = inspect_source(conn, unmasked=True, joins=False)
        first = conn.execute("SELECT email FROM emails ORDER BY ctid LIMIT 1").fetchone()[0]
    emails = {c["name"]: c for c in next(t for t in catalogue.to_json()["tables"] if t["name"] == "emails")["columns"]}
    assert emails["email"]["samples"][0] == first and emails["email"]["masked"] is None
    assert catalogue.to_json()["join_suggestions"] == []


@pytest.mark.parametrize(("value", "data_type", "kind"), [
    ("$2y$10$abcdefghijklmnopqrstuu9Yb0t0YHmd8k2xgCqmeXE5Zw3p8u9Gq", "character varying(255)", "secret"),
    ("$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", "text", "secret"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "text", "secret"),
    ("5f4dcc3b5aa765d61d8327deb882cf99", "text", "secret"),
    ("aB3dE6gH9jK2mN5pQ8sT1vW4yZ7", "text", "secret"),
    ("Jane.Doe@Example.org", "text", "email"),
    ("+49 (30) 123-4567", "character varying(60)", "phone"),
    ("2024-01-31 12:00:00", "text", None),
    ("12345678", "bigint", None),
    ("Please call me back tomorrow", "text", None),
])
def test_values_that_look_like_secrets_or_personal_data(value: str, data_type: str, kind: str | None) -> None:
    assert kind_by_value(value, data_type=data_type) == kind


def test_names_that_say_what_a_column_holds() -> None:
    assert kind_by_name("remember_token") == kind_by_name("apiKey") == kind_by_name("encrypted_password") == "secret"
    assert kind_by_name("customer_email") == kind_by_name("cc") == "email"
    assert kind_by_name("mobile") == "phone" and kind_by_name("date_of_birth") == "personal"
    assert kind_by_name("first_name") is None and kind_by_name("key_count") is None
    assert mask_kind("notes", ["fine", "call +1 555 0100"]) is None  # a phone inside prose is not the column
    assert mask_kind("reference", ["ok", "user@example.com"]) == "email"


def test_five_hundred_tables(new_database) -> None:
    url = new_database("wide")
    create_wide_schema(url, tables=500)
    with connection(url, read_only=True) as conn:
        statements = count_statements(conn)
        catalogue = inspect_source(conn)
    # its time is benchmarks/inspect_source.py's to print; here, how many statements it sends
    assert len(catalogue.info.tables) == 500
    # catalogue queries by kind, then samples and join probes in batches of tables: not per table
    assert len(statements) <= 5 + 1 + 500 / TABLES_PER_STATEMENT + 500 / PROBES_PER_STATEMENT
    last = catalogue.to_json()["tables"][-1]
    assert last["name"] == table_name(499) and last["row_estimate"] == 20 and len(last["indexes"]) == 2
    found = {(j.from_ref, j.to_ref): j for j in catalogue.join_suggestions}
    assert found[(f"{table_name(10)}.{table_name(5)}_ref", f"{table_name(5)}.id")].confidence == 1.0
    named = found[(f"{table_name(10)}.{table_name(70 % 10)}_id", f"{table_name(70 % 10)}.id")]
    assert named.confidence > 0.5 and named.evidence["match_share"] == 1.0


def test_command_line_json_never_shows_the_password(freescout_source: str, monkeypatch, capsys) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    # trust authentication ignores the password, so the URL still connects
    url = make_conninfo(**{**conninfo_to_dict(freescout_source), "password": "pw-must-not-leak"})
    monkeypatch.setenv("IPT_INSPECT_SOURCE", url)
    assert main(["inspect", "--source-env", "IPT_INSPECT_SOURCE", "--json"]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)
    assert "pw-must-not-leak" not in out
    suggestion = next(j for j in document["join_suggestions"] if j["from"] == "threads.conversation_id")
    assert suggestion["to"] == "conversations.id" and 0.5 < suggestion["confidence"] <= 1
    assert {"match_share", "cardinality", "types", "pattern"} <= set(suggestion["evidence"])
    assert main(["inspect", "--source-env", "IPT_INSPECT_SOURCE"]) == 0
    assert "join suggestions" in capsys.readouterr().out


def test_a_role_that_may_read_only_some_tables(source_url: str) -> None:
    import uuid

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    role = f"ipt_reader_{uuid.uuid4().hex[:8]}"
    with connection(source_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text);"
                     " CREATE TABLE orders (id int PRIMARY KEY, customer_id int, secret text);"
                     " INSERT INTO customers VALUES (1, 'Ann'), (2, 'Bo'); INSERT INTO orders VALUES (1, 1, 'x');"
                     f" CREATE ROLE {role} LOGIN; GRANT SELECT ON customers TO {role}")
    try:
        with connection(make_conninfo(**{**conninfo_to_dict(source_url), "user": role}), read_only=True) as conn:
            catalogue = inspect_source(conn)
        tables = {t["name"]: t for t in catalogue.to_json()["tables"]}
        assert tables["orders"]["readable"] is False and tables["customers"]["readable"] is True
        assert all(c["samples"] == [] for c in tables["orders"]["columns"])
        assert {c["name"]: c["samples"] for c in tables["customers"]["columns"]}["name"] == ["Ann", "Bo"]
        [orders] = catalogue.join_suggestions  # the name still suggests it; the data could not be read
        assert orders.evidence["sampled"] == 0 and "not readable" in orders.evidence["note"]
        assert "(no SELECT privilege)" in render_text(catalogue)
    finally:
        with connection(source_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
