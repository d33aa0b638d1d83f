"""Scaffolding a template: valid as written, uncertain choices marked, and it imports the demo once
a person has dealt with exactly the lines marked for review.

The expected counts are computed on the source with independent SQL, following the edits made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from import_pipelines.authoring.fields import SourceColumn, TargetField, name_score, suggest
from import_pipelines.authoring.inspect import inspect_source
from import_pipelines.authoring.scaffold import REVIEW, Scaffold, scaffold_template
from import_pipelines.cli import main
from import_pipelines.db import connection
from import_pipelines.db.introspect import describe_schema
from import_pipelines.pipeline.plan import build_plan
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.templates.loader import load_template
from import_pipelines_tests.helpers import run_import


def scaffold(source_url: str, target_url: str, tables: list[str], **options) -> Scaffold:
    with connection(source_url, read_only=True) as source, connection(target_url, read_only=True) as target:
        return scaffold_template(source, inspect_source(source), describe_schema(target), tables=tables,
                                 source_system="freescout", **options)


def line(text: str, start: str) -> str:
    [found] = [candidate for candidate in text.splitlines() if candidate.strip().startswith(start)]
    return found


def edit(text: str, start: str, replacement: str) -> str:
    """Replace the line that starts with ``start`` (after indentation), as a person would; only REVIEW lines."""
    old = line(text, start)
    assert f"# {REVIEW}" in old, f"{start!r} is not marked for review: {old}"
    indent = old[:len(old) - len(old.lstrip())]
    return text.replace(old, indent + replacement, 1)


@pytest.fixture
def target(target_url: str) -> str:
    migrate(target_url)
    return target_url


def test_scaffold_validates_and_marks_what_is_uncertain(freescout_source: str, target: str, tmp_path: Path) -> None:
    result = scaffold(freescout_source, target, ["tickets", "customer_users"], name="freescout_scaffold")
    path = tmp_path / "scaffold.yaml"
    path.write_text(result.text)
    template = load_template(path)  # valid as written, queries compile-checked
    assert list(template.entities) == ["customer_users", "tickets"]  # referenced entity first
    with connection(target) as conn:  # and it fits the target's tables
        for name in template.entities:
            build_plan(conn, template=template, entity_name=name, profile="check")
    customers, tickets = template.entities["customer_users"], template.entities["tickets"]
    assert customers.query.base.table == "customers" and tickets.query.base.table == "conversations"
    assert tickets.references["customer_id"].entity == "customer_users" and tickets.references["customer_id"].required
    assert tickets.fields["customer_external_id"].column.endswith(".customer_id")
    # exact name matches and the source's key are plain; every guess says REVIEW and why
    text = result.text
    for certain in ("external_id:", "first_name:", "last_name:", "job_title:", "number:", "subject:", "closed_at:",
                    "customer_external_id:", "customer_id:"):
        for candidate in [c for c in text.splitlines() if c.strip().startswith(certain)]:
            assert REVIEW not in candidate, candidate
    for uncertain in ("base: {table: customers", "display_name:", "email:", "phone:", "source_created_at:", "status:",
                      "mailbox:", "body:", "opened_at:", "- {table: emails", "- {table: threads"):
        assert f"# {REVIEW}:" in line(text, uncertain), uncertain
    assert len(result.reviews) == text.count(f"# {REVIEW}:")
    assert {r.path for r in result.reviews} >= {"entities.tickets.fields.status", "entities.customer_users.fields.phone"}
    assert "map each value" in line(text, "status:") and "accepts open, pending, closed" in line(text, "status:")
    assert "# agent_id -> agents: not an entity of this template" in text


def test_scaffold_imports_the_demo_after_the_reviewed_edits(freescout_source: str, target: str, tmp_path: Path) -> None:
    text = scaffold(freescout_source, target, ["customer_users", "tickets"]).text
    # a person's decisions on two REVIEW lines: what the status codes mean, and a name for
    # customers without one; every other REVIEW line is accepted as scaffolded
    text = edit(text, "status:", "status: {case: {column: c.status, map: {1: open, 2: pending, 3: closed, 4: closed}}}")
    text = edit(text, "display_name:", "display_name: {coalesce: [{concat: [c.first_name, c.last_name]},"
                                       " {column: e.email}, {expression: \"'Customer #' || c.id\"}]}")
    path = tmp_path / "reviewed.yaml"
    path.write_text(text)
    template = load_template(path)
    results = run_import(template=template, source_url=freescout_source, target_url=target, profile="scaffolded")

    with connection(freescout_source, read_only=True) as conn:
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        conversations, refused = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE customer_id IS NULL OR subject IS NULL OR created_at IS NULL"
            " OR NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = cv.customer_id)) FROM conversations cv").fetchone()
        first_body = conn.execute("SELECT body FROM threads WHERE conversation_id = 1 ORDER BY id LIMIT 1").fetchone()[0]
    assert results["customer_users"].counts == {"created": customers, "updated": 0, "skipped": 0, "unchanged": 0,
                                                "failed": 0}
    assert results["tickets"].rows == conversations
    assert results["tickets"].counts == {"created": conversations - refused, "updated": 0, "skipped": 0,
                                         "unchanged": 0, "failed": refused}
    with connection(target, read_only=True) as conn:
        status, mailbox, body = conn.execute("SELECT status, mailbox, body FROM tickets WHERE source_system = 'freescout'"
                                             " AND external_id = '1'").fetchone()
        phones = conn.execute("SELECT count(*) FILTER (WHERE phone LIKE '[%'), count(phone) FROM customer_users"
                              ).fetchone()
    assert status in ("open", "pending", "closed") and mailbox in ("Support", "Billing", "Sales")
    assert body == first_body
    assert phones[0] == 0 and phones[1] > 0  # numbers taken out of the JSON, not the JSON text


def test_the_field_matcher_is_one_function(freescout_source: str, target: str) -> None:
    calls = []

    def nothing_fits(columns, samples, target_fields):
        calls.append((len(columns), [t.name for t in target_fields]))
        return []

    text = scaffold(freescout_source, target, ["customer_users"], bases={"customer_users": "customers"},
                    suggest=nothing_fits).text
    assert calls and "first_name" in calls[0][1]
    assert not [c for c in text.splitlines() if c.strip().startswith("first_name:")]
    assert "# first_name: not mapped" in text
    assert REVIEW not in line(text, "base:")  # named by the caller: nothing to review


def test_names_and_types() -> None:
    assert name_score("phones", "phone") == 1.0 and name_score("created_at", "source_created_at") == 0.9
    assert name_score("created_at", "opened_at") == 0.7 and name_score("company", "phone") == 0.0
    columns = [SourceColumn("c.flag", "status", "boolean"), SourceColumn("c.status", "status", "smallint")]
    [(column, field, confidence)] = suggest(columns, {}, [TargetField("status", "text", True)])
    assert column.ref == "c.status" and field.name == "status" and confidence == 0.9


def test_command_line(freescout_source: str, target: str, monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("IPT_SCAFFOLD_SOURCE", freescout_source)
    monkeypatch.setenv("IPT_SCAFFOLD_TARGET", target)
    output = tmp_path / "agents.yaml"
    assert main(["scaffold", "--source-env", "IPT_SCAFFOLD_SOURCE", "--target-env", "IPT_SCAFFOLD_TARGET",
                 "--table", "agents", "--base", "agents=users", "--name", "agents_only", "-o", str(output)]) == 0
    assert "marked REVIEW" in capsys.readouterr().err
    template = load_template(output)
    assert template.name == "agents_only" and template.entities["agents"].query.base.table == "users"
    assert main(["scaffold", "--source-env", "IPT_SCAFFOLD_SOURCE", "--target-env", "IPT_SCAFFOLD_TARGET",
                 "--table", "no_such_table"]) == 2
    assert "no table 'no_such_table'" in capsys.readouterr().err


def test_scaffold_from_another_product(new_database, target: str, tmp_path: Path) -> None:
    """osTicket: prefixed singular tables, keys named ``ticket_id``, no foreign keys."""
    from import_pipelines_tests.authoring.schemas import OSTICKET

    source = new_database("osticket")
    OSTICKET.create(source)
    result = scaffold(source, target, ["tickets"])
    path = tmp_path / "osticket.yaml"
    path.write_text(result.text)
    template = load_template(path)
    tickets = template.entities["tickets"]
    assert tickets.query.base.table == "ost_ticket"  # the prefix is a namespace, not part of the noun
    assert tickets.fields["external_id"].column.endswith(".ticket_id")
    with connection(target) as conn:
        build_plan(conn, template=template, entity_name="tickets", profile="check")
    assert f"# {REVIEW}" not in line(result.text, "base:")  # the same noun once the namespace is set aside
    # tickets.customer_id is NOT NULL and customer_users is no entity here: flagged, not silently left out
    assert "add the entity or map a value" in line(result.text, "customer_id:")
    assert f"# {REVIEW}" in line(result.text, "customer_id:")
    print("\n" + result.text)
