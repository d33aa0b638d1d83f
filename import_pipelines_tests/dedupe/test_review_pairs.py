"""Review pairs kept in a temporary table: stored once per pair, held per record, listed in a CSV, read in order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from psycopg import sql

from import_pipelines.control import ensure_control_schema
from import_pipelines.db import connect, ident
from import_pipelines.dedupe.review import hold_for_review, list_for_review, list_pairs, record_review, write_review_report
from import_pipelines.settings import DATA_DIR_ENV

# record s1 has three pairs, one of them listed twice (the second time more likely); s2 has one
LISTED = [(1, "s1", "source", "s9", 70.25, {"email": {"level": "separators", "bits": 6.5}}),
          (2, "s1", "target", "41", 88.5, {"email": {"level": "typo", "bits": 4.0}}),
          (3, "s2", "target", "42", 64.0, {"phone": {"level": "last7", "bits": 3.25}}),
          (4, "s1", "source", "s9", 81.75, {"email": {"level": "separators", "bits": 7.0}}),
          (5, "s1", "target", "43", 88.5, {"email": {"level": "typo", "bits": 4.0}})]


@pytest.fixture
def listing(target_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with connect(target_url) as conn:
        ensure_control_schema(conn)
        conn.execute("CREATE TEMP TABLE stg (sid text, _dup_of text, _match_tid text, _error text, _hold text)")
        conn.execute("INSERT INTO stg (sid) VALUES ('s1'), ('s2'), ('s3')")
        conn.execute("CREATE TEMP TABLE band (ord int, source_id text, kind text, candidate text, confidence float8,"
                     " fields text)")
        with conn.cursor().copy("COPY band FROM STDIN") as copy:
            for ord_, *row, fields in LISTED:
                copy.write_row((ord_, *row, json.dumps(fields)))
        pairs = list_for_review(conn, sql.SQL("SELECT ord, source_id, kind AS candidate_kind, candidate, confidence,"
                                              " fields FROM band"))
        yield conn, pairs


def test_pairs_are_read_in_order_and_bounded(listing) -> None:
    conn, pairs = listing
    assert len(pairs) == 5
    read = list(pairs.read(conn))
    assert [(p.source_id, p.candidate, p.confidence, p.fields) for _, p in read] == [
        (sid, candidate, confidence, fields) for _, sid, _, candidate, confidence, fields in LISTED]
    assert all(review_id is None for review_id, _ in read)  # not stored yet
    assert [p.candidate for _, p in pairs.read(conn, limit=2)] == ["s9", "41"]


def test_a_pair_listed_twice_is_stored_once_with_its_highest_confidence(listing) -> None:
    conn, pairs = listing
    record_review(conn, pairs, profile="crm", entity="customers", run_id="r1")
    stored = list_pairs(conn, profile="crm")
    assert sorted((p.source_id, p.candidate, p.confidence) for p in stored) == [
        ("s1", "41", 88.5), ("s1", "43", 88.5), ("s1", "s9", 81.75), ("s2", "42", 64.0)]
    ids = {(p.source_id, p.candidate): p.review_id for p in stored}
    # ids in the order of the first listing; both listings of a pair carry its id
    assert ids[("s1", "s9")] < ids[("s1", "41")] < ids[("s2", "42")] < ids[("s1", "43")]
    assert [review_id for review_id, _ in pairs.read(conn)] == [
        ids[("s1", "s9")], ids[("s1", "41")], ids[("s2", "42")], ids[("s1", "s9")], ids[("s1", "43")]]


def test_a_record_waits_naming_its_likeliest_pair(listing) -> None:
    conn, pairs = listing
    assert hold_for_review(conn, staging=ident("stg"), source_id="sid", pairs=pairs) == 2
    held = dict(conn.execute("SELECT sid, _hold FROM stg").fetchall())
    # a preview stores nothing: the candidate, no command; a tie goes to the pair listed first
    assert held == {"s1": "waiting for review: possible duplicate of target record 41, confidence 88.5"
                          " (and 3 other pairs)",
                    "s2": "waiting for review: possible duplicate of target record 42, confidence 64.0",
                    "s3": None}
    record_review(conn, pairs, profile="crm", entity="customers", run_id="r1")
    conn.execute("UPDATE stg SET _hold = NULL")
    hold_for_review(conn, staging=ident("stg"), source_id="sid", pairs=pairs)
    (review_id,) = conn.execute("SELECT review_id FROM import_control.review_pairs WHERE candidate = '41'").fetchone()
    (reason,) = conn.execute("SELECT _hold FROM stg WHERE sid = 's1'").fetchone()
    assert reason == (f"waiting for review: possible duplicate of target record 41, confidence 88.5 (pair {review_id})"
                      f" (and 3 other pairs); decide with `python -m import_pipelines review accept {review_id}`"
                      f" or `review reject {review_id}`")


def test_the_csv_lists_every_pair(listing) -> None:
    conn, pairs = listing
    record_review(conn, pairs, profile="crm", entity="customers", run_id="r1")
    path = write_review_report(conn, pairs, profile="crm", entity="customers", run_id="r1")
    with Path(path).open(encoding="utf-8") as report:
        rows = list(csv.reader(report))
    assert rows[0] == ["review_id", "source_id", "candidate_kind", "candidate", "confidence", "fields"]
    assert [row[1:5] for row in rows[1:]] == [[sid, kind, candidate, f"{confidence:.2f}"]
                                              for _, sid, kind, candidate, confidence, _ in LISTED]
    assert rows[1][5] == "email separators +6.5"
