"""The demo FreeScout generator against a real PostgreSQL: shape, proportions, dirt, determinism, helpers."""

from __future__ import annotations

import json
import math
import unicodedata
import uuid
from collections.abc import Iterator

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from import_pipelines.db import connect, drop_database, ensure_database, ident
from import_pipelines.demo import freescout as fs
from import_pipelines.demo.freescout import (add_customers, change_customers, create_freescout_schema,
                                             customers_for_rows, generate_freescout)

CUSTOMERS = 3000  # large enough for the fractions to be measurable, small enough to build in ~1 s
D = fs.DUPLICATE_FRACTION


@pytest.fixture(scope="module")
def generated(pg_server: str) -> Iterator[tuple[str, dict[str, int]]]:
    """One generated database (C = 3000, seed 7) shared by this module's read-only tests."""
    name = f"ipt_freescout_{uuid.uuid4().hex[:10]}"
    url = ensure_database(pg_server, name)
    try:
        yield url, generate_freescout(url, customers=CUSTOMERS)
    finally:
        drop_database(pg_server, name)


@pytest.fixture
def source(generated: tuple[str, dict[str, int]]) -> str:
    return generated[0]


def rows(url: str, query: str | sql.Composable, params: tuple | None = None) -> list[tuple]:
    with connect(url, read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def value(url: str, query: str | sql.Composable, params: tuple | None = None):
    return rows(url, query, params)[0][0]


def assert_fraction(count: int, total: int, expected: float, what: str) -> None:
    """``count`` of ``total`` is the stated fraction, within four binomial standard deviations."""
    assert count > 0, f"{what}: none present"
    sigma = math.sqrt(total * expected * (1 - expected))
    assert abs(count - total * expected) <= 4 * sigma + 1, (
        f"{what}: {count}/{total} = {count / total:.4f}, expected about {expected:.4f}")


def table_digests(url: str) -> dict[str, str]:
    """md5 of every table's rows in id order."""
    digests = {}
    for table in fs.TABLES:
        query = sql.SQL("SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM {} AS t").format(
            ident(table))
        with connect(url, read_only=True) as conn:
            digests[table] = conn.execute(query).fetchone()[0]
    return digests


def normalized(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


# --- shape and proportions -------------------------------------------------------------------------
def test_row_counts_follow_the_proportions(generated: tuple[str, dict[str, int]]) -> None:
    url, counts = generated
    actual = {t: value(url, sql.SQL("SELECT count(*) FROM {}").format(ident(t))) for t in fs.TABLES}
    assert counts == actual
    assert counts["mailboxes"] == 3
    assert counts["users"] == max(5, CUSTOMERS // 200) == 15
    assert counts["customers"] == CUSTOMERS
    assert counts["conversations"] == 2 * CUSTOMERS
    assert counts["timelogs"] == CUSTOMERS
    assert 1.3 <= counts["emails"] / CUSTOMERS <= 1.5
    assert 2.8 <= counts["threads"] / counts["conversations"] <= 3.2


def test_timestamps_come_from_the_fixed_epoch(source: str) -> None:
    low, high = rows(source, "SELECT min(created_at), max(updated_at) FROM customers")[0]
    assert str(low).startswith("2019-01-01")
    assert high.year <= 2025
    assert value(source, "SELECT max(updated_at) FROM conversations").year <= 2024


def test_sequences_continue_after_the_generated_ids(source: str) -> None:
    for table in fs.TABLES:
        sequence = sql.SQL("SELECT last_value, is_called FROM {}").format(ident(f"{table}_id_seq"))
        next_id, called = rows(source, sequence)[0]
        assert (next_id, called) == (value(source, sql.SQL("SELECT max(id) FROM {}").format(ident(table))) + 1, False)


def test_customers_for_rows_matches_what_the_import_reads(source: str) -> None:
    imported = value(source, """
        SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM users)
             + (SELECT count(*) FROM conversations WHERE state NOT IN (1, 3) AND status <> 4)
             + (SELECT count(*) FROM timelogs WHERE finished)
             + (SELECT count(DISTINCT lower(btrim(regexp_replace(company, '\\s+', ' ', 'g'))))
                FROM customers WHERE company IS NOT NULL)""")
    assert abs(imported - fs._expected_import_rows(CUSTOMERS)) / imported < 0.01
    assert abs(customers_for_rows(imported) - CUSTOMERS) / CUSTOMERS < 0.01
    assert 255_000 <= customers_for_rows(1_000_000) <= 262_000
    assert customers_for_rows(10_000) <= customers_for_rows(10_100)
    assert customers_for_rows(1) == 1


# --- dirt: customers -------------------------------------------------------------------------------
def test_case_and_whitespace_duplicates(source: str) -> None:
    pairs = rows(source, """
        SELECT a.email, b.email, ca.first_name, ca.last_name, cb.first_name, cb.last_name
        FROM emails a JOIN emails b ON lower(btrim(a.email)) = b.email AND a.customer_id <> b.customer_id
        JOIN customers ca ON ca.id = a.customer_id JOIN customers cb ON cb.id = b.customer_id""")
    expected = D * (fs.DUPLICATE_CASE_SHARE + fs.DUPLICATE_SPACE_SHARE) * (1 - fs.NO_EMAIL_FRACTION)
    assert_fraction(len(pairs), CUSTOMERS, expected, "case/whitespace duplicates")
    kinds = set()
    for dup_email, email, dup_first, dup_last, first, last in pairs:
        assert normalized(dup_first) == normalized(first) and normalized(dup_last) == normalized(last)
        kinds.add("space" if dup_email != dup_email.strip() else "case")
    assert kinds == {"case", "space"}


def test_typo_duplicates(source: str) -> None:
    pairs = rows(source, """
        SELECT a.email, b.email, ca.first_name, ca.last_name, cb.first_name, cb.last_name
        FROM emails a JOIN emails b ON a.customer_id > b.customer_id AND a.email <> b.email
             AND length(a.email) = length(b.email)
             AND regexp_replace(a.email, '^[a-z]+', '') = regexp_replace(b.email, '^[a-z]+', '')
        JOIN customers ca ON ca.id = a.customer_id JOIN customers cb ON cb.id = b.customer_id""")
    expected = D * (1 - fs.DUPLICATE_CASE_SHARE - fs.DUPLICATE_SPACE_SHARE) * (1 - fs.NO_EMAIL_FRACTION)
    assert_fraction(len(pairs), CUSTOMERS, expected, "typo duplicates")
    for dup_email, email, dup_first, dup_last, first, last in pairs:
        assert sum(x != y for x, y in zip(dup_email, email)) == 1  # one wrong letter
        dropped = (len(first) - len(dup_first)) + (len(last or "") - len(dup_last or ""))
        assert dropped in (0, 1)  # one letter missing from the name (short names keep theirs)


def test_email_categories(source: str) -> None:
    per_customer = rows(source, """
        SELECT c.id, count(e.id),
               count(e.id) FILTER (WHERE e.type = 2) AS home, count(e.id) FILTER (WHERE e.type = 1) AS work,
               min(e.id) FILTER (WHERE e.type = 2) AS first_home, min(e.id) FILTER (WHERE e.type = 1) AS first_work
        FROM customers c LEFT JOIN emails e ON e.customer_id = c.id GROUP BY c.id""")
    none = sum(1 for r in per_customer if r[1] == 0)
    home_only = sum(1 for r in per_customer if r[1] > 0 and r[2] == r[1])
    home_first = sum(1 for r in per_customer if r[4] is not None and r[5] is not None and r[4] < r[5])
    work_first = sum(1 for r in per_customer if r[4] is not None and r[5] is not None and r[5] < r[4])
    assert_fraction(none, CUSTOMERS, (1 - D) * fs.NO_EMAIL_FRACTION, "no email")
    # a duplicate has one email of its original's first type: home for home-only and home+work originals
    assert_fraction(home_only, CUSTOMERS,
                    (1 - D) * fs.HOME_ONLY_FRACTION + D * (fs.HOME_ONLY_FRACTION + fs.HOME_AND_WORK_FRACTION),
                    "home email only")
    assert_fraction(home_first, CUSTOMERS, (1 - D) * fs.HOME_AND_WORK_FRACTION, "home and work, home first")
    assert_fraction(work_first, CUSTOMERS, (1 - D) * fs.THREE_EMAILS_FRACTION, "home and work, work first")
    assert value(source, "SELECT count(*) FROM emails WHERE type = 3") > 0


def test_missing_last_names(source: str) -> None:
    null, empty = rows(source, "SELECT count(*) FILTER (WHERE last_name IS NULL), "
                               "count(*) FILTER (WHERE last_name = '') FROM customers")[0]
    assert_fraction(null, CUSTOMERS, fs.LAST_NAME_NULL_FRACTION, "last_name NULL")
    assert_fraction(empty, CUSTOMERS, fs.LAST_NAME_EMPTY_FRACTION, "last_name ''")


def test_accented_and_non_latin_names(source: str) -> None:
    names = rows(source, "SELECT first_name, coalesce(last_name, '') FROM customers")

    def script(text: str) -> str:
        if any(ord(ch) > 0x024F for ch in text):
            return "non-latin"
        if any(ord(ch) > 0x7F for ch in text):
            return "accented"
        return "ascii"

    kinds = [script(first + last) for first, last in names]
    assert_fraction(kinds.count("accented"), CUSTOMERS, fs.ACCENTED_NAME_FRACTION, "accented names")
    assert_fraction(kinds.count("non-latin"), CUSTOMERS, fs.NON_LATIN_NAME_FRACTION, "non-Latin names")
    firsts = {first.strip() for first, _ in names}
    assert {"José", "Zoë", "Łukasz", "李娜", "Иван"} <= firsts
    scripts = {unicodedata.name(ch).split()[0] for first, last in names for ch in first + last if ord(ch) > 0x024F}
    assert {"CJK", "CYRILLIC", "ARABIC", "GREEK", "HEBREW"} <= scripts


def test_companies_are_spelled_inconsistently(source: str) -> None:
    companies = [r[0] for r in rows(source, "SELECT company FROM customers WHERE company IS NOT NULL")]
    assert_fraction(len(companies), CUSTOMERS, fs.COMPANY_FRACTION, "customers with a company")
    variants = [c for c in companies if c != c.strip() or "  " in c or c in (c.upper(), c.lower())]
    assert_fraction(len(variants), len(companies), fs.COMPANY_VARIANT_FRACTION, "company spelling variants")
    acme = {c for c in companies if normalized(c) == "acme corp"}
    assert "Acme Corp" in acme and len(acme) >= 3
    spellings: dict[str, set[str]] = {}
    for company in companies:
        spellings.setdefault(normalized(company), set()).add(company)
    assert len(spellings) == value(
        source, "SELECT count(DISTINCT lower(btrim(regexp_replace(company, '\\s+', ' ', 'g')))) FROM customers")


def test_phones_json(source: str) -> None:
    phones = [r[0] for r in rows(source, "SELECT phones FROM customers")]
    # duplicates carry no phones
    assert_fraction(phones.count(None), CUSTOMERS, (1 - D) * fs.PHONES_NULL_FRACTION + D, "phones NULL")
    assert_fraction(phones.count("[]"), CUSTOMERS, (1 - D) * fs.PHONES_EMPTY_FRACTION, "phones []")
    parsed = [json.loads(p) for p in phones if p is not None]
    multi = sum(1 for p in parsed if len(p) >= 2)
    assert_fraction(multi, CUSTOMERS, (1 - D) * fs.PHONES_MULTI_FRACTION, "several phones")
    for phone in (item for p in parsed for item in p):
        assert set(phone) == {"value", "type", "n"}
        assert phone["type"] in range(1, 7)
        assert phone["n"] == "".join(ch for ch in phone["value"] if ch.isdigit())
    assert any('"value":"+1 (' in p for p in phones if p)  # PHP's json_encode spelling, no spaces


def test_customer_ids_have_holes(source: str) -> None:
    holes = value(source, "SELECT count(*) FROM generate_series(1, (SELECT max(id) FROM customers)) AS g(id) "
                          "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = g.id)")
    assert holes == (CUSTOMERS - 1) // fs.CUSTOMER_ID_HOLE_EVERY


# --- dirt: conversations, threads, timelogs --------------------------------------------------------
def test_conversation_dirt(source: str) -> None:
    total = 2 * CUSTOMERS
    (customer_null, customer_missing, missing_below_max, assignee_null, assignee_missing,
     draft, deleted, spam) = rows(source, """
        SELECT count(*) FILTER (WHERE customer_id IS NULL),
               count(*) FILTER (WHERE customer_id IS NOT NULL AND c.id IS NULL),
               count(*) FILTER (WHERE customer_id IS NOT NULL AND c.id IS NULL
                                AND customer_id < (SELECT max(id) FROM customers)),
               count(*) FILTER (WHERE user_id IS NULL),
               count(*) FILTER (WHERE user_id IS NOT NULL AND u.id IS NULL),
               count(*) FILTER (WHERE v.state = 1), count(*) FILTER (WHERE v.state = 3),
               count(*) FILTER (WHERE v.status = 4 AND v.state = 2)
        FROM conversations v LEFT JOIN customers c ON c.id = v.customer_id LEFT JOIN users u ON u.id = v.user_id""")[0]
    assert_fraction(customer_null, total, fs.CONV_CUSTOMER_NULL_FRACTION, "conversation without customer")
    assert_fraction(customer_missing, total, fs.CONV_CUSTOMER_MISSING_FRACTION, "conversation of a deleted customer")
    assert missing_below_max == customer_missing  # they point into id holes, as deleted rows do
    assert_fraction(assignee_null, total, fs.ASSIGNEE_NULL_FRACTION, "unassigned conversation")
    assert_fraction(assignee_missing, total, fs.ASSIGNEE_MISSING_FRACTION, "assigned to a missing user")
    assert_fraction(draft, total, fs.DRAFT_FRACTION, "draft")
    assert_fraction(deleted, total, fs.DELETED_FRACTION, "deleted")
    assert_fraction(spam, total, fs.SPAM_FRACTION, "spam")


def test_conversations_without_a_customer_thread(source: str) -> None:
    count = value(source, """
        SELECT count(*) FROM conversations v
        WHERE state <> 1 AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.conversation_id = v.id AND t.type = 1)""")
    expected = (1 - fs.DRAFT_FRACTION - fs.SPAM_FRACTION) * fs.USER_STARTED_FRACTION
    assert_fraction(count, 2 * CUSTOMERS, expected, "conversation without a customer thread")
    assert value(source, "SELECT count(*) FROM conversations WHERE type = 2") > 0  # phone conversations


def test_threads_are_consistent_with_their_conversations(source: str) -> None:
    assert value(source, "SELECT count(*) FROM threads t LEFT JOIN conversations v ON v.id = t.conversation_id "
                         "WHERE v.id IS NULL") == 0
    # threads_count counts published customer and agent threads (not notes), as FreeScout does
    assert value(source, """
        SELECT count(*) FROM conversations v
        WHERE state <> 1 AND threads_count <> (SELECT count(*) FROM threads t WHERE t.conversation_id = v.id
                                               AND t.type IN (1, 2) AND t.state = 2)""") == 0
    assert value(source, "SELECT count(*) FROM threads WHERE type = 3") > 0
    first_threads = rows(source, """
        SELECT v.preview, t.body FROM conversations v
        JOIN threads t ON t.id = (SELECT min(id) FROM threads WHERE conversation_id = v.id) LIMIT 50""")
    for preview, body in first_threads:
        assert body == f"<div>{preview}</div>"


def test_timelog_dirt(source: str) -> None:
    running, paused_finished, missing, odd_seconds = rows(source, """
        SELECT count(*) FILTER (WHERE NOT finished), count(*) FILTER (WHERE paused AND finished),
               count(*) FILTER (WHERE v.id IS NULL), count(*) FILTER (WHERE mod(time_spent, 60) <> 0)
        FROM timelogs t LEFT JOIN conversations v ON v.id = t.conversation_id""")[0]
    assert_fraction(running, CUSTOMERS, fs.TIMELOG_RUNNING_FRACTION, "running timer")
    assert paused_finished == 0
    assert_fraction(missing, CUSTOMERS, fs.TIMELOG_MISSING_CONVERSATION_FRACTION, "timelog of a missing conversation")
    assert_fraction(odd_seconds, CUSTOMERS, (1 - fs.TIMELOG_WHOLE_MINUTES_FRACTION) * 59 / 60,
                    "time_spent not in whole minutes")


def test_users(source: str) -> None:
    robots, admins, statuses = rows(source, """
        SELECT count(*) FILTER (WHERE type = 2), count(*) FILTER (WHERE role = 2), array_agg(DISTINCT status)
        FROM users""")[0]
    assert robots == 1 and admins >= 1
    assert set(statuses) <= {1, 2, 3}


# --- determinism -----------------------------------------------------------------------------------
def test_same_seed_gives_identical_tables_whatever_the_plan(new_database) -> None:
    first, second, other_seed = new_database("fs_a"), new_database("fs_b"), new_database("fs_c")
    generate_freescout(first, customers=400, seed=11)
    # Another plan for the same statements: no hash joins or aggregates, parallel workers encouraged.
    planner = ("-c enable_hashjoin=off -c enable_hashagg=off -c parallel_setup_cost=0 -c parallel_tuple_cost=0"
               " -c min_parallel_table_scan_size=0 -c max_parallel_workers_per_gather=2")
    generate_freescout(make_conninfo(second, options=planner), customers=400, seed=11)
    generate_freescout(other_seed, customers=400, seed=12)
    digests = table_digests(first)
    assert table_digests(second) == digests
    different = table_digests(other_seed)
    for table in ("users", "customers", "emails", "conversations", "threads", "timelogs"):
        assert different[table] != digests[table], table


def test_generating_again_replaces_the_tables(new_database) -> None:
    url = new_database("fs_again")
    generate_freescout(url, customers=300)
    digests = table_digests(url)
    counts = generate_freescout(url, customers=300)
    assert table_digests(url) == digests and counts["customers"] == 300


# --- schema and helpers ----------------------------------------------------------------------------
def test_create_freescout_schema_without_foreign_keys(new_database) -> None:
    url = new_database("fs_schema")
    for _ in range(2):  # idempotent
        with connect(url) as conn:
            create_freescout_schema(conn)
            conn.commit()
    columns = {(t, c) for t, c in rows(url, "SELECT table_name, column_name FROM information_schema.columns "
                                            "WHERE table_schema = 'public'")}
    for table, column in [("customers", "phones"), ("customers", "notes"), ("emails", "type"),
                          ("users", "invite_state"), ("conversations", "created_by_user_id"),
                          ("conversations", "customer_email"), ("threads", "to"), ("threads", "created_by_customer_id"),
                          ("timelogs", "time_spent"), ("timelogs", "finished"), ("mailboxes", "email")]:
        assert (table, column) in columns
    assert value(url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 0
    indexes = {r[0] for r in rows(url, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")}
    assert any("emails USING btree (customer_id)" in i for i in indexes)
    assert any("UNIQUE INDEX" in i and "emails USING btree (email)" in i for i in indexes)


def test_change_customers(new_database) -> None:
    url = new_database("fs_change")
    generate_freescout(url, customers=200)
    before = dict(rows(url, "SELECT id, (first_name, last_name, updated_at)::text FROM customers"))
    newest = value(url, "SELECT max(updated_at) FROM customers")
    change_customers(url, [3, 1, 5], suffix=" (edited)")
    after = rows(url, "SELECT id, last_name, updated_at, (first_name, last_name, updated_at)::text FROM customers")
    for customer_id, last_name, updated_at, whole in after:
        if customer_id in (1, 3, 5):
            assert last_name.endswith(" (edited)") and updated_at > newest
        else:
            assert whole == before[customer_id]
    with pytest.raises(ValueError, match="51"):
        change_customers(url, [2, 51])  # 51 is an id hole: nothing changes
    assert value(url, "SELECT (first_name, last_name, updated_at)::text FROM customers WHERE id = 2") == before[2]


def test_add_customers(new_database) -> None:
    url = new_database("fs_add")
    generate_freescout(url, customers=200)
    max_id = value(url, "SELECT max(id) FROM customers")
    ids = add_customers(url, 3)
    assert ids == [max_id + 1, max_id + 2, max_id + 3]
    added = rows(url, "SELECT c.id, c.first_name, c.last_name, count(e.id), min(e.type), min(e.email) FROM customers c "
                      "LEFT JOIN emails e ON e.customer_id = c.id WHERE c.id = ANY(%s) GROUP BY c.id ORDER BY c.id",
                 (ids,))
    for customer_id, first, last, emails, email_type, email in added:
        assert first and last and emails == 1 and email_type == 1
        assert email.endswith(f"{customer_id}@signup.example") and email == email.strip().lower()
    assert add_customers(url, 2) == [max_id + 4, max_id + 5]
    assert add_customers(url, 0) == []
