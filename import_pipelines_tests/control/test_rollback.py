"""Rollback of a run against real PostgreSQL: the target exactly as before the run, row by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from import_pipelines.control.rollback import RollbackError, RollbackRefused, rollback_run
from import_pipelines.db import connection
from import_pipelines.templates.graph import dependency_order
from import_pipelines_tests.control.undo_fixture import create_tables, snapshot, template
from import_pipelines_tests.helpers import run_import


def _control(url: str) -> dict[str, object]:
    with connection(url) as conn:
        return {
            "audit": conn.execute("SELECT run_seq, stream_id, record_no, action, rolled_back_by"
                                  " FROM import_control.audit_records ORDER BY 1, 2, 3").fetchall(),
            "state": conn.execute("SELECT * FROM import_control.record_state ORDER BY 1, 2").fetchall(),
            "runs": conn.execute("SELECT run_id FROM import_control.runs ORDER BY run_seq").fetchall()}


@pytest.fixture
def after_run_a(source_url: str, target_url: str) -> tuple[str, str, dict]:
    """A first import (3 accounts, 20 contacts), then run A: 10 contacts created (of a new account), 5 updated,
    one account created and one updated.

    Returns the source, the target and the target's rows as they were before run A.
    """
    create_tables(source_url, target_url)
    with connection(source_url) as conn:
        conn.execute("INSERT INTO src_accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g")
        conn.execute("INSERT INTO src_contacts SELECT g, g % 3 + 1, 'contact ' || g, 'note ' || g, g::text"
                     " FROM generate_series(1, 20) g")
        conn.commit()
    run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm", run_id="first")
    before = snapshot(target_url)
    with connection(source_url) as conn:
        conn.execute("UPDATE src_contacts SET name = name || ' (moved)', account_id = 1, note = NULL WHERE id <= 5")
        conn.execute("INSERT INTO src_accounts VALUES (4, 'account 4')")
        conn.execute("UPDATE src_accounts SET name = 'account three' WHERE id = 3")
        conn.execute("INSERT INTO src_contacts SELECT g, 4, 'contact ' || g, 'new', '7' FROM generate_series(21, 30) g")
        conn.commit()
    results = run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm",
                         run_id="run-a")
    assert (results["contacts"].counts["created"], results["contacts"].counts["updated"]) == (10, 5)
    assert (results["accounts"].counts["created"], results["accounts"].counts["updated"]) == (1, 1)
    assert snapshot(target_url) != before
    return source_url, target_url, before


def test_rollback_leaves_the_target_exactly_as_before_the_run(after_run_a: tuple[str, str, dict],
                                                              tmp_path: Path) -> None:
    source_url, target_url, before = after_run_a
    with connection(target_url) as conn:
        outcome = rollback_run(conn, "run-a", order=dependency_order(template()))
    assert snapshot(target_url) == before
    # the contacts (which point at the accounts) first
    assert [(e.entity, e.deleted, e.restored, e.missing) for e in outcome.entities] == [
        ("contacts", 10, 5, 0), ("accounts", 1, 1, 0)]
    with connection(target_url) as conn:
        marked = conn.execute("SELECT a.action, count(*) FROM import_control.audit_records AS a JOIN import_control.runs"
                              " AS r ON r.run_seq = a.run_seq WHERE r.run_id = 'run-a' AND a.rolled_back_by IS NOT NULL"
                              " GROUP BY 1 ORDER BY 1").fetchall()
        rolled = conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = %s"
                              " AND action = 'rolled_back'", (outcome.rollback_run_id,)).fetchone()[0]
    assert marked == [("created", 11), ("updated", 6)] and rolled == 17
    with connection(target_url) as conn:  # an export of the run's records says which rollback undid them
        from import_pipelines.control.export import export

        exported = export(conn, what="records", fmt="json", path=tmp_path / "a.json", run_id="run-a")
    records = json.loads(exported.path.read_text())
    assert {r["rolled_back_by"] for r in records} == {outcome.rollback_run_id} and len(records) == 17
    with pytest.raises(RollbackError, match="rolled back already"):
        with connection(target_url) as conn:
            rollback_run(conn, "run-a")
    # the undone records' state is gone: importing again creates and updates them again
    again = run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm",
                       run_id="again")
    assert (again["contacts"].counts["created"], again["contacts"].counts["updated"]) == (10, 5)
    with connection(target_url) as conn:
        names = conn.execute("SELECT count(*) FROM contacts WHERE name LIKE '%(moved)'").fetchone()[0]
    assert names == 5


def test_a_later_change_to_the_same_rows_refuses_unless_forced(after_run_a: tuple[str, str, dict]) -> None:
    source_url, target_url, before = after_run_a
    with connection(source_url) as conn:
        conn.execute("UPDATE src_contacts SET note = 'changed by B' WHERE id IN (2, 25)")
        conn.commit()
    run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm", run_id="run-b")
    with connection(target_url) as conn:
        touched = sorted(str(i) for (i,) in conn.execute("SELECT id FROM contacts WHERE external_id IN ('2', '25')"))
    control = _control(target_url)
    with connection(target_url) as conn, pytest.raises(RollbackRefused) as refused:
        rollback_run(conn, "run-a")
    assert sorted((c.table, c.target_id, c.later_run, c.action) for c in refused.value.conflicts) == [
        ("public.contacts", tid, "run-b", "updated") for tid in touched]
    assert all(tid in str(refused.value) for tid in touched) and "run-b" in str(refused.value)
    assert _control(target_url) == control  # nothing written
    with connection(target_url) as conn:
        outcome = rollback_run(conn, "run-a", force=True)
    assert outcome.total("deleted") == 11 and outcome.total("restored") == 6
    assert snapshot(target_url) == before


def test_dry_run_shows_what_it_would_do_and_writes_nothing(after_run_a: tuple[str, str, dict]) -> None:
    _, target_url, _ = after_run_a
    rows, control = snapshot(target_url), _control(target_url)
    with connection(target_url) as conn:
        outcome = rollback_run(conn, "run-a", dry_run=True)
    assert snapshot(target_url) == rows and _control(target_url) == control
    assert [(e.entity, e.deleted, e.restored) for e in outcome.entities] == [("contacts", 10, 5), ("accounts", 1, 1)]
    with connection(target_url) as conn:
        created = sorted(str(i) for (i,) in conn.execute("SELECT id FROM contacts WHERE note = 'new'"))
    assert outcome.entities[0].samples["created"] == created
    text = outcome.render_text()
    assert "would delete 10 created, would restore 5 updated" in text and "dry run" in text


def test_rollback_command_and_job(after_run_a: tuple[str, str, dict], monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from import_pipelines.cli import main
    from import_pipelines.defs.control.undo import rollback_import_run

    _, target_url, before = after_run_a
    monkeypatch.setenv("CRM_TARGET_URL", target_url)
    assert main(["rollback", "run-a", "--dry-run", "--target-env", "CRM_TARGET_URL"]) == 0
    assert "would delete 10 created" in capsys.readouterr().out
    assert snapshot(target_url) != before
    result = rollback_import_run.execute_in_process(run_config={"ops": {"rollback_run_op": {"config": {
        "run_id": "run-a", "target_url_env": "CRM_TARGET_URL"}}}})
    assert result.success and result.output_for_node("rollback_run_op") == 17
    assert snapshot(target_url) == before
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = %s"
                            " AND action = 'rolled_back'", (result.run_id,)).fetchone()[0] == 17
    assert main(["rollback", "run-a", "--target-env", "CRM_TARGET_URL"]) == 1
    assert "rolled back already" in capsys.readouterr().err


DEDUPED = {
    "name": "people", "source_system": "crm", "mode": "upsert",
    "entities": {"customer_users": {
        "target": "customer_users", "source_id": "external_id",
        "query": {"base": {"table": "people", "alias": "p"}},
        "fields": {"external_id": "p.id", "first_name": "p.first_name", "last_name": "p.last_name",
                   "display_name": {"concat": ["p.first_name", "p.last_name"]}, "email": "p.email", "phone": "p.phone",
                   "job_title": "p.job_title", "source_created_at": "p.updated_at"},
        "dedupe": {"strategy": "fuzzy", "primary": ["email", "phone"], "secondary": ["first_name", "last_name"]},
        "survivor_updated": "source_created_at"}},
}


def test_a_row_merged_as_a_duplicate_is_restored_as_it_was(source_url: str, target_url: str) -> None:
    from import_pipelines.service_vault import migrate
    from import_pipelines.templates.loader import parse_template

    migrate(target_url)
    with connection(target_url) as conn:
        conn.execute("INSERT INTO customer_users (source_system, external_id, first_name, last_name, display_name,"
                     " email, phone) VALUES ('app', 'u-1', 'Johnny', 'Doe', 'Johnny Doe', 'john.doe@example.com',"
                     " '5550102000')")
        conn.commit()
        before = conn.execute("SELECT * FROM customer_users ORDER BY id").fetchall()
    with connection(source_url) as conn:
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, first_name text, last_name text, email text,"
                     " phone text, job_title text, updated_at timestamptz)")
        # 10 and 12 are the existing Johnny Doe (10 the newer copy); 11 is new
        conn.execute("INSERT INTO people VALUES (10, 'John', 'Doe', 'JOHN.DOE@example.com', '(555) 010-2000', 'CTO',"
                     " '2024-05-01'), (12, 'Jon', 'Doe', 'john.doe@example.com', '555-010-2000', NULL, '2024-04-01'),"
                     " (11, 'Ann', 'Lee', 'ann.lee@example.net', '555 999 0000', NULL, '2024-05-01')")
        conn.commit()
    template = parse_template(DEDUPED)
    counts = run_import(template=template, source_url=source_url, target_url=target_url, profile="crm",
                        run_id="merge")["customer_users"].counts
    assert (counts["updated"], counts["created"], counts["skipped"]) == (1, 1, 1)
    with connection(target_url) as conn:
        assert conn.execute("SELECT first_name FROM customer_users WHERE external_id = 'u-1'").fetchone() == ("John",)
        outcome = rollback_run(conn, "merge")
        after = conn.execute("SELECT * FROM customer_users ORDER BY id").fetchall()
        states = conn.execute("SELECT count(*) FROM import_control.record_state").fetchone()[0]
    assert after == before and states == 0
    assert (outcome.total("deleted"), outcome.total("restored")) == (1, 1)


def test_a_row_still_referenced_stops_that_entity_and_a_second_rollback_continues(
        after_run_a: tuple[str, str, dict]) -> None:
    source_url, target_url, before = after_run_a
    with connection(source_url) as conn:  # run B adds a contact of the account run A created
        conn.execute("INSERT INTO src_contacts VALUES (40, 4, 'contact 40', NULL, '1')")
        conn.commit()
    run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm", run_id="run-b")
    with connection(target_url) as conn, pytest.raises(RollbackError) as stopped:
        rollback_run(conn, "run-a")
    assert "accounts: rows run run-a created in public.accounts are still referenced by other rows" in str(stopped.value)
    assert "(contacts were)" in str(stopped.value)
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM contacts WHERE note = 'new'").fetchone()[0] == 0
        assert conn.execute("SELECT name FROM accounts WHERE external_id = '3'").fetchone() == ("account three",)
        conn.execute("DELETE FROM contacts WHERE external_id = '40'")
        conn.commit()
        outcome = rollback_run(conn, "run-a")
        assert [e.entity for e in outcome.entities] == ["accounts"]
    assert snapshot(target_url) == before


def test_a_run_whose_audit_is_past_retention_says_so(after_run_a: tuple[str, str, dict]) -> None:
    _, target_url, _ = after_run_a
    with connection(target_url) as conn:
        conn.execute("DELETE FROM import_control.audit_records WHERE run_seq = (SELECT run_seq FROM"
                     " import_control.runs WHERE run_id = 'run-a')")
        conn.commit()
        with pytest.raises(RollbackError, match="created or updated 17 rows, but its per-record audit is gone"):
            rollback_run(conn, "run-a")
        with pytest.raises(RollbackError, match="no import run 'nope'"):
            rollback_run(conn, "nope")


def test_the_freescout_import_rolls_back_entity_by_entity_to_an_empty_target(source_url: str, target_url: str) -> None:
    from import_pipelines.demo.freescout import add_customers, change_customers, generate_freescout
    from import_pipelines.service_vault import migrate
    from import_pipelines.templates.loader import load_template

    tables = ("accounts", "customer_users", "agents", "tickets", "time_entries")

    def rows() -> dict[str, list]:
        with connection(target_url) as conn:
            return {t: conn.execute(f"SELECT x::text FROM {t} AS x ORDER BY 1").fetchall() for t in tables}

    generate_freescout(source_url, customers=120)
    migrate(target_url)
    freescout = load_template("freescout")
    empty = rows()
    run_import(template=freescout, source_url=source_url, target_url=target_url, profile="fs", run_id="first")
    after_first = rows()
    assert all(after_first[t] for t in tables)
    change_customers(source_url, [1, 2, 3])
    add_customers(source_url, 2)
    counts = run_import(template=freescout, source_url=source_url, target_url=target_url, profile="fs",
                        run_id="second")["customer_users"].counts
    assert (counts["created"], counts["updated"]) == (2, 3)
    with connection(target_url) as conn:
        second = rollback_run(conn, "second", order=dependency_order(freescout))
        assert rows() == after_first
        # the first run, every entity: time entries before tickets before customers and agents
        first = rollback_run(conn, "first", order=dependency_order(freescout))
    assert rows() == empty
    assert second.total("deleted") == 2 and second.total("restored") == 3
    order = [e.entity for e in first.entities]
    assert order.index("time_entries") < order.index("tickets") < order.index("customer_users") < order.index(
        "accounts") and order.index("tickets") < order.index("agents")
    assert first.total("deleted") == sum(len(after_first[t]) for t in tables)


CYCLE = {
    "name": "school", "source_system": "school",
    "entities": {
        "users": {"target": "users", "source_id": "external_id",
                  "query": {"base": {"table": "src_users", "alias": "u"}},
                  "fields": {"external_id": "u.id", "name": "u.name", "instructor_key": "u.instructor_id"},
                  "references": {"instructor_id": {"entity": "instructors", "field": "instructor_key"}}},
        "instructors": {"target": "instructors", "source_id": "external_id",
                        "query": {"base": {"table": "src_instructors", "alias": "i"}},
                        "fields": {"external_id": "i.id", "user_key": "i.user_id"},
                        "references": {"user_id": {"entity": "users", "field": "user_key", "required": True}}},
    },
}


def test_a_reference_cycle_is_undone_by_emptying_its_late_column_first(source_url: str, target_url: str) -> None:
    from import_pipelines.pipeline.late_seed import resolve_pending
    from import_pipelines.templates.loader import parse_template

    with connection(source_url) as conn:
        conn.execute("CREATE TABLE src_users (id int PRIMARY KEY, name text, instructor_id int);"
                     " CREATE TABLE src_instructors (id int PRIMARY KEY, user_id int NOT NULL)")
        conn.execute("INSERT INTO src_users SELECT g, 'user ' || g, CASE WHEN g <= 3 THEN g END"
                     " FROM generate_series(1, 6) g; INSERT INTO src_instructors SELECT g, g FROM generate_series(1, 3) g")
        conn.commit()
    with connection(target_url) as conn:
        conn.execute("CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, source_system text NOT NULL,"
                     " external_id text, name text, instructor_id bigint, UNIQUE (source_system, external_id));"
                     " CREATE TABLE instructors (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                     " source_system text NOT NULL, external_id text, user_id bigint NOT NULL REFERENCES users (id),"
                     " UNIQUE (source_system, external_id));"
                     " ALTER TABLE users ADD FOREIGN KEY (instructor_id) REFERENCES instructors (id)")
        conn.commit()
    school = parse_template(CYCLE)
    run_import(template=school, source_url=source_url, target_url=target_url, profile="school", run_id="cycle")
    resolve_pending(target_url, template=school, profile="school", run_id="cycle", source_system="school")
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE instructor_id IS NOT NULL").fetchone()[0] == 3
        outcome = rollback_run(conn, "cycle", order=dependency_order(school))
        left = conn.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM instructors)").fetchone()
    assert left == (0, 0) and outcome.total("deleted") == 9
