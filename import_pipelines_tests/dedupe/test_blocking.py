"""Blocking: shared keys on both sides, capped blocks, and linear growth of compared pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from import_pipelines.dedupe import (
    DedupeRule,
    blocking_keys,
    find_duplicates_within,
    match_against,
    target_blocking_keys,
)

RULE = DedupeRule(strategy="fuzzy", primary=["email", "phone"], secondary=["first_name", "last_name", "company"])
ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n", "p", "pr", "r",
          "s", "sh", "st", "t", "tr", "v", "w", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ei", "ou"]
CODAS = ["", "n", "r", "l", "s", "m", "k", "th"]


def _name(rng: np.random.Generator) -> str:
    """A made-up name from a space of millions: real name lists have a similarly long tail."""
    syllables = int(rng.integers(2, 4))
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)).title()


def _people(n: int, rng: np.random.Generator, *, start: int) -> list[dict]:
    people = []
    for k in range(start, start + n):
        # One in ten is a "John Smith": a name block that grows with the data until it is capped.
        first, last = ("John", "Smith") if rng.random() < 0.1 else (_name(rng), _name(rng))
        area, exchange, line = rng.integers(200, 1000), rng.integers(200, 1000), rng.integers(0, 10_000)
        people.append({"first_name": first, "last_name": last,
                       "email": f"{first}.{last}.{rng.integers(10**6)}@example{k}.com".lower(),
                       "phone": f"{area}-{exchange}-{line:04d}",
                       "company": rng.choice(["Acme", "Globex", "Initech", None])})
    return people


def _batch(n: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """n existing people, and n incoming records of which 30% are noisy copies of existing ones."""
    rng = np.random.default_rng(seed)
    existing = _people(n, rng, start=0)
    copies = []
    for person in rng.choice(existing, int(n * 0.3), replace=False):
        copy = dict(person)
        copy["email"] = copy["email"].upper() if rng.random() < 0.5 else copy["email"][:3] + copy["email"][4:]
        copy["phone"] = "+1 " + copy["phone"].replace("-", " ")
        copy["first_name"] = copy["first_name"][:-1]
        copies.append(copy)
    incoming = copies + _people(n - len(copies), rng, start=n)
    existing_df = pd.DataFrame(existing).assign(id=range(n))
    incoming_df = pd.DataFrame(incoming).assign(id=range(n))
    return incoming_df, existing_df, len(copies)


def test_doubling_the_input_roughly_doubles_the_compared_pairs() -> None:
    pairs, capped = [], []
    for n in (2000, 4000):
        incoming, existing, true_duplicates = _batch(n)
        result = match_against(incoming, existing, RULE, incoming_id="id", existing_id="id")
        within = find_duplicates_within(incoming, RULE, id_column="id")
        # Blocking must not lose the real duplicates while it keeps the work small.
        assert len(result) >= 0.95 * true_duplicates
        assert len(within) == 0
        pairs.append(result.pairs_compared + within.pairs_compared)
        capped.append(result.capped_blocks)
    ratio = pairs[1] / pairs[0]
    assert 1.5 < ratio < 3, (pairs, ratio)
    # The John Smith block (~10% of all records) is skipped and reported, not expanded quadratically.
    assert any(key.startswith("names:") and "smith" in key for key in capped[1])
    assert pairs[1] < 20 * 4000


def test_incoming_and_target_rows_get_the_same_keys_whatever_the_formatting() -> None:
    incoming = pd.DataFrame([{"id": 1, "email": " Ana.Souza@Mail.com", "phone": "(555) 010-2000",
                              "first_name": "Ana", "last_name": "Souza", "company": None}])
    target = pd.DataFrame([{"id": 9, "email": "ana.souza+crm@mail.com", "phone": "+1 555 010 2000",
                            "first_name": "SOUZA", "last_name": "Ána", "company": "X"}])
    incoming_keys = blocking_keys(incoming, RULE, id_column="id")
    target_keys = target_blocking_keys(target, RULE, id_column="id")
    assert list(incoming_keys.columns) == ["record_id", "key"]
    shared = set(incoming_keys["key"]) & set(target_keys["key"])
    assert {"email:local=anasouza", "phone:last7=0102000", "names:token=souza|an",
            "names:phonetic=a500|s200"} <= shared
    # The same frame gives the same keys through either function.
    assert target_blocking_keys(incoming, RULE, id_column="id").equals(incoming_keys)


def test_exact_strategy_keys_raw_values_only_for_primary_fields() -> None:
    rule = DedupeRule(strategy="exact", primary=["email"], secondary=["company"], match_any=["phone"])
    frame = pd.DataFrame([{"ref": "r1", "email": "A@B.com", "phone": "555 010 2000", "company": "Acme"}])
    keys = set(blocking_keys(frame.set_index("ref"), rule)["key"])
    assert keys == {"email:exact=A@B.com", "phone:norm=15550102000"}


def test_oversized_blocks_are_capped_reported_and_their_members_still_matched_by_other_keys() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["company"])
    existing = pd.DataFrame({"id": range(30), "email": [f"anna@shop{k}.com" for k in range(30)], "company": "Shop"})
    incoming = pd.DataFrame({"id": [1], "email": ["ANNA@shop7.com"], "company": ["Shop"]})
    result = match_against(incoming, existing, rule, incoming_id="id", existing_id="id", max_block_size=10)
    assert result.capped_blocks == {"email:local=anna": 31}
    assert result.get(1).duplicate_of == 7
    assert result.pairs_compared == 1


def test_name_keys_are_worked_out_once_per_name_and_given_to_every_record_that_has_it() -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["first_name", "last_name"])
    frame = pd.DataFrame({"id": [1, 2, 3, 4, 5], "email": None,
                          "first_name": ["John", None, "JOHN", "Mary Ann", "Lee"],
                          "last_name": ["Doe", None, "doe", "Smith", "Lee"]})
    keys = blocking_keys(frame, rule, id_column="id")
    by_record = {rid: sorted(group["key"]) for rid, group in keys.groupby("record_id")}
    assert by_record[1] == by_record[3] == ["names:phonetic=d000|j500", "names:token=doe|jo", "names:token=john|do"]
    assert 2 not in by_record  # no name, no email: no key at all
    # three words: every ordered pair of words, and every pair of their Soundex codes
    assert by_record[4] == sorted(["names:phonetic=a500|m600", "names:phonetic=a500|s530", "names:phonetic=m600|s530"]
                                  + [f"names:token={w}|{o[:2]}" for w in ("mary", "ann", "smith")
                                     for o in ("mary", "ann", "smith") if w != o])
    assert by_record[5] == ["names:phonetic=l000|l000", "names:token=lee|le"]
