"""Corpus kind ``import``: a template and a source database, imported into a Service Vault target.

The template goes through everything a run does: validation, preflight against both databases,
then extract, map, dedupe and load. ``expect`` is either ``error: {path, rule}`` (from validation
or preflight; the target must then be untouched) or the import's outcome: ``counts`` per entity,
fragments of the failed records' errors (``failed_errors``) and ``rows`` a query on the target
returns. Every source row must have exactly one audit record.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from import_pipelines.db import connect, ident
from import_pipelines.service_vault import migrate
from import_pipelines.templates.loader import TemplateError, load_template
from import_pipelines.templates.preflight import preflight
from import_pipelines_tests.corpus.loader import Case, Context, runner
from import_pipelines_tests.corpus.runners.expect import assert_template_error, template_text
from import_pipelines_tests.helpers import run_import

DEFAULT_SOURCE = """
CREATE TABLE people (id bigint PRIMARY KEY, name text, note text, d text);
INSERT INTO people VALUES (1, 'Ann', 'a%b', '2024-03-05'), (2, 'Bob', NULL, NULL), (3, 'Cy', '50%', NULL);
"""
TABLES = ("accounts", "customer_users", "agents", "tickets", "time_entries")


def make_source(ctx: Context, spec: dict[str, Any]) -> str:
    """A fresh source database (``source_encoding: SQL_ASCII`` for a byte-oriented one) with ``source_sql``."""
    url = ctx.new_database("corpus_source")  # dropped after the test, whatever it becomes
    if spec.get("source_encoding") == "SQL_ASCII":
        # the same name again, as a database that stores bytes (a legacy MySQL-era PostgreSQL)
        name = ident(conninfo_to_dict(url)["dbname"])
        with connect(ctx.pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C'"
                                 " LC_CTYPE 'C'").format(name))
    with connect(url) as conn:
        if spec.get("source_encoding") == "SQL_ASCII":
            conn.execute("SET client_encoding = 'SQL_ASCII'")
        conn.execute(spec.get("source_sql", DEFAULT_SOURCE))
        conn.commit()
    return url


def assert_untouched(target: str) -> None:
    """No row in any application table and no control schema: nothing was half-written."""
    with connect(target) as conn:
        for table in TABLES:
            assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident(table))).fetchone() == (0,), table
        assert conn.execute("SELECT to_regnamespace('import_control')").fetchone() == (None,)


@runner("import")
def run(case: Case, ctx: Context) -> None:
    """Validate, preflight and import; compare with ``expect``."""
    source = make_source(ctx, case.spec)
    target = ctx.new_database("corpus_target")
    migrate(target)
    path = ctx.tmp_path / f"{case.id}.yaml"
    path.write_text(template_text(case.spec), encoding="utf-8")
    expect = case.expect
    try:
        template = load_template(path)
        preflight(template, source_url=source, target_url=target, profile="corpus", template_source=str(path))
    except TemplateError as error:
        if "error" not in expect:
            pytest.fail(f"{case.id}: unexpected error {error}")
        assert_template_error(error, expect["error"], source=str(path))
        assert_untouched(target)
        return
    assert "error" not in expect, f"{case.id}: expected {expect['error']}, but the template passed preflight"
    results = run_import(template=template, source_url=source, target_url=target, profile="corpus", run_id="corpus")
    counts = {entity: {action: n for action, n in result.counts.items() if n} for entity, result in results.items()}
    assert counts == expect["counts"]
    with connect(target) as conn:
        for entity, result in results.items():
            audited = conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = 'corpus'"
                                   " AND entity = %s", (entity,)).fetchone()[0]
            assert audited == result.rows  # every source row, exactly once
        errors = [r[0] for r in conn.execute("SELECT error FROM import_control.import_records"
                                             " WHERE run_id = 'corpus' AND action = 'failed' ORDER BY source_id")]
        for fragment in expect.get("failed_errors", []):
            assert any(fragment in (error or "") for error in errors), f"{fragment!r} not in {errors}"
        if "rows" in expect:
            rows = conn.execute(expect["rows"]["sql"]).fetchall()
            assert [list(r) for r in rows] == expect["rows"]["equal"]
