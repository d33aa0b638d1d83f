"""Within-batch clusters and survivors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from import_pipelines.dedupe import DedupeRule, find_duplicates_within
from import_pipelines.dedupe.comparison import EMAIL_BITS, PHONE_BITS, PRIOR_BITS
from import_pipelines.dedupe.survivor import connected_components

RULE = DedupeRule(strategy="fuzzy", primary=["email", "phone"], secondary=["first_name", "last_name", "company"])


def _copies(updated: list[str | None], companies: list[str | None]) -> pd.DataFrame:
    """Three records of one customer, written three ways, plus an unrelated customer."""
    rows = [
        {"id": 101, "email": "Grace.Hopper@navy.mil", "phone": "(202) 555-0147", "first_name": "Grace",
         "last_name": "Hopper"},
        {"id": 102, "email": "grace.hopper@navy.mil ", "phone": "+1 202 555 0147", "first_name": "GRACE",
         "last_name": "Hoper"},
        {"id": 103, "email": None, "phone": "202.555.0147", "first_name": "Hopper", "last_name": "Grace"},
        {"id": 104, "email": "alan.turing@npl.co.uk", "phone": "+44 20 7946 0000", "first_name": "Alan",
         "last_name": "Turing"},
    ]
    frame = pd.DataFrame(rows)
    frame["company"] = companies + ["NPL"]
    frame["updated_at"] = updated + ["2024-06-01T00:00:00Z"]
    return frame


def test_three_copies_become_one_cluster_and_the_most_recent_survives() -> None:
    batch = _copies(["2024-01-05T10:00:00Z", "2024-03-01T09:00:00Z", "2024-02-11T08:00:00Z"],
                    ["US Navy", None, "US Navy"])
    groups = find_duplicates_within(batch, RULE, id_column="id", updated_column="updated_at")
    assert len(groups.clusters) == 1
    cluster = groups.clusters[0]
    assert set(cluster.members) == {101, 102, 103}
    # 102 is the least complete (no company) but the most recently updated: recency wins.
    assert cluster.survivor == 102 and groups.survivors == [102]
    duplicates = {d.record_id: d for d in groups.duplicates}
    assert set(duplicates) == {101, 103}
    assert all(d.duplicate_of == 102 and d.confidence >= RULE.threshold for d in duplicates.values())
    # 103 has no email: it matched on the phone, and its swapped names were scored crossed.
    assert "email" not in duplicates[103].matched_fields
    assert duplicates[103].levels == {"phone": "exact", "first_name": "typo", "last_name": "exact"}  # Hopper~Hoper
    # the line is held by three records: a bit less than a line of one person's (log2(3 - 1))
    assert duplicates[103].matched_fields["phone"] == PHONE_BITS["exact"] - 1.0
    frame = groups.to_frame()
    assert sorted(frame["record_id"]) == [101, 103] and set(frame["duplicate_of"]) == {102}


def test_equal_timestamps_fall_back_to_the_most_complete_then_the_lowest_id() -> None:
    same = "2024-03-01T09:00:00Z"
    batch = _copies([same, same, same], [None, None, "US Navy"])
    groups = find_duplicates_within(batch, RULE, id_column="id", updated_column="updated_at")
    # 101 and 102 lack a company, 103 lacks an email: four of five fields filled each, so
    # completeness ties too and the lowest id, 101, survives.
    assert groups.clusters[0].survivor == 101

    batch = _copies([same, same, same], [None, "US Navy", None])
    groups = find_duplicates_within(batch, RULE, id_column="id", updated_column="updated_at")
    # Now 102 has every field filled: the most complete record wins the tie.
    assert groups.clusters[0].survivor == 102

    groups = find_duplicates_within(batch.drop(columns="updated_at"), RULE, id_column="id")
    assert groups.clusters[0].survivor == 102

    # A record without a timestamp counts as the oldest, however complete it is.
    batch = _copies([None, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"], ["US Navy", None, None])
    groups = find_duplicates_within(batch, RULE, id_column="id", updated_column="updated_at")
    assert groups.clusters[0].survivor == 103 and groups.clusters[0].members[-1] == 101


def test_a_member_linked_only_through_another_is_reported_as_a_chain() -> None:
    rule = DedupeRule(strategy="case_insensitive", primary=["email"], match_any=["email", "phone"])
    batch = pd.DataFrame([
        {"id": "a", "email": "kim@example.com", "phone": "555-010-1111", "updated_at": "2024-05-01"},
        {"id": "b", "email": "KIM@example.com", "phone": "555-010-2222", "updated_at": "2024-01-01"},
        {"id": "c", "email": "kim.lee@work.com", "phone": "(555) 010-2222", "updated_at": "2024-01-01"},
    ])
    groups = find_duplicates_within(batch, rule, id_column="id", updated_column="updated_at")
    # a~b share the email, b~c share the phone; a and c share nothing but are one customer.
    assert [(c.survivor, set(c.members)) for c in groups.clusters] == [("a", {"a", "b", "c"})]
    by_id = {d.record_id: d for d in groups.duplicates}
    assert by_id["b"].basis == "match_any" and by_id["b"].confidence == 100.0
    # c against its survivor directly: another address, nothing else compared (phone is match_any only)
    assert by_id["c"].basis == "chain" and by_id["c"].duplicate_of == "a"
    assert by_id["c"].matched_fields == {"email": EMAIL_BITS["else"]} and by_id["c"].levels == {"email": "else"}
    assert by_id["c"].confidence == round(100 / (1 + 2 ** -(PRIOR_BITS + EMAIL_BITS["else"])), 2)


def test_unrelated_records_form_no_cluster() -> None:
    batch = _copies(["2024-01-01T00:00:00Z"] * 3, [None] * 3).iloc[[0, 3]]
    groups = find_duplicates_within(batch, RULE, id_column="id")
    assert groups.clusters == [] and groups.duplicates == [] and len(groups.to_frame()) == 0


def test_connected_components_joins_chains_and_keeps_singletons_apart() -> None:
    # 0-5, 5-2, 2-7 is one chain; 3-4 another; 1 and 6 stand alone.
    labels = connected_components(8, a=np.array([5, 2, 4, 7]), b=np.array([0, 5, 3, 2]))
    assert labels.tolist() == [0, 1, 0, 3, 3, 0, 6, 0]
