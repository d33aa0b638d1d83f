"""describe_schema against a real schema: columns, computed columns, keys, indexes, references."""

from __future__ import annotations

import psycopg
import pytest

from import_pipelines.db import connection
from import_pipelines.db.introspect import describe_schema
from import_pipelines_tests.mirror.schema import create_schema


def count_statements(conn: psycopg.Connection) -> list[str]:
    """Make ``conn`` record every statement its cursors execute; return the (growing) list."""
    statements: list[str] = []

    class CountingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **options):  # type: ignore[override]
            statements.append(str(query))
            return super().execute(query, params, **options)

    conn.cursor_factory = CountingCursor
    return statements


@pytest.fixture
def schema_url(source_url: str) -> str:
    create_schema(source_url, seed=True)
    with connection(source_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE TABLE other.lonely (id int PRIMARY KEY, code varchar(12) UNIQUE)")
        conn.execute("CREATE TABLE parts (id int, region text) PARTITION BY LIST (region)")
        conn.execute("CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu')")
    return source_url


def test_columns_types_defaults_and_computed_columns(schema_url: str) -> None:
    with connection(schema_url) as conn:
        info = describe_schema(conn)

    invoices = info.table("invoices")
    assert invoices.column_names == ("id", "number", "user_id", "print_no", "net", "vat", "gross")
    assert invoices.column("id").identity == "always"
    assert invoices.column("print_no").identity == "by_default"
    gross = invoices.column("gross")
    assert gross.generated == "stored" and gross.is_generated and gross.is_computed
    assert gross.default is None and "net" in (gross.generation_expression or "")
    assert gross.data_type == "numeric(12,2)"
    assert not invoices.column("net").is_computed

    users = info.table("users")
    assert users.column("id").data_type == "bigint"
    assert users.column("id").default.startswith("nextval(")
    assert users.column("sysmail").nullable is False
    assert users.column("instructor_id").nullable is True
    assert users.column("created_at").default == "now()"
    assert info.table("categories").column("xmlid").char_max_length == 60
    assert info.table("seats").has_column("table")


def test_keys_unique_indexes_and_foreign_keys(schema_url: str) -> None:
    with connection(schema_url) as conn:
        info = describe_schema(conn)

    assert info.table("project_members").primary_key == ("project_id", "user_id")
    assert info.table("users").primary_key == ("id",)

    categories = {key.name: key for key in info.table("categories").unique_keys}
    # a plain unique index counts; the expression index on lower(name) does not
    assert categories["categories_xmlid_idx"].columns == ("xmlid",)
    assert categories["categories_xmlid_idx"].origin == "index"
    assert "categories_lower_name_idx" not in categories
    # partial unique index skipped too
    assert all(key.name != "projects_title_open_idx" for key in info.table("projects").unique_keys)
    seats = info.table("seats").unique_keys
    assert [(key.columns, key.origin) for key in seats] == [(("table", "order"), "constraint")]

    fks = {fk.name: fk for fk in info.table("project_members").foreign_keys}
    project = next(fk for fk in fks.values() if fk.columns == ("project_id",))
    assert (project.ref_table, project.ref_columns, project.on_delete) == ("projects", ("id",), "cascade")
    user = next(fk for fk in fks.values() if fk.columns == ("user_id",))
    assert user.on_delete == "no action" and user.ref_schema == "public"
    regio = next(fk for fk in info.table("projects").foreign_keys if fk.columns == ("regio",))
    assert regio.ref_table == "projects"
    assert {fk.ref_table for fk in info.table("users").foreign_keys} == {"domains", "instructors"}


def test_row_estimates_schemas_and_partitions(schema_url: str) -> None:
    with connection(schema_url) as conn:
        public = describe_schema(conn)
        other = describe_schema(conn, "other")

    assert public.table("users").row_estimate == 20
    assert public.table("parts").partitioned is True
    assert "parts_eu" not in public.tables  # partitions are described through their parent
    assert set(other.tables) == {"lonely"}
    assert other.table("lonely").unique_keys[0].columns == ("code",)
    with pytest.raises(KeyError, match="no table 'nope'"):
        public.table("nope")


def test_fingerprint_ignores_data_but_not_shape(schema_url: str, target_url: str) -> None:
    create_schema(target_url)
    with connection(schema_url) as source, connection(target_url) as target:
        seeded, empty = describe_schema(source), describe_schema(target)
        assert seeded.fingerprint(["users", "projects"]) == empty.fingerprint(["users", "projects"])
        target.execute("ALTER TABLE users ADD COLUMN nickname text")
        changed = describe_schema(target)
    assert changed.fingerprint(["users"]) != seeded.fingerprint(["users"])
    assert changed.fingerprint(["projects"]) == seeded.fingerprint(["projects"])


def test_one_query_per_kind(schema_url: str) -> None:
    with connection(schema_url) as conn:
        statements = count_statements(conn)
        info = describe_schema(conn)
    assert len(info.tables) > 10
    assert len(statements) == 4  # tables, columns, constraints, unique indexes: not per table


def test_details_add_every_index_sizes_counters_and_privileges(schema_url: str) -> None:
    with connection(schema_url) as conn:
        statements = count_statements(conn)
        info = describe_schema(conn, details=True)
    assert len(statements) == 5  # one more catalogue query for every index, still not per table

    categories = {index.name: index for index in info.table("categories").indexes}
    assert categories["categories_lower_name_idx"].columns == ("lower(name)",)
    assert categories["categories_lower_name_idx"].unique and not categories["categories_lower_name_idx"].primary
    assert categories["categories_pkey"].primary and categories["categories_pkey"].method == "btree"
    partial = {index.name: index for index in info.table("projects").indexes}["projects_title_open_idx"]
    assert partial.predicate == "owner_id IS NULL" and "WHERE" in partial.definition
    users = info.table("users")
    assert users.total_bytes and users.total_bytes > 0 and users.readable is True
    assert users.live_rows == 20
    # without details the catalogue reader stays as cheap as before
    with connection(schema_url) as conn:
        plain = describe_schema(conn)
    assert plain.table("users").indexes == () and plain.table("users").total_bytes is None
