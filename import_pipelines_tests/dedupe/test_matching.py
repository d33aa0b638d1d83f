"""Scoring and match_against: confidence arithmetic, missing fields, match_any."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from import_pipelines.dedupe import DedupeRule, match_against
from import_pipelines.dedupe.matching import score_pairs
from import_pipelines.dedupe.normalize import prepare_frame

CONTACT_RULE = DedupeRule(strategy="fuzzy", primary=["email", "phone"],
                          secondary=["first_name", "last_name", "company"])


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_jon_doe_matches_john_doe_on_phone_with_a_name_secondary() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["phone"], secondary=["name"])
    incoming = _frame([{"id": 1, "name": "Jon Doe", "phone": "(555) 010-2000"}])
    existing = _frame([{"id": 7, "name": "John Doe", "phone": "+1 555 010 2000"}])
    match = match_against(incoming, existing, rule, incoming_id="id", existing_id="id").get(1)
    # phone: both normalise to 15550102000 -> 100.
    # name: "jon doe" vs "john doe" is one insertion over 8 characters -> (1 - 1/8) * 100 = 87.5.
    # confidence = 0.8 * 100 + 0.2 * 87.5 = 97.5 >= 85.
    assert match is not None and match.duplicate_of == 7
    assert match.confidence == pytest.approx(97.5)
    assert match.matched_fields == {"phone": 100.0, "name": 87.5}
    assert match.basis == "score"


def test_jon_doe_matches_with_a_realistic_contact_rule_and_a_missing_email() -> None:
    incoming = _frame([{"id": "a", "email": None, "phone": "(555) 010-2000", "first_name": "Jon",
                        "last_name": "Doe", "company": "Acme Corp"}])
    existing = _frame([{"id": "b", "email": "john.doe@acme.com", "phone": "+1 555 010 2000", "first_name": "John",
                        "last_name": "Doe", "company": "ACME  Corp"}])
    match = match_against(incoming, existing, CONTACT_RULE, incoming_id="id", existing_id="id").get("a")
    # primary: email is missing on one side, so it counts neither way; phone alone = 100.
    # secondary: first_name "jon"/"john" = (1 - 1/4) * 100 = 75, last_name 100, company 100
    #   (case and spaces normalised) -> (75 + 100 + 100) / 3 = 91.67.
    # confidence = 0.8 * 100 + 0.2 * 91.67 = 98.33 >= 85.
    assert match is not None and match.duplicate_of == "b"
    assert match.confidence == pytest.approx(98.33, abs=0.01)
    assert match.matched_fields == {"phone": 100.0, "first_name": 75.0, "last_name": 100.0, "company": 100.0}
    assert "email" not in match.matched_fields


def test_a_present_but_different_email_does_count_against() -> None:
    incoming = _frame([{"id": "a", "email": "jdoe.sales@other.org", "phone": "(555) 010-2000", "first_name": "Jon",
                        "last_name": "Doe", "company": "Acme Corp"}])
    existing = _frame([{"id": "b", "email": "john.doe@acme.com", "phone": "+1 555 010 2000", "first_name": "John",
                        "last_name": "Doe", "company": "Acme Corp"}])
    match = match_against(incoming, existing, CONTACT_RULE, incoming_id="id", existing_id="id")
    # The email now scores low, pulling the primary part to about (30 + 100) / 2 = 65: below threshold.
    assert match.get("a") is None
    assert match.unmatched == ["a"]


def test_unrelated_people_sharing_a_company_do_not_match() -> None:
    incoming = _frame([{"id": 1, "email": "alice.martin@acme.com", "phone": "555-123-4567", "first_name": "Alice",
                        "last_name": "Martin", "company": "Acme Corp"}])
    existing = _frame([{"id": 2, "email": "bob.chen@acme.com", "phone": "555-987-6543", "first_name": "Bob",
                        "last_name": "Chen", "company": "Acme Corp"}])
    result = match_against(incoming, existing, CONTACT_RULE, incoming_id="id", existing_id="id")
    assert result.get(1) is None

    # Even forced into comparison, only the company agrees: far below the threshold.
    left = prepare_frame(incoming, CONTACT_RULE, id_column="id")
    right = prepare_frame(existing, CONTACT_RULE, id_column="id")
    scores = score_pairs(left, right, i=np.array([0]), j=np.array([0]), rule=CONTACT_RULE, prune=False)
    fields = dict(zip(scores.fields, scores.field_scores[0].tolist()))
    assert fields["company"] == 100.0
    assert fields["email"] < 70 and fields["first_name"] < 50 and fields["last_name"] < 50
    assert scores.confidence[0] < 70


def test_match_any_matches_on_phone_alone() -> None:
    rule = DedupeRule(strategy="case_insensitive", primary=["email"], secondary=["first_name", "last_name"],
                      match_any=["email", "phone"])
    incoming = _frame([{"id": 1, "email": "j.doe@home.net", "phone": "(555) 010-2000", "first_name": "Johnny",
                        "last_name": "D"},
                       {"id": 2, "email": "someone@else.net", "phone": "555-010-9999", "first_name": "Johnny",
                        "last_name": "D"}])
    existing = _frame([{"id": 10, "email": "john.doe@work.com", "phone": "+1 555 010 2000", "first_name": "John",
                        "last_name": "Doe"}])
    result = match_against(incoming, existing, rule, incoming_id="id", existing_id="id")
    match = result.get(1)
    # Email and names disagree (weighted score 0), but the phone agrees after normalisation.
    assert match is not None and match.duplicate_of == 10
    assert match.basis == "match_any" and match.confidence == 100.0
    assert match.matched_fields["phone"] == 100.0 and match.matched_fields["email"] == 0.0
    assert result.get(2) is None


def test_swapped_first_and_last_names_still_score_as_names() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["first_name", "last_name"])
    incoming = _frame([{"id": 1, "email": "jdoe@x.com", "first_name": "Doe", "last_name": "John"}])
    existing = _frame([{"id": 2, "email": "jdoe@x.com", "first_name": "John", "last_name": "Doe"}])
    match = match_against(incoming, existing, rule, incoming_id="id", existing_id="id").get(1)
    assert match is not None
    assert match.matched_fields == {"email": 100.0, "first_name": 100.0, "last_name": 100.0}


def test_best_existing_match_wins_and_ties_go_to_the_lowest_id() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["first_name"], threshold=80)
    incoming = _frame([{"id": "n", "email": "maria.lopez@mail.com", "first_name": "Maria"}])
    existing = _frame([
        {"id": 30, "email": "maria.lopez@mail.com", "first_name": "María"},
        {"id": 20, "email": "maria.lopez@mail.com", "first_name": "María"},
        {"id": 10, "email": "maria.lopes@mail.com", "first_name": "Maria"},
    ])
    result = match_against(incoming, existing, rule, incoming_id="id", existing_id="id")
    # 20 and 30: 0.8 * 100 + 0.2 * 80 = 96; 10: 0.8 * 95 + 0.2 * 100 = 96 as well -> lowest id, 10.
    assert result.get("n").duplicate_of == 10
    existing.loc[existing["id"] == 10, "email"] = "m.lopes@mail.com"
    result = match_against(incoming, existing, rule, incoming_id="id", existing_id="id")
    assert result.get("n").duplicate_of == 20
    frame = result.to_frame()
    assert list(frame.columns) == ["record_id", "duplicate_of", "confidence", "basis", "matched_fields"]
    assert frame.loc[0, "duplicate_of"] == 20 and isinstance(frame.loc[0, "duplicate_of"], int)


def test_a_rule_field_missing_from_the_frame_is_a_clear_error() -> None:
    incoming = _frame([{"id": 1, "email": "a@b.c", "phone": "5550102000"}])
    with pytest.raises(ValueError, match=r"the existing frame has no column\(s\) \['phone'\]"):
        match_against(incoming, _frame([{"id": 1, "email": "a@b.c"}]),
                      DedupeRule(strategy="exact", primary=["email"], match_any=["phone"]),
                      incoming_id="id", existing_id="id")
    with pytest.raises(ValueError, match="not unique"):
        match_against(_frame([{"id": 1, "email": "a"}, {"id": 1, "email": "b"}]), incoming,
                      DedupeRule(strategy="exact", primary=["email"]), incoming_id="id", existing_id="id")


def test_missing_fields_count_neither_for_nor_against() -> None:
    incoming = _frame([{"id": 1, "email": "ada@lovelace.org", "phone": None, "first_name": None, "last_name": None,
                        "company": None},
                       {"id": 2, "email": None, "phone": None, "first_name": "Ada", "last_name": "Lovelace",
                        "company": "Analytical Engines"}])
    existing = _frame([{"id": 9, "email": "ada@lovelace.org", "phone": "555-010-7777", "first_name": "Ada",
                        "last_name": "Lovelace", "company": "Analytical Engines"}])
    result = match_against(incoming, existing, CONTACT_RULE, incoming_id="id", existing_id="id")
    # 1: only the email is present on both sides; no secondary field is, so the secondary weight
    # goes to the primary part: confidence = 100 (not capped at 80).
    assert result.get(1).confidence == 100.0 and result.get(1).matched_fields == {"email": 100.0}
    # 2: no primary field on both sides, so the primary part is 0: at most 0.2 * 100 = 20.
    assert result.get(2) is None
    left = prepare_frame(incoming, CONTACT_RULE, id_column="id")
    right = prepare_frame(existing, CONTACT_RULE, id_column="id")
    scores = score_pairs(left, right, i=np.array([1]), j=np.array([0]), rule=CONTACT_RULE, prune=False)
    assert scores.confidence[0] == pytest.approx(20.0)
