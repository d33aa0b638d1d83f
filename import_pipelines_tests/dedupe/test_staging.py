"""apply_rule on a real staging table: chunk by chunk, it finds what the in-memory engine finds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from import_pipelines.db import connect, ident
from import_pipelines.dedupe import DedupeRule, find_duplicates_within, match_against
from import_pipelines.dedupe.blocking import soundex
from import_pipelines.dedupe.comparison import email_parts, name_letters, name_level, name_words
from import_pipelines.dedupe.frequency import Frequencies
from import_pipelines.dedupe.normalize import prepare_frame
from import_pipelines.dedupe.staging import PAIRS_PER_ROW_CHUNK, DedupeOutcome, apply_rule

RULE = DedupeRule(strategy="fuzzy", primary=["email", "phone"], secondary=["first_name", "last_name"])
STAGING, TARGET = ident("stg"), ident("people")
FIELDS = ["email", "phone", "first_name", "last_name"]
FIRST = ["John", "Mary", "Ana", "José", "Li", "Grace", "Alan", "Ada"]
LAST = ["Smith", "Doe", "Souza", "García", "Wei", "Hopper", "Turing", "Lovelace"]


def _person(rng: np.random.Generator, k: int) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {"email": f"{first}.{last}{k}@example{k % 7}.com".lower(), "first_name": first, "last_name": last,
            "phone": f"555-{rng.integers(100, 1000)}-{k:04d}"}


def _noisy(rng: np.random.Generator, person: dict) -> dict:
    copy = dict(person)
    roll = rng.random()
    if roll < 0.3:
        copy["email"] = copy["email"].upper() + " "
    elif roll < 0.5:
        copy["email"] = copy["email"][:2] + copy["email"][3:]  # a typo: only the phone and names block now
    elif roll < 0.6:
        copy["email"] = None
    copy["phone"] = "+1 " + copy["phone"].replace("-", " ") if rng.random() < 0.5 else copy["phone"]
    if rng.random() < 0.3:
        copy["first_name"], copy["last_name"] = copy["last_name"], copy["first_name"]
    return copy


def _setup(conn: psycopg.Connection, *, seed: int, pk_type: str = "bigint") -> None:
    """A target of 60 people (10 of them this source's, by natural key) and a staging batch of 170.

    The batch holds noisy copies of target people, of each other (2 to 4 copies of a person),
    and new people; a few rows carry an error or an earlier duplicate mark. With only 8 first
    and 8 last names, name blocks are large and many are capped.
    """
    rng = np.random.default_rng(seed)
    conn.execute(f"CREATE TABLE people (id {pk_type} PRIMARY KEY, source_system text, external_id text,"
                 " email text, phone text, first_name text, last_name text, UNIQUE (source_system, external_id))")
    conn.execute("CREATE TABLE stg (_rn bigint GENERATED ALWAYS AS IDENTITY, external_id bigint, email text,"
                 " phone text, first_name text, last_name text, updated_at timestamptz, _dup_of text, _error text,"
                 " _match_tid text, _confidence real, _match jsonb)")
    existing = [_person(rng, k) for k in range(60)]
    with conn.cursor().copy("COPY people (id, source_system, external_id, email, phone, first_name, last_name)"
                            " FROM STDIN") as copy:
        for k, person in enumerate(existing):
            pk = 1000 - k if pk_type == "bigint" else f"p-{k:03d}"
            system, external = ("crm", str(5000 + k)) if k < 10 else ("legacy", f"L{k}")
            copy.write_row((pk, system, external, *(person[f] for f in FIELDS)))
    rows = []
    for k in range(50):  # copies of target people; 5000..5009 are this source's own rows (known)
        source = 5000 + k if k < 10 else 6000 + k
        rows.append((source, _noisy(rng, existing[k])))
    for k in range(30):  # people with 2 to 4 copies in the batch
        person = _person(rng, 100 + k)
        rows += [(7000 + 10 * k + c, _noisy(rng, person) if c else person) for c in range(int(rng.integers(2, 5)))]
    rows += [(8000 + k, _person(rng, 200 + k)) for k in range(170 - len(rows))]
    order = rng.permutation(len(rows))
    columns = "external_id, email, phone, first_name, last_name, updated_at"
    with conn.cursor().copy(f"COPY stg ({columns}) FROM STDIN") as copy:
        for k in order:
            source, person = rows[k]
            stamp = None if k % 11 == 0 else f"2024-01-{1 + k % 28:02d}T00:00:00Z"
            copy.write_row((source, *(person[f] for f in FIELDS), stamp))
    conn.execute("UPDATE stg SET _error = 'email: too long' WHERE _rn IN (3, 40)")
    conn.execute("UPDATE stg SET _dup_of = '1', _confidence = 100 WHERE _rn = 41")
    conn.commit()


def _findings(conn: psycopg.Connection) -> dict[int, tuple]:
    rows = conn.execute("SELECT _rn, _dup_of, _match_tid, _confidence, _match FROM stg"
                        " WHERE _confidence IS NOT NULL AND _rn <> 41").fetchall()
    return {rn: (dup_of, tid, round(confidence, 2), match) for rn, dup_of, tid, confidence, match in rows}


def _in_memory(conn: psycopg.Connection, *, max_block_size: int) -> tuple[dict[int, tuple], int]:
    """The same rule over whole tables in pandas: the in-memory engine and the one-row-one-record rule."""
    incoming = pd.DataFrame(conn.execute(
        "SELECT _rn, external_id, email, phone, first_name, last_name, updated_at, EXISTS (SELECT 1 FROM people AS t"
        " WHERE t.source_system = 'crm' AND t.external_id = s.external_id::text) FROM stg AS s"
        " WHERE _dup_of IS NULL AND _error IS NULL").fetchall(),
        columns=["_rn", "external_id", *FIELDS, "updated_at", "known"])
    candidates = pd.DataFrame(conn.execute(
        "SELECT id, email, phone, first_name, last_name FROM people AS t WHERE NOT (t.source_system = 'crm'"
        " AND EXISTS (SELECT 1 FROM stg AS s WHERE s.external_id::text = t.external_id))").fetchall(),
        columns=["id", *FIELDS])
    for frame in (incoming, candidates):
        for name in FIELDS:
            frame[name] = frame[name].astype("string")
    # term frequencies over the valid staged rows and the candidate target rows, for both steps
    frequencies = Frequencies.of([prepare_frame(incoming, RULE, id_column="_rn"),
                                  prepare_frame(candidates, RULE, id_column="id")], RULE)
    groups = find_duplicates_within(incoming, RULE, id_column="_rn", updated_column="updated_at",
                                    max_block_size=max_block_size, frequencies=frequencies)
    source = dict(zip(incoming["_rn"], incoming["external_id"].astype(str)))
    found = {d.record_id: (source[d.duplicate_of], None, round(d.confidence, 2), d.matched_fields)
             for d in groups.duplicates}
    survivors = incoming[~incoming["_rn"].isin(list(found)) & ~incoming["known"]]
    matches = match_against(survivors, candidates, RULE, incoming_id="_rn", existing_id="id",
                            max_block_size=max_block_size, frequencies=frequencies)
    owners: dict[str, object] = {}
    for match in sorted(matches.matches, key=lambda m: (-m.confidence, m.record_id)):
        owner = owners.setdefault(str(match.duplicate_of), match)
        found[match.record_id] = ((None, str(match.duplicate_of)) if owner is match
                                  else (source[owner.record_id], None)) + (round(match.confidence, 2),
                                                                           match.matched_fields)
    return found, groups.pairs_compared + matches.pairs_compared


def _apply(conn: psycopg.Connection, *, reader: psycopg.Connection | None = None, chunk_rows: int,
           max_block_size: int) -> DedupeOutcome:
    with conn.transaction():
        return apply_rule(conn, staging=STAGING, target=TARGET, primary_key="id",
                          natural_key=("source_system", "external_id"), source_system="crm",
                          source_id="external_id", rule=RULE, survivor_updated="updated_at", reader=reader,
                          chunk_rows=chunk_rows, max_block_size=max_block_size)


@pytest.mark.parametrize(("pk_type", "with_reader", "max_block_size"), [
    ("bigint", True, 40), ("bigint", False, 40), ("text", True, 20), ("bigint", True, 100),
])
def test_small_chunks_find_what_the_in_memory_engine_finds(target_url: str, pk_type: str, with_reader: bool,
                                                           max_block_size: int) -> None:
    with connect(target_url, autocommit=True) as conn, connect(target_url, read_only=True) as reader:
        _setup(conn, seed=5, pk_type=pk_type)
        expected, expected_pairs = _in_memory(conn, max_block_size=max_block_size)
        # 7 rows a chunk: blocks, clusters and a target row's candidates all span chunks
        outcome = _apply(conn, reader=reader if with_reader else None, chunk_rows=7, max_block_size=max_block_size)
        found = _findings(conn)
        leftover = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_dedupe%%'"
                                " AND relpersistence = 't'").fetchone()[0]
    assert {rn: (d, t, c, json.loads(json.dumps(m))) for rn, (d, t, c, m) in expected.items()} == found
    # the set tests something: duplicates in the batch, matches to target rows, and a target row
    # claimed by two records (the second becomes the first's duplicate)
    kinds = {(d is not None, t is not None) for d, t, _, _ in found.values()}
    assert kinds == {(True, False), (False, True)} and outcome.against_target >= 10 and outcome.within >= 20
    assert outcome.pairs_compared == expected_pairs
    assert outcome.within + outcome.against_target == len(found)
    assert leftover == 0  # the temporary tables are gone


def test_chunk_size_does_not_change_the_findings(target_url: str) -> None:
    results = []
    with connect(target_url, autocommit=True) as conn:
        _setup(conn, seed=11)
        for chunk_rows in (1, 7, 1000):
            outcome = _apply(conn, chunk_rows=chunk_rows, max_block_size=40)
            results.append((_findings(conn), outcome.pairs_compared))
            conn.execute("UPDATE stg SET _dup_of = NULL, _match_tid = NULL, _confidence = NULL, _match = NULL"
                         " WHERE _rn <> 41")
    assert results[0] == results[1] == results[2] and len(results[0][0]) > 30


def test_the_value_caches_hold_a_chunk_of_values_not_the_tables(target_url: str) -> None:
    """The streaming path starts each chunk with empty value caches, so what they hold does not grow with
    the tables; the in-memory engine keeps every value it met."""
    caches = (email_parts, name_words, name_letters, name_level, soundex)
    with connect(target_url, autocommit=True) as conn:
        _setup(conn, seed=5)
        _in_memory(conn, max_block_size=40)
        filled = {cached.__name__: cached.cache_info().currsize for cached in caches}
        _apply(conn, chunk_rows=7, max_block_size=40)
    held = {cached.__name__: cached.cache_info().currsize for cached in caches}
    # the in-memory engine keeps every address it met, the streaming path at most those of the last
    # chunk of pairs: 28 pairs of two records
    assert filled["email_parts"] > 2 * 7 * PAIRS_PER_ROW_CHUNK >= held["email_parts"], (filled, held)
    assert all(held[name] <= filled[name] for name in held), (filled, held)


def test_blocks_above_the_cap_are_skipped_counting_both_sides(target_url: str) -> None:
    rule = DedupeRule(strategy="fuzzy", primary=["email"], secondary=["company"])
    with connect(target_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE people (id bigint PRIMARY KEY, source_system text, external_id text, email text,"
                     " company text)")
        conn.execute("CREATE TABLE stg (_rn bigint GENERATED ALWAYS AS IDENTITY, sid text, email text, company text,"
                     " _dup_of text, _error text, _match_tid text, _confidence real, _match jsonb)")
        # "anna" local parts: 6 in the batch and 5 in the target, one block of 11 > 10
        conn.execute("INSERT INTO people SELECT k, 'legacy', 'L' || k, 'anna@shop' || k || '.com', 'Shop'"
                     " FROM generate_series(1, 5) AS k")
        conn.execute("INSERT INTO stg (sid, email, company) SELECT 's' || k, 'anna@' || (ARRAY['acme', 'globex',"
                     " 'initech', 'umbrella', 'hooli', 'vandelay'])[k] || '.org', 'Shop'"
                     " FROM generate_series(1, 6) AS k")
        # and one record that is a target row written differently: a block of 2 on the full address
        conn.execute("INSERT INTO stg (sid, email, company) VALUES ('s7', 'ANNA@shop3.com', 'Shop')")

        def run(cap: int) -> DedupeOutcome:
            conn.execute("UPDATE stg SET _dup_of = NULL, _match_tid = NULL, _confidence = NULL, _match = NULL")
            with conn.transaction():
                return apply_rule(conn, staging=STAGING, target=TARGET, primary_key="id",
                                  natural_key=("source_system", "external_id"), source_system="crm", source_id="sid",
                                  rule=rule, chunk_rows=3, max_block_size=cap)

        capped = run(10)
        matched = conn.execute("SELECT sid, _match_tid FROM stg WHERE _match_tid IS NOT NULL").fetchall()
        # within the batch the anna block holds 7 <= 10: 21 pairs, none a match (the domains differ)
        assert (capped.within, capped.against_target) == (0, 1) and matched == [("s7", "3")]
        assert capped.pairs_compared == 21 + 1
        # with room for the block, every record meets every target row through it
        assert run(12).pairs_compared == 21 + 7 * 5
        # and a tighter cap skips the batch's block too
        assert run(6).pairs_compared == 1
