"""Preview: what an import would do, the same counts as a real run, and not one write to the target.

"Nothing written" is judged on the target itself: the write counters of every table in
``pg_stat_user_tables`` (inserted, updated, deleted, HOT-updated tuples) and the ``xmin`` of
every row of every table (public and ``import_control``) are the same after a preview as before
it. The real import between the previews shows that the same measurement sees writes.
"""

from __future__ import annotations

import json
import time

import pytest

from import_pipelines.authoring.preview import ACTIONS, preview_template, render_text
from import_pipelines.cli import main
from import_pipelines.db import connect
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.templates.loader import load_template
from import_pipelines.templates.model import Template
from import_pipelines_tests.helpers import run_import

PROFILE = "demo"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template("freescout")


def quiet(url: str) -> None:
    """Wait until no other session is connected to the database and its statistics have settled.

    A session reports its counters when it ends; a snapshot taken before that could miss a write.
    """
    deadline = time.monotonic() + 15
    with connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND pid <> pg_backend_pid()").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        previous = None
        while time.monotonic() < deadline:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            current = write_counters(conn)
            if current == previous:
                return
            previous = current
            time.sleep(0.3)


def write_counters(conn) -> list[tuple]:
    return conn.execute("SELECT schemaname, relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd"
                        " FROM pg_stat_user_tables WHERE schemaname !~ '^pg_temp' ORDER BY 1, 2").fetchall()


def target_state(url: str) -> tuple[list[tuple], dict[str, set[tuple[str, str]]]]:
    """The write counters of every table, and ``(ctid, xmin)`` of every row of every table."""
    quiet(url)
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        counters = write_counters(conn)
        tables = conn.execute("SELECT schemaname, tablename FROM pg_tables"
                              " WHERE schemaname IN ('public', 'import_control')").fetchall()
        rows = {f"{schema}.{table}": set(conn.execute(f'SELECT ctid::text, xmin::text FROM "{schema}"."{table}"'))
                for schema, table in tables}
    return counters, rows


def assert_same_counts(preview, results) -> None:
    for name, result in results.items():
        shown = preview.entity(name)
        assert shown.counts["source_rows"] == result.rows, name
        assert shown.would == {a: result.counts[a] for a in ACTIONS}, name


def test_preview_writes_nothing_and_counts_like_a_real_run(freescout_source: str, target_url: str,
                                                           template: Template) -> None:
    migrate(target_url)
    before = target_state(target_url)
    preview = preview_template(template, source_url=freescout_source, target_url=target_url, profile=PROFILE)
    assert target_state(target_url) == before
    with connect(target_url) as conn:  # not even the import's own schema was created
        assert conn.execute("SELECT to_regnamespace('import_control')").fetchone()[0] is None

    results = run_import(template=template, source_url=freescout_source, target_url=target_url, profile=PROFILE)
    assert_same_counts(preview, results)
    assert sum(preview.entity("tickets").would.values()) > 2000 and preview.entity("tickets").would["failed"] > 0
    imported = target_state(target_url)
    assert imported != before  # the measurement sees writes

    # once imported, the preview knows the import's state: everything unchanged, as a second run finds
    again = preview_template(template, source_url=freescout_source, target_url=target_url, profile=PROFILE)
    assert target_state(target_url) == imported
    second = run_import(template=template, source_url=freescout_source, target_url=target_url, profile=PROFILE)
    assert_same_counts(again, second)
    assert again.entity("customer_users").would["unchanged"] == results["customer_users"].counts["created"]


def test_what_the_preview_shows(freescout_source: str, target_url: str, template: Template) -> None:
    migrate(target_url)
    preview = preview_template(template, source_url=freescout_source, target_url=target_url, entities=["tickets"],
                               rows=3)
    assert [e.entity for e in preview.entities] == ["tickets"]
    tickets = preview.entity("tickets")
    assert tickets.sql.startswith("SELECT ") and "FROM \"conversations\" AS \"cv\"" in tickets.sql
    assert "\"cv\".\"state\" = 2" in tickets.sql  # bound filter values shown in place
    assert len(tickets.rows) == 3 and tickets.columns[0] == "external_id" and tickets.rows[0]["external_id"]
    with connect(freescout_source) as conn:
        no_customer = conn.execute(
            "SELECT count(*) FROM conversations cv WHERE state = 2 AND status IS DISTINCT FROM 4"
            " AND (customer_id IS NULL OR NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = cv.customer_id))"
        ).fetchone()[0]
    # a ticket fails without a customer, or with one that waits for review as a possible duplicate
    assert tickets.would["failed"] >= no_customer > 0
    reasons = {r.reason.split(" ", 1)[0] for r in tickets.rejected}
    assert reasons == {"customer_id:"} and all(r.step == "load" for r in tickets.rejected)
    assert all("required reference (customer_external_id) is empty" in r.reason
               or "no customer_users with external_id" in r.reason for r in tickets.rejected)
    # as a real run finds
    assert run_import(template=template, source_url=freescout_source, target_url=target_url,
                      profile=preview.profile)["tickets"].counts["failed"] == tickets.would["failed"]
    # the map step's own rejects are shown with their rule
    customers = preview_template(template, source_url=freescout_source, target_url=target_url,
                                 entities=["customer_users"]).entity("customer_users")
    assert customers.masked_fields == {"email": "email", "phone": "phone"}
    assert all(row["email"] in (None, "<email>") for row in customers.rows)
    text = render_text(preview)
    assert "nothing was written" in text and "would: created" in text and "rejected (" in text


def test_map_rejections_are_named(freescout_source: str, target_url: str, template: Template) -> None:
    migrate(target_url)
    with connect(target_url, autocommit=True) as conn:  # a narrower target column: long subjects no longer fit
        conn.execute("ALTER TABLE tickets ALTER COLUMN subject TYPE varchar(20)")
    preview = preview_template(template, source_url=freescout_source, target_url=target_url, entities=["tickets"])
    tickets = preview.entity("tickets")
    with connect(freescout_source) as conn:
        too_long = conn.execute("SELECT count(*) FROM conversations WHERE state = 2 AND status IS DISTINCT FROM 4"
                                " AND length(coalesce(nullif(btrim(subject), ''), '(no subject)')) > 20").fetchone()[0]
    assert tickets.counts["rejected_by_map"] == too_long > 0
    map_rejects = [r for r in tickets.rejected if r.step == "map"]
    assert map_rejects and all("subject:" in r.reason and "holds 20" in r.reason for r in map_rejects)


def test_command_line(freescout_source: str, target_url: str, monkeypatch, capsys) -> None:
    migrate(target_url)
    monkeypatch.setenv("IPT_PREVIEW_SOURCE", freescout_source)
    monkeypatch.setenv("IPT_PREVIEW_TARGET", target_url)
    args = ["preview", "freescout", "--entity", "agents", "--source-env", "IPT_PREVIEW_SOURCE",
            "--target-env", "IPT_PREVIEW_TARGET"]
    assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    [agents] = document["entities"]
    assert agents["entity"] == "agents" and agents["would"]["created"] == agents["counts"]["source_rows"] > 0
    assert main(args) == 0
    assert "entity agents -> public.agents" in capsys.readouterr().out
    assert main(["preview", "no_such_template", "--source-env", "IPT_PREVIEW_SOURCE",
                 "--target-env", "IPT_PREVIEW_TARGET"]) == 2
