"""Scoring and match_against: the evidence arithmetic, missing fields, match_any, ties.

Every expectation is worked out from the model's documented weights (see
``import_pipelines/dedupe/comparison.py``): a pair's confidence is the posterior probability of
``PRIOR_BITS`` plus the bits of its fields, in percent.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from import_pipelines.dedupe import DedupeRule, match_against
from import_pipelines.dedupe.comparison import (
    EMAIL_BITS,
    NAME_BITS,
    NAME_M,
    NAME_PRIOR_FREQUENCY,
    NAME_PRIOR_WEIGHT,
    PHONE_BITS,
    PRIOR_BITS,
    TEXT_RANGE,
)
from import_pipelines.dedupe.frequency import Frequencies
from import_pipelines.dedupe.matching import score_pairs
from import_pipelines.dedupe.normalize import prepare_frame

CONTACT_RULE = DedupeRule(strategy="fuzzy", primary=["email", "phone"],
                          secondary=["first_name", "last_name", "company"])


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def confidence(bits: float) -> float:
    """The confidence (0-100) of a pair with ``bits`` of evidence besides the prior."""
    return 100 / (1 + 2 ** -(PRIOR_BITS + bits))


def name_bits(holders: int, population: int) -> float:
    """An exact name agreement: log2(m / p), p the name's frequency smoothed towards the prior."""
    frequency = (holders + NAME_PRIOR_WEIGHT * NAME_PRIOR_FREQUENCY) / (population + NAME_PRIOR_WEIGHT)
    return math.log2(NAME_M / frequency)


def _scores(incoming: pd.DataFrame, existing: pd.DataFrame, rule: DedupeRule, *, prune: bool = True):
    left, right = prepare_frame(incoming, rule, id_column="id"), prepare_frame(existing, rule, id_column="id")
    return score_pairs(left, right, i=np.array([0]), j=np.array([0]), rule=rule,
                       frequencies=Frequencies.of([left, right], rule), prune=prune)


def test_jon_doe_matches_john_doe_on_phone_with_a_name_secondary() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["phone"], secondary=["name"], threshold=80)
    incoming = _frame([{"id": 1, "name": "Jon Doe", "phone": "(555) 010-2000"}])
    existing = _frame([{"id": 7, "name": "John Doe", "phone": "+1 555 010 2000"}])
    match = match_against(incoming, existing, rule, incoming_id="id", existing_id="id").get(1)
    # phone: both normalise to 15550102000, held by these two records only: 10 bits.
    # name: "jon doe" / "john doe" is a typo (Jaro-Winkler >= 0.9): 2.5 bits.
    assert match is not None and match.duplicate_of == 7 and match.basis == "score"
    assert match.levels == {"phone": "exact", "name": "typo"}
    assert match.matched_fields == {"phone": PHONE_BITS["exact"], "name": NAME_BITS["typo"]}
    assert match.confidence == pytest.approx(confidence(PHONE_BITS["exact"] + NAME_BITS["typo"]), abs=0.01)
    # at the default threshold (85) the same 85.0 % is just short: the pair is listed for review
    default = match_against(incoming, existing, DedupeRule(strategy="fuzzy", primary=["phone"], secondary=["name"]),
                            incoming_id="id", existing_id="id")
    assert default.matches == [] and [(m.record_id, m.duplicate_of) for m in default.review] == [(1, 7)]


def test_jon_doe_matches_with_a_realistic_contact_rule_and_a_missing_email() -> None:
    incoming = _frame([{"id": "a", "email": None, "phone": "(555) 010-2000", "first_name": "Jon",
                        "last_name": "Doe", "company": "Acme Corp"}])
    existing = _frame([{"id": "b", "email": "john.doe@acme.com", "phone": "+1 555 010 2000", "first_name": "John",
                        "last_name": "Doe", "company": "ACME  Corp"}])
    match = match_against(incoming, existing, CONTACT_RULE, incoming_id="id", existing_id="id").get("a")
    # email: missing on one side, no level at all. phone: 10. "Jon" is a nickname of "John": 3.5.
    # "Doe" is held by both records of two: log2(0.9 / p). company: the same after normalising, a
    # secondary text at most 4 bits.
    doe = round(name_bits(2, 2), 2)
    assert match is not None and match.duplicate_of == "b"
    assert match.levels == {"phone": "exact", "first_name": "nickname", "last_name": "exact", "company": "exact"}
    assert match.matched_fields == {"phone": PHONE_BITS["exact"], "first_name": NAME_BITS["nickname"],
                                    "last_name": doe, "company": TEXT_RANGE[1]}
    expected = PHONE_BITS["exact"] + NAME_BITS["nickname"] + name_bits(2, 2) + TEXT_RANGE[1]
    assert match.confidence == pytest.approx(confidence(expected), abs=0.01)


def test_a_present_but_different_email_does_count_against() -> None:
    existing = _frame([{"id": "b", "email": "john.doe@acme.com", "phone": "+1 555 010 2000", "first_name": "John",
                        "last_name": "Doe", "company": "Acme Corp"}])
    missing = _frame([{"id": "a", "email": None, "phone": "(555) 010-2000", "first_name": "Jon", "last_name": "Doe",
                       "company": "Acme Corp"}])
    different = missing.assign(email="jdoe.sales@other.org")
    without = _scores(missing, existing, CONTACT_RULE)
    against = _scores(different, existing, CONTACT_RULE)
    # a missing email says nothing; another address is evidence against (people have several)
    assert "email" not in without.matched_fields()[0]
    assert against.matched_fields()[0]["email"] == EMAIL_BITS["else"] < 0
    bits = math.log2(against.confidence[0] / (100 - against.confidence[0]))
    bits_without = math.log2(without.confidence[0] / (100 - without.confidence[0]))
    assert bits == pytest.approx(bits_without + EMAIL_BITS["else"], abs=0.01)


def test_unrelated_people_sharing_a_company_do_not_match() -> None:
    incoming = _frame([{"id": 1, "email": "alice.martin@acme.com", "phone": "555-123-4567", "first_name": "Alice",
                        "last_name": "Martin", "company": "Acme Corp"}])
    existing = _frame([{"id": 2, "email": "bob.chen@acme.com", "phone": "555-987-6543", "first_name": "Bob",
                        "last_name": "Chen", "company": "Acme Corp"}])
    result = match_against(incoming, existing, CONTACT_RULE, incoming_id="id", existing_id="id")
    assert result.get(1) is None and result.review == [] and result.pairs_compared == 0  # no shared key

    # forced into comparison: only the company agrees, and the names contradict each other
    scores = _scores(incoming, existing, CONTACT_RULE, prune=False)
    assert scores.level_names()[0] == {"email": "else", "phone": "else", "first_name": "else", "last_name": "else",
                                       "company": "exact"}
    assert scores.matched_fields()[0] == {"email": EMAIL_BITS["else"], "phone": PHONE_BITS["else"],
                                          "first_name": NAME_BITS["else"], "last_name": NAME_BITS["else"],
                                          "company": TEXT_RANGE[1]}
    assert scores.confidence[0] == pytest.approx(confidence(-2 - 1 - 16 + 4), abs=1e-4)
    assert not scores.is_match(0.0)[0]  # no primary evidence, and contradicting names: never a match
    # pruned (the default), the names of a pair without primary evidence are not even compared
    assert set(_scores(incoming, existing, CONTACT_RULE).matched_fields()[0]) == {"email", "phone"}


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
    # the email and the names disagree (case_insensitive knows exact and else only), but the
    # phone agrees after normalisation: a match_any field decides with confidence 100
    assert match is not None and match.duplicate_of == 10
    assert match.basis == "match_any" and match.confidence == 100.0
    assert match.matched_fields == {"email": EMAIL_BITS["else"], "first_name": NAME_BITS["else"],
                                    "last_name": NAME_BITS["else"], "phone": 0.0}
    assert match.levels["phone"] == "exact"
    assert result.get(2) is None


def test_match_all_needs_every_listed_field_to_agree() -> None:
    # a composite identity (an offender: a name and a postcode) decides alone, but only whole
    rule = DedupeRule(strategy="exact", primary=["name", "postcode"], match_all=["name", "postcode"], threshold=100)
    existing = _frame([{"id": 10, "name": "Harbour Fisheries Ltd", "postcode": "AB1 2CD"}])
    incoming = _frame([{"id": 1, "name": "harbour fisheries ltd ", "postcode": "ab1 2cd"},
                       {"id": 2, "name": "Harbour Fisheries Ltd", "postcode": "AB1 2CE"},
                       {"id": 3, "name": "Harbour Fisheries Ltd", "postcode": None}])
    result = match_against(incoming, existing, rule, incoming_id="id", existing_id="id")
    match = result.get(1)
    # both agree after normalisation: a duplicate with confidence 100, both fields recorded exact
    assert match is not None and match.duplicate_of == 10
    assert match.basis == "match_any" and match.confidence == 100.0
    assert match.levels == {"name": "exact", "postcode": "exact"}
    # the same name at another postcode, or with no postcode, is not this offender
    assert result.get(2) is None and result.get(3) is None


@pytest.mark.parametrize("settings, message", [
    ({"match_all": ["name"]}, "match_all lists one field"),
    ({"match_all": ["name", ""]}, "match_all holds an empty field name"),
    ({"match_all": ["name", "emails"], "all_values": {"name": "emails"}}, "match_all compares single values"),
])
def test_match_all_settings_are_checked(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DedupeRule(strategy="exact", primary=["name"], **settings)


def test_swapped_first_and_last_names_still_score_as_names() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["first_name", "last_name"])
    existing = _frame([{"id": 2, "email": "jdoe@x.com", "first_name": "John", "last_name": "Doe"}])
    swapped = match_against(_frame([{"id": 1, "email": "jdoe@x.com", "first_name": "Doe", "last_name": "John"}]),
                            existing, rule, incoming_id="id", existing_id="id").get(1)
    straight = match_against(_frame([{"id": 1, "email": "jdoe@x.com", "first_name": "John", "last_name": "Doe"}]),
                             existing, rule, incoming_id="id", existing_id="id").get(1)
    assert swapped is not None and swapped.levels == {"email": "exact", "first_name": "exact", "last_name": "exact"}
    # scored crossed, the names weigh what they weigh the right way round
    assert swapped.matched_fields == straight.matched_fields and swapped.confidence == straight.confidence
    assert swapped.matched_fields["first_name"] > 0 and swapped.matched_fields["last_name"] > 0


def test_best_existing_match_wins_and_ties_go_to_the_lowest_id() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["first_name"], threshold=80)
    incoming = _frame([{"id": "n", "email": "maria.lopez@mail.com", "first_name": "Maria"}])
    existing = _frame([
        {"id": 30, "email": "maria.lopez@mail.com", "first_name": "María"},
        {"id": 20, "email": "maria.lopez@mail.com", "first_name": "María"},
        {"id": 40, "email": "maria.lopez@mail.com", "first_name": "Maria"},
    ])
    result = match_against(incoming, existing, rule, incoming_id="id", existing_id="id")
    # the same address for all three; "Maria" agrees exactly with 40 and only after dropping the
    # accent with 20 and 30 (a bit less): 40 wins although its id is the highest
    assert result.get("n").duplicate_of == 40 and result.get("n").levels["first_name"] == "exact"
    result = match_against(incoming, existing[existing["id"] != 40], rule, incoming_id="id", existing_id="id")
    # 20 and 30 tie exactly: the lowest id wins
    assert result.get("n").duplicate_of == 20 and result.get("n").levels["first_name"] == "translit"
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
    # 1: only the email is present on both sides; the four missing fields weigh nothing
    assert result.get(1).matched_fields == {"email": EMAIL_BITS["exact"]}
    assert result.get(1).confidence == pytest.approx(confidence(EMAIL_BITS["exact"]), abs=0.01)
    # 2: no primary field on both sides: however well the names agree, no match
    assert result.get(2) is None
    left = prepare_frame(incoming, CONTACT_RULE, id_column="id")
    right = prepare_frame(existing, CONTACT_RULE, id_column="id")
    scores = score_pairs(left, right, i=np.array([1]), j=np.array([0]), rule=CONTACT_RULE,
                         frequencies=Frequencies.of([left, right], CONTACT_RULE), prune=False)
    fields = scores.matched_fields()[0]
    assert set(fields) == {"first_name", "last_name", "company"} and min(fields.values()) > 0
    assert scores.confidence[0] > 50 and not scores.is_match(0.0)[0]
