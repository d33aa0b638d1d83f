"""The review band: possible duplicates that a person confirms or rejects, and the decisions kept.

The dedupe step lists every pair between the rule's ``review_threshold`` and its ``threshold``
(``import_control.review_pairs``, a CSV under ``<data>/reports/<run>/``, the first
:data:`SHOWN_PAIRS` in a table in the run's metadata) and holds the record back from the load
until a person decides; a decision is kept for the pair, so on the next run an accepted pair
merges and a rejected one never does.

The pairs a rule lists wait in a temporary table of the session (:class:`ReviewPairs`) until
the transaction that listed them ends; storing them, holding their records back and writing
the CSV read them from there set-based or a chunk at a time, so that a run listing many pairs
holds none of them in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql

from import_pipelines.db.copy import report_path
from import_pipelines.db.sql import ident

CandidateKind = Literal["source", "target"]
Decision = Literal["accepted", "rejected"]

SHOWN_PAIRS = 200
"""Review pairs a run's metadata lists (its CSV holds them all)."""
_CHUNK = 10_000  # pairs read at a time


@dataclass(frozen=True)
class ReviewPair:
    """A record held back and the record it may duplicate (a source id of the import, or a target row)."""

    source_id: str
    candidate_kind: CandidateKind
    candidate: str
    confidence: float
    fields: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Decisions:
    """The pairs of one profile and entity a person decided (in both orientations for pairs of
    source records), and those still waiting."""

    accepted: frozenset[tuple[str, CandidateKind, str]] = frozenset()
    rejected: frozenset[tuple[str, CandidateKind, str]] = frozenset()
    waiting: frozenset[tuple[str, CandidateKind, str]] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.accepted or self.rejected)

    def of(self, source_id: str, kind: CandidateKind, candidate: str) -> Decision | None:
        """The decision on a pair, if any."""
        keys = {(source_id, kind, candidate)} | ({(candidate, kind, source_id)} if kind == "source" else set())
        if keys & self.rejected:
            return "rejected"
        if keys & self.accepted:
            return "accepted"
        return None


def load_decisions(conn: psycopg.Connection, *, profile: str, entity: str) -> Decisions:
    """Every listed pair of ``profile`` / ``entity``, decided or waiting."""
    rows = conn.execute("SELECT source_id, candidate_kind, candidate, decision FROM import_control.review_pairs"
                        " WHERE profile = %s AND entity = %s", (profile, entity)).fetchall()
    return Decisions(accepted=frozenset((s, k, c) for s, k, c, d in rows if d == "accepted"),
                     rejected=frozenset((s, k, c) for s, k, c, d in rows if d == "rejected"),
                     waiting=frozenset((s, k, c) for s, k, c, d in rows if d is None))


@dataclass(frozen=True)
class ReviewPairs:
    """The pairs a rule listed for review, in the session's temporary table ``table``, in order.

    The table (``ord``, ``source_id``, ``candidate_kind``, ``candidate``, ``confidence``,
    ``fields`` as JSON text, ``review_id`` once stored) is dropped when the transaction that
    listed the pairs ends; with no pair listed there may be none.
    """

    count: int = 0
    table: str = "_review_pairs"

    def __len__(self) -> int:
        return self.count

    def read(self, conn: psycopg.Connection, *,
             limit: int | None = None) -> Iterator[tuple[int | None, ReviewPair]]:
        """The pairs in order with their review ids (None until stored), a chunk at a time."""
        if not self.count:
            return
        with conn.cursor(name="import_pipelines_review_pairs") as cursor:
            cursor.execute(sql.SQL("SELECT review_id, source_id, candidate_kind, candidate, confidence, fields"
                                   " FROM {} ORDER BY ord LIMIT %s").format(ident(self.table)), (limit,))
            while rows := cursor.fetchmany(_CHUNK):
                for review_id, source_id, kind, candidate, confidence, fields in rows:
                    yield review_id, ReviewPair(source_id=source_id, candidate_kind=kind, candidate=candidate,
                                                confidence=confidence, fields=json.loads(fields))


def list_for_review(conn: psycopg.Connection, query: sql.Composable, *,
                    table: str = ReviewPairs.table) -> ReviewPairs:
    """Keep the pairs ``query`` gives, in its order, for review (see :class:`ReviewPairs`).

    ``query`` returns ``ord`` (the order of the pairs), ``source_id``, ``candidate_kind``,
    ``candidate``, ``confidence`` and ``fields`` (JSON text). Pairs an earlier rule of the same
    transaction listed make way.
    """
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(table)))
    count = conn.execute(sql.SQL(
        "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT ord::bigint AS ord, source_id::text AS source_id,"
        " candidate_kind::text AS candidate_kind, candidate::text AS candidate, confidence::float8 AS confidence,"
        " fields::text AS fields, NULL::bigint AS review_id FROM ({}) AS listed").format(ident(table), query)).rowcount
    return ReviewPairs(count=count, table=table)


def record_review(conn: psycopg.Connection, pairs: ReviewPairs, *, profile: str, entity: str, run_id: str) -> None:
    """Store the pairs listed by a run (a pair listed before keeps its id and decision), and their ids beside them.

    A pair listed twice is stored once, with its highest confidence, in the order of its first
    listing. One statement, whatever the number of pairs.
    """
    if not pairs:
        return
    conn.execute(sql.SQL(
        "WITH listed AS (SELECT DISTINCT ON (source_id, candidate_kind, candidate) source_id, candidate_kind,"
        "   candidate, confidence, fields, min(ord) OVER (PARTITION BY source_id, candidate_kind, candidate) AS first"
        "   FROM {t} ORDER BY source_id, candidate_kind, candidate, confidence DESC, ord),"
        " stored AS (INSERT INTO import_control.review_pairs (profile, entity, source_id, candidate_kind, candidate,"
        "   confidence, match_fields, run_id) SELECT %s, %s, source_id, candidate_kind, candidate, confidence,"
        "   fields::jsonb, %s FROM listed ORDER BY first"
        "   ON CONFLICT (profile, entity, source_id, candidate_kind, candidate) DO UPDATE SET"
        "   confidence = EXCLUDED.confidence, match_fields = EXCLUDED.match_fields, run_id = EXCLUDED.run_id,"
        "   updated_at = now() RETURNING review_id, source_id, candidate_kind, candidate)"
        " UPDATE {t} AS p SET review_id = s.review_id FROM stored AS s WHERE p.source_id = s.source_id"
        " AND p.candidate_kind = s.candidate_kind AND p.candidate = s.candidate").format(t=ident(pairs.table)),
        (profile, entity, run_id))


REPORT_COLUMNS = ["review_id", "source_id", "candidate_kind", "candidate", "confidence", "fields"]


def write_review_report(conn: psycopg.Connection, pairs: ReviewPairs, *, profile: str, entity: str,
                        run_id: str) -> str:
    """The run's review pairs as ``<data>/reports/<run>/<profile>_<entity>_review.csv``; returns the path."""
    path = report_path(run_id, f"{profile}_{entity}_review.csv")
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        for review_id, pair in pairs.read(conn):
            writer.writerow([review_id, pair.source_id, pair.candidate_kind, pair.candidate, f"{pair.confidence:.2f}",
                             describe_fields(pair.fields)])
    return str(path)


def describe_fields(fields: dict[str, dict]) -> str:
    """``email exact +15.0; first_name else -8.0``: what each field said about the pair."""
    return "; ".join(f"{name} {value.get('level')} {value.get('bits', 0):+.1f}" for name, value in fields.items())


@dataclass(frozen=True)
class ListedPair:
    """A stored pair as ``review list`` shows it."""

    review_id: int
    profile: str
    entity: str
    source_id: str
    candidate_kind: CandidateKind
    candidate: str
    confidence: float
    fields: dict[str, dict]
    run_id: str
    decision: Decision | None


def list_pairs(conn: psycopg.Connection, *, profile: str | None = None, entity: str | None = None,
               run_id: str | None = None, decided: bool = False) -> list[ListedPair]:
    """Pairs waiting for a decision (with ``decided``, decided ones too), the most likely first.

    ``run_id`` keeps the pairs that run listed (a pair listed again keeps the latest run).
    """
    rows = conn.execute(
        "SELECT review_id, profile, entity, source_id, candidate_kind, candidate, confidence, match_fields, run_id,"
        " decision FROM import_control.review_pairs WHERE (%(profile)s::text IS NULL OR profile = %(profile)s)"
        " AND (%(entity)s::text IS NULL OR entity = %(entity)s) AND (%(run)s::text IS NULL OR run_id = %(run)s)"
        " AND (%(decided)s OR decision IS NULL) ORDER BY profile, entity, confidence DESC, review_id",
        {"profile": profile, "entity": entity, "run": run_id, "decided": decided}).fetchall()
    return [ListedPair(*row[:7], row[7] or {}, *row[8:]) for row in rows]


def decide(conn: psycopg.Connection, review_ids: list[int], decision: Decision) -> list[int]:
    """Record ``decision`` on the pairs ``review_ids``; returns the ids that exist (the others are unknown).

    A later decision replaces an earlier one; it takes effect on the next run of the import.
    """
    rows = conn.execute("UPDATE import_control.review_pairs SET decision = %s, decided_at = now(), updated_at = now()"
                        " WHERE review_id = ANY(%s) RETURNING review_id", (decision, review_ids)).fetchall()
    return sorted(row[0] for row in rows)


def hold_for_review(conn: psycopg.Connection, *, staging: sql.Composable, source_id: str, pairs: ReviewPairs) -> int:
    """Hold the records of ``pairs`` back from the load; returns how many.

    The load engine records a staged row with ``_hold`` as skipped, with ``_hold`` as its reason,
    and writes nothing for it. The reason names the likeliest candidate and, once the pairs are
    stored (:func:`record_review`), the commands that decide (a preview stores none: just the
    candidate). A record already marked a duplicate, matched or failed stays as it is.
    """
    if not pairs:
        return 0
    conn.execute("CREATE TEMP TABLE _review_held (sid text, message text) ON COMMIT DROP")
    # per record its likeliest pair (ties to the lowest review id, then the first listed) and how many it has
    with conn.cursor(name="import_pipelines_review_held") as cursor:
        cursor.execute(sql.SQL(
            "SELECT DISTINCT ON (source_id) source_id, candidate_kind, candidate, confidence, review_id,"
            " count(*) OVER (PARTITION BY source_id) FROM {} ORDER BY source_id, confidence DESC, review_id, ord"
            ).format(ident(pairs.table)))
        while rows := cursor.fetchmany(_CHUNK):
            with conn.cursor().copy("COPY _review_held FROM STDIN") as copy:
                for sid, kind, candidate, confidence, review_id, listed in rows:
                    more = f" (and {listed - 1} other pair{'s' if listed > 2 else ''})" if listed > 1 else ""
                    decide = (f" (pair {review_id}){more}; decide with `python -m import_pipelines review accept"
                              f" {review_id}` or `review reject {review_id}`") if review_id is not None else more
                    copy.write_row((sid, f"waiting for review: possible duplicate of {kind} record {candidate},"
                                         f" confidence {confidence:.1f}{decide}"))
    count = conn.execute(sql.SQL(
        "UPDATE {stg} AS s SET _hold = h.message FROM _review_held AS h WHERE (s.{sid})::text = h.sid"
        " AND s._dup_of IS NULL AND s._match_tid IS NULL AND s._error IS NULL").format(
        stg=staging, sid=ident(source_id))).rowcount
    conn.execute("DROP TABLE _review_held")
    return count


def hold_undecided(conn: psycopg.Connection, *, staging: sql.Composable, source_id: str, profile: str,
                   entity: str) -> int:
    """Keep holding records whose pair an earlier run listed and nobody has decided yet; returns how many.

    A run may no longer meet such a pair - an export without the candidate, which was loaded
    since and is met as a target row showing fewer of its addresses - but a doubtful duplicate
    waits for a person, not for a run that happens not to see the doubt. Records this run marked a duplicate, matched,
    failed or already held stay as they are.
    """
    return conn.execute(sql.SQL(
        "UPDATE {stg} AS s SET _hold = 'waiting for review: possible duplicate of ' || p.candidate_kind || ' record '"
        " || p.candidate || ', confidence ' || round(p.confidence::numeric, 1) || ' (pair ' || p.review_id"
        " || ', listed by an earlier run); decide with `python -m import_pipelines review accept ' || p.review_id"
        " || '` or `review reject ' || p.review_id || '`'"
        " FROM (SELECT DISTINCT ON (source_id) source_id, candidate_kind, candidate, confidence, review_id"
        "       FROM import_control.review_pairs WHERE profile = %s AND entity = %s AND decision IS NULL"
        "       ORDER BY source_id, confidence DESC, review_id) AS p"
        " WHERE (s.{sid})::text = p.source_id AND s._dup_of IS NULL AND s._match_tid IS NULL AND s._error IS NULL"
        " AND s._hold IS NULL").format(stg=staging, sid=ident(source_id)), (profile, entity)).rowcount
