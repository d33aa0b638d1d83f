"""Join suggestions: declared foreign keys, naming patterns checked against the data, and their precision.

The truth for FreeScout is the references its code follows (its migrations declare none); for the
two independently written schemas (osTicket, Chatwoot) it is listed next to their DDL.
"""

from __future__ import annotations

import pytest

from import_pipelines.authoring.joins import JoinSuggestion, suggest_joins
from import_pipelines.db import connection
from import_pipelines.db.introspect import describe_schema
from import_pipelines_tests.authoring.schemas import SCHEMAS, EvaluationSchema

FREESCOUT_TRUTH = {
    "emails.customer_id": "customers.id", "conversations.customer_id": "customers.id",
    "conversations.user_id": "users.id", "conversations.mailbox_id": "mailboxes.id",
    "conversations.created_by_user_id": "users.id", "conversations.created_by_customer_id": "customers.id",
    "conversations.closed_by_user_id": "users.id", "conversations.folder_id": "folders.id",
    "threads.conversation_id": "conversations.id", "threads.user_id": "users.id", "threads.customer_id": "customers.id",
    "threads.created_by_user_id": "users.id", "threads.created_by_customer_id": "customers.id",
    "threads.saved_reply_id": "saved_replies.id", "timelogs.conversation_id": "conversations.id",
    "timelogs.user_id": "users.id",
}


def suggestions(url: str) -> list[JoinSuggestion]:
    with connection(url, read_only=True) as conn:
        return suggest_joins(conn, describe_schema(conn, details=True))


def precision(found: list[JoinSuggestion], truth: dict[str, str], *, above: float = 0.5) -> tuple[int, int]:
    """(right, all) among the suggestions above ``above`` that are not declared foreign keys."""
    judged = [s for s in found if s.confidence > above and "declared" not in s.evidence]
    return sum(truth.get(s.from_ref) == s.to_ref for s in judged), len(judged)


def test_freescout_suggestions_are_confident_and_right(freescout_source: str) -> None:
    found = suggestions(freescout_source)
    by_ref = {(s.from_ref, s.to_ref): s for s in found}
    for wanted in (("emails.customer_id", "customers.id"), ("threads.conversation_id", "conversations.id"),
                   ("conversations.customer_id", "customers.id"), ("conversations.user_id", "users.id")):
        assert wanted in by_ref, f"{wanted} not suggested"
        suggestion = by_ref[wanted]
        assert suggestion.confidence >= 0.85, (wanted, suggestion.confidence, suggestion.evidence)
        assert suggestion.evidence["match_share"] >= 0.98 and suggestion.evidence["types"] == "same"
        assert suggestion.evidence["cardinality"] == "many-to-one"
    wrong = [(s.from_ref, s.to_ref, s.confidence) for s in found
             if s.confidence > 0.5 and FREESCOUT_TRUTH.get(s.from_ref) != s.to_ref]
    assert wrong == []
    right, judged = precision(found, FREESCOUT_TRUTH)
    print(f"\nFreeScout demo: {right}/{judged} suggestions above 0.5 right")
    # one suggestion per column, and the JSON shape the inspection prints
    assert len({s.from_ref for s in found}) == len(found)
    document = by_ref[("emails.customer_id", "customers.id")].to_json()
    assert set(document) == {"from", "to", "confidence", "evidence"} and 0 <= document["confidence"] <= 1


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.name for s in SCHEMAS])
def test_precision_on_independently_written_schemas(schema: EvaluationSchema, new_database) -> None:
    url = new_database(schema.name)
    schema.create(url)
    found = suggestions(url)
    right, judged = precision(found, schema.truth)
    recalled = {s.from_ref for s in found if s.confidence > 0.5 and schema.truth.get(s.from_ref) == s.to_ref}
    print(f"\n{schema.name}: precision above 0.5 {right}/{judged} (declared keys left out), "
          f"recall {len(recalled)}/{len(schema.truth)}; missed {sorted(set(schema.truth) - recalled)}")
    assert judged >= 25
    assert right / judged >= 0.95
    assert len(recalled) >= 0.8 * len(schema.truth)
    declared = {s.from_ref for s in found if "declared" in s.evidence}
    assert declared == set(schema.declared)
    assert all(s.confidence == 1.0 for s in found if "declared" in s.evidence)


@pytest.fixture
def crafted(source_url: str) -> str:
    """Names that say one thing while the data says another, and the patterns' edge cases."""
    with connection(source_url, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE customers (id bigint PRIMARY KEY, name text);
            INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 500) g;
            -- named like a reference, but its values are ids of another system
            CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint);
            INSERT INTO orders (customer_id) SELECT 90000 + g FROM generate_series(1, 400) g;
            -- a text column holding the ids, with '' and '0' for "none"
            CREATE TABLE notes (id serial PRIMARY KEY, customer_id varchar(20));
            INSERT INTO notes (customer_id)
              SELECT CASE WHEN g % 4 = 0 THEN '0' WHEN g % 4 = 1 THEN '' ELSE (g % 500 + 1)::text END
              FROM generate_series(1, 400) g;
            -- polymorphic: the *_type column says which table the id is in
            CREATE TABLE taggings (id serial PRIMARY KEY, customer_id int, customer_type text);
            INSERT INTO taggings (customer_id, customer_type) SELECT g % 500 + 1, 'Customer' FROM generate_series(1, 300) g;
            -- a timestamp cannot reference a bigint key
            CREATE TABLE visits (id serial PRIMARY KEY, customer_id timestamptz);
            ANALYZE;
        """)
    return source_url


def test_the_data_confirms_or_contradicts_the_name(crafted: str) -> None:
    found = {s.from_ref: s for s in suggestions(crafted)}
    assert found["orders.customer_id"].confidence < 0.05
    assert found["orders.customer_id"].evidence["match_share"] == 0
    notes = found["notes.customer_id"]
    assert notes.to_ref == "customers.id" and notes.evidence["types"] == "text holding integers"
    assert notes.evidence["blank"] == 200 and notes.evidence["match_share"] == 1.0
    assert 0.6 < notes.confidence < 0.9  # lower than the same values stored as integers
    tagging = found["taggings.customer_id"]
    assert tagging.evidence["polymorphic_with"] == "customer_type" and tagging.confidence < 0.6
    assert "visits.customer_id" not in found
