"""The FreeScout import end to end against real databases: the issue's acceptance tests.

Expected numbers are never taken from the import itself: each is counted on the source with
independent SQL (or Python) following the rules the template documents.
"""

from __future__ import annotations

from collections import Counter

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import pytest
import yaml

from import_pipelines.db import connect, drop_database, ensure_database
from import_pipelines.demo import freescout as fs
from import_pipelines.demo.freescout import add_customers, change_customers, generate_freescout
from import_pipelines.extract import postgres as extract_module
from import_pipelines.pipeline.checks import reconcile
from import_pipelines.pipeline.plan import MappingError
from import_pipelines.pipeline.steps import EntityRun, LoadResult, extract
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.templates.loader import TEMPLATE_DIR, load_template, parse_template
from import_pipelines.templates.model import Template
from import_pipelines_tests.helpers import run_import

CUSTOMERS = 1500
SYSTEM = "freescout"
ROBOT_EVERY = 97  # conversations and timelogs assigned to FreeScout's robot user
TABLES = {"accounts": "accounts", "customer_users": "customer_users", "agents": "agents", "tickets": "tickets",
          "time_entries": "time_entries"}


@dataclass(frozen=True)
class Imported:
    """A generated FreeScout source and a Service Vault target after one import."""

    source: str
    target: str
    results: dict[str, LoadResult]
    run_id: str


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template("freescout")


def generate_and_import(source: str, target: str, template: Template, run_id: str = "first") -> Imported:
    generate_freescout(source, customers=CUSTOMERS)
    with connect(source) as conn:  # the demo never assigns work to its robot user; some real installations do
        for table in ("conversations", "timelogs"):
            conn.execute(f"UPDATE {table} SET user_id = (SELECT id FROM users WHERE type = 2)"
                         f" WHERE id % {ROBOT_EVERY} = 0")
        conn.commit()
    migrate(target)
    return Imported(source, target, run_import(template=template, source_url=source, target_url=target,
                                               run_id=run_id), run_id)


@pytest.fixture(scope="module")
def first_run(pg_server: str, template: Template) -> Iterator[Imported]:
    """One import shared by the tests that only read its outcome."""
    names = [f"ipt_fs_{label}_{uuid.uuid4().hex[:10]}" for label in ("source", "target")]
    try:
        source, target = (ensure_database(pg_server, name) for name in names)
        yield generate_and_import(source, target, template)
    finally:
        for name in names:
            drop_database(pg_server, name)


@pytest.fixture
def imported(new_database: Callable[[str], str], template: Template) -> Imported:
    """A private import for a test that changes the source or runs again."""
    return generate_and_import(new_database("fs_source"), new_database("fs_target"), template)


def fetch(url: str, query: str, params: tuple | dict | None = None) -> list[tuple]:
    with connect(url, read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def audit(url: str, run_id: str, entity: str, action: str | None = None) -> list[tuple]:
    """``(source_id, action, error, before_image)`` audit rows of one run and entity."""
    return fetch(url, "SELECT source_id, action, error, before_image FROM import_control.import_records"
                      " WHERE run_id = %s AND entity = %s AND (%s::text IS NULL OR action = %s)",
                 (run_id, entity, action, action))


def duplicates(url: str, run_id: str, entity: str = "customer_users") -> dict[str, str]:
    """``{source id: duplicate_of}`` of the rows a run skipped as duplicates."""
    return dict(fetch(url, "SELECT source_id, duplicate_of FROM import_control.import_records WHERE run_id = %s"
                           " AND entity = %s AND action = 'skipped' AND duplicate_of IS NOT NULL", (run_id, entity)))


def skipped_by_mode(url: str, run_id: str, entity: str = "customer_users") -> set[str]:
    """Source ids a run skipped because of its mode (not as duplicates, not waiting for review)."""
    return {sid for (sid,) in fetch(url, "SELECT source_id FROM import_control.import_records WHERE run_id = %s"
                                         " AND entity = %s AND action = 'skipped' AND duplicate_of IS NULL"
                                         " AND error IS NULL", (run_id, entity))}


def held(url: str, run_id: str, entity: str = "customer_users") -> set[str]:
    """Source ids a run held back as possible duplicates: skipped, waiting for a person's decision."""
    return {sid for (sid,) in fetch(url, "SELECT source_id FROM import_control.import_records WHERE run_id = %s"
                                         " AND entity = %s AND action = 'skipped' AND duplicate_of IS NULL"
                                         " AND error LIKE 'waiting for review: %%'", (run_id, entity))}


def customer_index(customer_id: int) -> int:
    """The generator's customer index of an id (after every CUSTOMER_ID_HOLE_EVERY customers one id is unused)."""
    return customer_id - (customer_id - 1) // (fs.CUSTOMER_ID_HOLE_EVERY + 1)


def xmins(url: str) -> dict[tuple[str, int], str]:
    """The ``xmin`` of every target row: it changes whenever a row is rewritten."""
    found = {}
    for table in TABLES.values():
        found.update({(table, row_id): xmin for row_id, xmin in fetch(url, f"SELECT id, xmin::text FROM {table}")})
    return found


def state_xmins(url: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(entity, source id): (xmin, source_hash)}`` of ``import_control.record_state``."""
    return {(entity, sid): (xmin, digest) for entity, sid, xmin, digest in fetch(
        url, "SELECT entity, source_id, r.xmin::text, encode(source_hash, 'hex') FROM import_control.record_state AS r"
             " JOIN import_control.streams USING (stream_id)")}


def write_stats(url: str) -> dict[str, tuple[int, int, int]]:
    """Inserted, updated and deleted tuples per target table, once the audit inserts are visible in the stats.

    Import sessions flush their statistics when they end; the audit table is written by the same
    statements as the target tables, so its insert count tells when the flush has arrived.
    """
    deadline = time.monotonic() + 15
    with connect(url, autocommit=True) as conn:
        audit_rows = conn.execute("SELECT count(*) FROM import_control.import_records").fetchone()[0]
        while True:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            flushed = conn.execute("SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables"
                                   " WHERE schemaname = 'import_control' AND relname LIKE 'audit_records_%'").fetchone()[0]
            if flushed >= audit_rows or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert flushed >= audit_rows, "statistics never caught up with the audit rows"
        rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
                            " WHERE schemaname = 'public' AND relname = ANY(%s)", (list(TABLES.values()),)).fetchall()
    return {name: (ins, upd, dele) for name, ins, upd, dele in rows}


def normalised(text: str) -> str:
    return " ".join(text.split()).lower()


def expected_source_rows(source: str) -> dict[str, int]:
    """Rows each entity reads, counted on the source by the template's documented rules."""
    companies = [c for (c,) in fetch(source, "SELECT company FROM customers WHERE company IS NOT NULL") if c.strip()]
    count = lambda query: fetch(source, query)[0][0]  # noqa: E731
    return {
        # the query is DISTINCT over (normalised key, name with whitespace collapsed): spelling variants
        # of one company are separate rows until dedupe collapses them into one account
        "accounts": len({(normalised(c), " ".join(c.split())) for c in companies}),
        "customer_users": count("SELECT count(*) FROM customers"),
        "agents": count("SELECT count(*) FROM users WHERE type <> 2"),
        "tickets": count("SELECT count(*) FROM conversations WHERE state = 2 AND status <> 4"),
        "time_entries": count("SELECT count(*) FROM timelogs WHERE finished"),
    }


# --- the first run ---------------------------------------------------------------------------------
def test_first_run_creates_every_importable_row(first_run: Imported) -> None:
    expected = expected_source_rows(first_run.source)
    companies = {normalised(c) for (c,) in fetch(first_run.source, "SELECT company FROM customers") if c and c.strip()}
    for entity, table in TABLES.items():
        result = first_run.results[entity]
        counts = result.counts
        assert result.rows == expected[entity], entity
        assert counts["updated"] == counts["unchanged"] == 0, entity
        target_rows = fetch(first_run.target, f"SELECT count(*) FROM {table} WHERE source_system = %s", (SYSTEM,))[0][0]
        assert target_rows == counts["created"] == expected[entity] - counts["failed"] - counts["skipped"], entity
        # nothing is skipped on a first run but duplicates and possible duplicates waiting for review
        assert counts["skipped"] == result.duplicates + len(held(first_run.target, first_run.run_id, entity)), entity
        assert fetch(first_run.target, "SELECT count(*) FROM import_control.import_records WHERE run_id = %s"
                                       " AND entity = %s AND action = 'skipped' AND duplicate_of IS NOT NULL",
                     (first_run.run_id, entity)) == [(result.duplicates,)], entity
        # one audit row per source row, with the same actions
        actions = dict(fetch(first_run.target, "SELECT action, count(*) FROM import_control.import_records"
                                               " WHERE run_id = %s AND entity = %s GROUP BY action",
                             (first_run.run_id, entity)))
        assert actions == {a: n for a, n in counts.items() if n}, entity
    # one account per distinct normalised company; the other spellings are the skipped duplicates
    assert first_run.results["accounts"].counts["created"] == len(companies)
    assert first_run.results["accounts"].duplicates > 0
    assert first_run.results["customer_users"].duplicates > 0  # the template's fuzzy rule: the demo's near-duplicates
    # the demo's near-duplicates with two typos (address and family name) are possible, not sure: each waits
    # for review, listed with its candidate
    waiting = held(first_run.target, first_run.run_id)
    listed = {sid for (sid,) in fetch(first_run.target, "SELECT source_id FROM import_control.review_pairs"
                                                        " WHERE profile = 'demo' AND decision IS NULL")}
    assert waiting and waiting == listed
    for entity in ("agents", "tickets", "time_entries"):
        assert first_run.results[entity].duplicates == 0
    assert first_run.results["tickets"].counts["failed"] > 0 and first_run.results["time_entries"].counts["failed"] > 0


def test_every_failed_row_has_an_audit_record_with_an_error(first_run: Imported) -> None:
    for entity in TABLES:
        failed = audit(first_run.target, first_run.run_id, entity, "failed")
        assert len(failed) == first_run.results[entity].counts["failed"], entity
        assert all(error and error.strip() for _, _, error, _ in failed), entity


def test_failed_tickets_are_exactly_those_without_an_existing_customer(first_run: Imported) -> None:
    waiting = held(first_run.target, first_run.run_id)  # customers held back for review this run
    expected = dict(fetch(first_run.source, """
        SELECT cv.id::text, cv.customer_id FROM conversations cv
        WHERE cv.state = 2 AND cv.status <> 4
          AND (cv.customer_id IS NULL OR NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = cv.customer_id)
               OR cv.customer_id::text = ANY(%s))""", (list(waiting),)))
    failed = {sid: error for sid, _, error, _ in audit(first_run.target, first_run.run_id, "tickets", "failed")}
    assert failed.keys() == expected.keys()
    assert any(v is None for v in expected.values()) and any(v is not None for v in expected.values())
    assert any(str(v) in waiting for v in expected.values())
    for sid, customer_id in expected.items():
        if customer_id is None:
            assert failed[sid] == "customer_id: required reference (customer_external_id) is empty"
        elif str(customer_id) in waiting:  # the reason says the customer waits, and how to decide
            assert failed[sid].startswith(f"customer_id: no customer_users with external_id {customer_id}"
                                          " (it waits for review as a possible duplicate: `python -m import_pipelines"
                                          " review accept ")
        else:
            assert failed[sid] == f"customer_id: no customer_users with external_id {customer_id}"


def test_failed_time_entries_are_exactly_those_whose_conversation_was_not_imported(first_run: Imported) -> None:
    waiting = held(first_run.target, first_run.run_id)  # their conversations are not imported this run
    expected = dict(fetch(first_run.source, """
        SELECT tl.id::text, tl.conversation_id FROM timelogs tl
        WHERE tl.finished AND NOT EXISTS (
            SELECT 1 FROM conversations cv JOIN customers c ON c.id = cv.customer_id
            WHERE cv.id = tl.conversation_id AND cv.state = 2 AND cv.status <> 4 AND NOT c.id::text = ANY(%s))""",
                          (list(waiting),)))
    failed = {sid: error for sid, _, error, _ in audit(first_run.target, first_run.run_id, "time_entries", "failed")}
    assert failed.keys() == expected.keys()
    for sid, conversation_id in expected.items():
        assert failed[sid] == f"ticket_id: no tickets with external_id {conversation_id}"  # names the conversation


def test_duplicate_customers_are_the_generated_near_duplicates(first_run: Imported) -> None:
    found = duplicates(first_run.target, first_run.run_id)
    created = {sid for sid, _, _, _ in audit(first_run.target, first_run.run_id, "customer_users", "created")}
    gap = max(1, CUSTOMERS // fs.DUPLICATE_GAP_DIVISOR)  # the demo copies a customer this many customers later
    assert found and set(found.values()) <= created
    for duplicate, survivor in found.items():
        assert abs(customer_index(int(duplicate)) - customer_index(int(survivor))) == gap, (duplicate, survivor)
    confidences = [c for (c,) in fetch(first_run.target, "SELECT confidence FROM import_control.import_records"
                                                         " WHERE run_id = %s AND entity = 'customer_users'"
                                                         " AND duplicate_of IS NOT NULL", (first_run.run_id,))]
    assert len(confidences) == len(found) and min(confidences) >= 98  # the template's threshold
    assert fetch(first_run.target, "SELECT count(*) FROM customer_users WHERE external_id = ANY(%s)",
                 (list(found),)) == [(0,)]


def test_references_resolve_to_the_source_records(first_run: Imported) -> None:
    source, target = first_run.source, first_run.target
    survivor = duplicates(target, first_run.run_id)  # a ticket of a duplicate customer belongs to the survivor
    agents = {uid for (uid,) in fetch(source, "SELECT id FROM users WHERE type <> 2")}
    robots = {uid for (uid,) in fetch(source, "SELECT id FROM users WHERE type = 2")}
    assert robots, "the demo has a robot user"

    conversations = {str(cid): (customer, user) for cid, customer, user in fetch(
        source, "SELECT id, customer_id, user_id FROM conversations")}
    tickets = fetch(target, """
        SELECT t.external_id, cu.external_id, a.external_id FROM tickets t
        JOIN customer_users cu ON cu.id = t.customer_id LEFT JOIN agents a ON a.id = t.agent_id""")
    assert len(tickets) == first_run.results["tickets"].counts["created"]
    warnings = {sid: error for sid, _, error, _ in audit(target, first_run.run_id, "tickets", "created")}
    unassigned = robot_assigned = 0
    for external_id, customer_ext, agent_ext in tickets:
        customer, user = conversations[external_id]
        assert customer_ext == survivor.get(str(customer), str(customer))
        if user in agents:
            assert agent_ext == str(user) and warnings[external_id] is None
        else:
            assert agent_ext is None
            if user is None:
                assert warnings[external_id] is None
            else:  # a missing (or robot) assignee: imported unassigned, with a warning
                unassigned += 1
                robot_assigned += user in robots
                assert warnings[external_id] == f"agent_id: no agents with external_id {user}; left empty"
    assert unassigned > robot_assigned > 0

    timelogs = {str(tid): (conv, user)
                for tid, conv, user in fetch(source, "SELECT id, conversation_id, user_id FROM timelogs")}
    entries = fetch(target, """
        SELECT te.external_id, t.external_id, a.external_id FROM time_entries te
        JOIN tickets t ON t.id = te.ticket_id LEFT JOIN agents a ON a.id = te.agent_id""")
    assert len(entries) == first_run.results["time_entries"].counts["created"]
    for external_id, ticket_ext, agent_ext in entries:
        conversation, user = timelogs[external_id]
        assert ticket_ext == str(conversation)
        assert agent_ext == (str(user) if user in agents else None)
    robot_entries = {sid: error for sid, _, error, _ in audit(target, first_run.run_id, "time_entries", "created")
                     if int(sid) % ROBOT_EVERY == 0}
    assert robot_entries and all(error == f"agent_id: no agents with external_id {min(robots)}; left empty"
                                 for error in robot_entries.values())

    customers = dict(fetch(source, "SELECT id::text, company FROM customers"))
    linked = fetch(target, "SELECT cu.external_id, a.name_key FROM customer_users cu"
                           " LEFT JOIN accounts a ON a.id = cu.account_id")
    for external_id, account_key in linked:
        company = customers[external_id]
        assert account_key == (normalised(company) if company and company.strip() else None)


def test_mapped_values_follow_the_template_rules(first_run: Imported) -> None:
    source, target = first_run.source, first_run.target
    status = {1: "open", 2: "pending", 3: "closed"}
    conversations = {str(cid): s for cid, s in fetch(source, "SELECT id, status FROM conversations")}
    for external_id, mapped in fetch(target, "SELECT external_id, status FROM tickets"):
        assert mapped == status[conversations[external_id]]
    seconds = {str(tid): s for tid, s in fetch(source, "SELECT id, time_spent FROM timelogs")}
    for external_id, minutes in fetch(target, "SELECT external_id, minutes FROM time_entries"):
        assert minutes == (seconds[external_id] + 30) // 60  # rounded half up: 89 s -> 1, 90 s -> 2
    names = {str(cid): (f, l) for cid, f, l in fetch(source, "SELECT id, first_name, last_name FROM customers")}
    for external_id, last_name, display_name in fetch(target, "SELECT external_id, last_name, display_name"
                                                              " FROM customer_users"):
        first, last = names[external_id]
        assert last_name == (last.strip() or None if last is not None else None)
        assert display_name == display_name.strip() and "  " not in display_name  # no trailing/doubled spaces


def test_generated_columns_are_computed_by_the_database(first_run: Imported, template: Template) -> None:
    target = first_run.target
    users = fetch(target, "SELECT email, email_domain FROM customer_users")
    assert sum(1 for email, _ in users if email) > 0
    for email, domain in users:
        assert domain == (None if email is None else (email.split("@", 1)[1] if "@" in email else "").lower())
    for status, is_closed in fetch(target, "SELECT status, is_closed FROM tickets"):
        assert is_closed == (status == "closed")
    for minutes, hours in fetch(target, "SELECT minutes, hours FROM time_entries"):
        assert hours == (Decimal(minutes) / 60).quantize(Decimal("0.01"))
    for name, name_key, external_id in fetch(target, "SELECT name, name_key, external_id FROM accounts"):
        assert name_key == name.strip().lower() == external_id
    # still generated columns (the import did not replace them), and no field of the template maps to one
    generated = set(fetch(target, "SELECT attrelid::regclass::text, attname FROM pg_attribute"
                                  " WHERE attgenerated = 's' AND attrelid::regclass::text = ANY(%s)",
                          (list(TABLES.values()),)))
    assert generated == {("customer_users", "email_domain"), ("tickets", "is_closed"), ("time_entries", "hours"),
                         ("accounts", "name_key")}
    mapped = {(e.target, f) for e in template.entities.values() for f in [*e.fields, *e.references]}
    assert not generated & mapped


def test_a_field_mapped_to_a_generated_column_is_refused_before_reading(first_run: Imported) -> None:
    data = yaml.safe_load((TEMPLATE_DIR / "freescout.yaml").read_text(encoding="utf-8"))
    data["entities"]["customer_users"]["fields"]["email_domain"] = {"expression": "'example.org'"}
    template = parse_template(data)
    run = EntityRun(profile="demo", template=template, entity_name="customer_users", run_id=str(uuid.uuid4()),
                    source_url=first_run.source, target_url=first_run.target)
    with pytest.raises(MappingError, match="'email_domain' maps to public.customer_users.email_domain, a computed"):
        extract(run, log=lambda message: None)


# --- re-runs ---------------------------------------------------------------------------------------
def test_second_run_on_an_unchanged_source_writes_nothing(imported: Imported, template: Template) -> None:
    before_xmin, before_stats = xmins(imported.target), write_stats(imported.target)
    before_state = state_xmins(imported.target)
    for entity, table in TABLES.items():  # the first run's inserts are all in the statistics
        assert before_stats[table] == (imported.results[entity].counts["created"], 0, 0), table
    results = run_import(template=template, source_url=imported.source, target_url=imported.target, run_id="second")

    for entity, result in results.items():
        first = imported.results[entity].counts
        assert result.counts == {"created": 0, "updated": 0, "skipped": first["skipped"],
                                 "unchanged": first["created"], "failed": first["failed"]}, entity
        # the sync read only keys and hashes for the records it had imported, and counted the
        # unchanged ones in the run summary without an audit row each; the records that failed had
        # no state, were read again and failed again. The customers, whose duplicate rule needs
        # every record, were read whole: their duplicates were skipped again, with their audit rows,
        # and so were those waiting for review (nobody decided)
        actions = Counter(action for _, action, _, _ in audit(imported.target, "second", entity))
        read_whole = template.entities[entity].dedupe is not None
        repeated = fetch(imported.target, "SELECT count(*) FROM import_control.import_records WHERE run_id = 'second'"
                                          " AND entity = %s AND duplicate_of = source_id", (entity,))[0][0]
        waiting = held(imported.target, "second", entity)
        assert waiting == held(imported.target, imported.run_id, entity)
        skipped = first["skipped"] if read_whole else repeated
        assert actions == Counter({a: n for a, n in (("skipped", skipped), ("failed", first["failed"])) if n}), entity
        assert reconcile(imported.target, profile="demo", entity=entity, run_id="second") == {
            action: count for action, count in result.counts.items() if count}, entity
        if read_whole:  # every duplicate follows the survivor the first run chose
            assert duplicates(imported.target, "second", entity) == duplicates(imported.target, imported.run_id,
                                                                               entity)
    assert xmins(imported.target) == before_xmin
    assert write_stats(imported.target) == before_stats
    # the import's own bookkeeping: the state of every imported record is left as it was
    after_state = state_xmins(imported.target)
    assert after_state.keys() == before_state.keys()
    assert {key for key, (xmin, digest) in after_state.items() if xmin != before_state[key][0]} == set()


def test_a_profile_without_state_finds_the_rows_another_profile_created(imported: Imported,
                                                                        template: Template) -> None:
    # a second profile of the same source system: its own state is empty, but the natural keys
    # are in the target, so its first run updates those rows instead of inserting them again
    agents = fetch(imported.target, "SELECT count(*) FROM agents")
    results = run_import(template=template, source_url=imported.source, target_url=imported.target,
                         profile="second_profile", entities=["agents"], batch_rows=7, run_id="second")
    assert results["agents"].counts == {"created": 0, "updated": imported.results["agents"].counts["created"],
                                        "skipped": 0, "unchanged": 0, "failed": 0}
    assert fetch(imported.target, "SELECT count(*) FROM agents") == agents


def test_a_first_import_in_many_batches_creates_each_record_once(new_database: Callable[[str], str],
                                                                template: Template) -> None:
    source, target = new_database("fs_source"), new_database("fs_target")
    generate_freescout(source, customers=200)
    migrate(target)
    results = run_import(template=template, source_url=source, target_url=target, batch_rows=13,
                         entities=["accounts", "customer_users"], run_id="batches")
    created = results["customer_users"].counts["created"]
    assert created + results["customer_users"].duplicates + len(held(target, "batches")) == \
        fetch(source, "SELECT count(*) FROM customers")[0][0]
    assert fetch(target, "SELECT count(*), count(DISTINCT external_id) FROM customer_users") == [(created, created)]
    assert results["accounts"].counts["failed"] == results["customer_users"].counts["failed"] == 0


def unclustered_customers(imported: Imported) -> list[int]:
    """Customers the first run created that are neither a duplicate nor a duplicate's survivor."""
    found = duplicates(imported.target, imported.run_id)
    clustered = set(found) | set(found.values())
    return sorted(int(sid) for sid, _, _, _ in audit(imported.target, imported.run_id, "customer_users", "created")
                  if sid not in clustered)


def test_changed_customers_are_the_only_rows_updated(imported: Imported, template: Template) -> None:
    changed = unclustered_customers(imported)[10:1000:200]
    assert len(changed) == 5
    old_last_names = dict(fetch(imported.target, "SELECT external_id, last_name FROM customer_users"
                                                 " WHERE external_id = ANY(%s)", ([str(i) for i in changed],)))
    before = xmins(imported.target)
    change_customers(imported.source, changed)

    results = run_import(template=template, source_url=imported.source, target_url=imported.target, run_id="changes")

    assert results["customer_users"].counts["updated"] == 5
    assert results["customer_users"].counts["unchanged"] == imported.results["customer_users"].counts["created"] - 5
    assert results["customer_users"].counts["skipped"] == imported.results["customer_users"].counts["skipped"]
    for entity, result in results.items():
        assert result.counts["created"] == 0, entity
        if entity != "customer_users":
            assert result.counts["updated"] == 0, entity
    updated = {sid: image for sid, _, _, image in audit(imported.target, "changes", "customer_users", "updated")}
    assert updated.keys() == {str(i) for i in changed}
    for sid, image in updated.items():
        assert image["last_name"] == old_last_names[sid] and image["external_id"] == sid
    new_last_names = dict(fetch(imported.target, "SELECT external_id, last_name FROM customer_users"
                                                 " WHERE external_id = ANY(%s)", (list(updated),)))
    assert new_last_names == {sid: f"{old or ''} (changed)".strip() for sid, old in old_last_names.items()}
    after = xmins(imported.target)
    rewritten = {key for key in before if after.get(key) != before[key]}
    changed_rows = {("customer_users", row_id) for (row_id,) in fetch(
        imported.target, "SELECT id FROM customer_users WHERE external_id = ANY(%s)", (list(updated),))}
    assert rewritten == changed_rows
    assert after.keys() == before.keys()


def test_a_changed_survivor_is_updated_once_and_keeps_its_change(imported: Imported, template: Template) -> None:
    found = duplicates(imported.target, imported.run_id)
    survivors = sorted({int(s) for s in found.values()})
    change_customers(imported.source, survivors)

    results = run_import(template=template, source_url=imported.source, target_url=imported.target, run_id="changes")

    updated = fetch(imported.target, "SELECT source_id, target_id FROM import_control.import_records"
                                     " WHERE run_id = 'changes' AND entity = 'customer_users' AND action = 'updated'")
    assert len({target_id for _, target_id in updated}) == len(updated), "two source records updated one row"
    assert {sid for sid, _ in updated} == {str(s) for s in survivors}
    assert results["customer_users"].counts["updated"] == len(survivors)
    names = dict(fetch(imported.target, "SELECT external_id, last_name FROM customer_users WHERE external_id = ANY(%s)",
                       ([str(s) for s in survivors],)))
    assert all((last or "").endswith("(changed)") for last in names.values())


def test_update_only_skips_new_customers(imported: Imported, template: Template) -> None:
    new_ids = [str(i) for i in add_customers(imported.source, 3)]
    results = run_import(template=template, source_url=imported.source, target_url=imported.target,
                         mode="update_only", run_id="update_only")
    first = imported.results["customer_users"].counts
    counts = results["customer_users"].counts
    assert counts == {"created": 0, "updated": 0, "skipped": first["skipped"] + 3, "unchanged": first["created"],
                      "failed": 0}
    assert skipped_by_mode(imported.target, "update_only") == set(new_ids)
    assert fetch(imported.target, "SELECT count(*) FROM customer_users WHERE external_id = ANY(%s)",
                 (new_ids,)) == [(0,)]
    assert all(result.counts["created"] == 0 for result in results.values())


def test_create_only_skips_changed_customers(imported: Imported, template: Template) -> None:
    changed = unclustered_customers(imported)[3:1200:250]
    assert len(changed) == 5
    before = xmins(imported.target)
    last_names = fetch(imported.target, "SELECT external_id, last_name FROM customer_users ORDER BY id")
    change_customers(imported.source, changed)
    results = run_import(template=template, source_url=imported.source, target_url=imported.target,
                         mode="create_only", run_id="create_only")
    first = imported.results["customer_users"].counts
    assert results["customer_users"].counts == {"created": 0, "updated": 0, "skipped": first["skipped"] + 5,
                                                "unchanged": first["created"] - 5, "failed": 0}
    assert skipped_by_mode(imported.target, "create_only") == {str(i) for i in changed}
    assert all(result.counts["updated"] == result.counts["created"] == 0 for result in results.values())
    assert xmins(imported.target) == before
    assert fetch(imported.target, "SELECT external_id, last_name FROM customer_users ORDER BY id") == last_names


# --- safety ----------------------------------------------------------------------------------------
def test_a_read_only_source_connection_refuses_writes(first_run: Imported) -> None:
    with connect(first_run.source, read_only=True) as conn:
        conn.execute("BEGIN")
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM customers")
    assert fetch(first_run.source, "SELECT count(*) FROM customers") == [(CUSTOMERS,)]


def test_extract_reads_through_a_read_only_session(first_run: Imported, template: Template,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, type[Exception] | None]] = []
    real = extract_module.source_column_types

    def spy(conn: psycopg.Connection, compiled):
        # the very session extract streams from, inside its transaction
        state = conn.execute("SHOW transaction_read_only").fetchone()[0]
        try:
            with conn.transaction():  # a savepoint, so the extract's own transaction survives the refusal
                conn.execute("CREATE TABLE import_pipelines_write_probe (x int)")
            refused = None
        except psycopg.errors.ReadOnlySqlTransaction as error:
            refused = type(error)
        seen.append((state, refused))
        return real(conn, compiled)

    monkeypatch.setattr(extract_module, "source_column_types", spy)
    run = EntityRun(profile="readonly", template=template, entity_name="agents", run_id=str(uuid.uuid4()),
                    source_url=first_run.source, target_url=first_run.target)
    staged = extract(run, log=lambda message: None)
    assert staged.rows == expected_source_rows(first_run.source)["agents"]
    assert seen == [("on", psycopg.errors.ReadOnlySqlTransaction)]
    assert fetch(first_run.source, "SELECT to_regclass('import_pipelines_write_probe')") == [(None,)]
    with connect(first_run.target, autocommit=True) as conn:
        conn.execute(f"DROP TABLE import_control.{staged.staging}")


def test_a_row_refused_by_an_unforeseen_check_constraint_fails_alone(new_database: Callable[[str], str],
                                                                     template: Template) -> None:
    source, target = new_database("fs_source"), new_database("fs_target")
    generate_freescout(source, customers=CUSTOMERS)
    migrate(target)
    with connect(target) as conn:  # a rule the set-based checks (NOT NULL, lengths) know nothing about
        conn.execute("ALTER TABLE customer_users ADD CONSTRAINT customer_users_title_allowed"
                     " CHECK (job_title IS DISTINCT FROM 'Forbidden')")
        conn.commit()
    with connect(source) as conn:
        conn.execute("UPDATE customers SET job_title = 'Forbidden' WHERE id = 777")
        conn.commit()

    results = run_import(template=template, source_url=source, target_url=target, batch_rows=500,
                         entities=["accounts", "customer_users"], run_id="check")

    counts = results["customer_users"].counts
    waiting = held(target, "check")
    assert counts["failed"] == 1 and counts["skipped"] == results["customer_users"].duplicates + len(waiting)
    assert counts["created"] == CUSTOMERS - 1 - counts["skipped"]
    [(sid, _, error, _)] = audit(target, "check", "customer_users", "failed")
    assert sid == "777"
    assert 'new row for relation "customer_users" violates check constraint "customer_users_title_allowed"' in error
    assert fetch(target, "SELECT count(*), count(*) FILTER (WHERE external_id = '777') FROM customer_users") == [
        (counts["created"], 0)]
    # its batch neighbours (staging rows 501..1000 hold customer 777) were loaded, or skipped as duplicates
    dups = duplicates(target, "check")
    neighbours = [str(i) for (i,) in fetch(source, "SELECT id FROM customers WHERE id BETWEEN 760 AND 800")
                  if i != 777 and str(i) not in dups and str(i) not in waiting]
    assert len(neighbours) > 30
    assert fetch(target, "SELECT count(*) FROM customer_users WHERE external_id = ANY(%s)", (neighbours,)) == [
        (len(neighbours),)]


def test_custom_statuses_map_by_their_main_status_and_keep_the_original(
        new_database: Callable[[str], str], template: Template) -> None:
    source, target = new_database("fs_source"), new_database("fs_target")
    generate_freescout(source, customers=60)
    custom = {11: "open", 21: "pending", 31: "closed", 12: "open", 105: "open"}
    with connect(source) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM conversations WHERE state = 2 AND status <> 4"
                                          " AND customer_id IS NOT NULL ORDER BY id LIMIT 8").fetchall()]
        assigned = dict(zip(ids, [*custom, 41, 9, 52]))
        for cid, status in assigned.items():
            conn.execute("UPDATE conversations SET status = %s WHERE id = %s", (status, cid))
        conn.commit()
    migrate(target)
    results = run_import(template=template, source_url=source, target_url=target, run_id="custom")
    with connect(target) as conn:
        tickets = {int(e): (s, o) for e, s, o in conn.execute(
            "SELECT external_id, status, source_status FROM tickets WHERE external_id = ANY(%s)",
            ([str(i) for i in ids],)).fetchall()}
        failed = dict(conn.execute("SELECT source_id::bigint, error FROM import_control.import_records"
                                   " WHERE entity = 'tickets' AND action = 'failed' AND source_id = ANY(%s)",
                                   ([str(i) for i in ids],)).fetchall())
        plain = conn.execute("SELECT count(*) FROM tickets WHERE source_status NOT IN (1, 2, 3)").fetchone()[0]
    by_status = {status: cid for cid, status in assigned.items()}
    for status, mapped in custom.items():
        assert tickets[by_status[status]] == (mapped, status)
    assert by_status[41] not in tickets and by_status[41] not in failed  # custom spam is not read, like spam
    for status in (9, 52):  # no main status: fails naming the field instead of being guessed
        assert by_status[status] not in tickets and "status" in failed[by_status[status]]
    assert plain == len(custom) and results["tickets"].counts["created"] > len(custom)
