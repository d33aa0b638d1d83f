"""The review band: possible duplicates that a person confirms or rejects, and the decisions kept.

The dedupe step lists every pair between the rule's ``review_threshold`` and its ``threshold``
(``import_control.review_pairs``, a CSV under ``<data>/reports/<run>/``, a table in the run's
metadata) and holds the record back from the load until a person decides; a decision is kept for
the pair, so on the next run an accepted pair merges and a rejected one never does.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg

from import_pipelines.settings import data_dir

CandidateKind = Literal["source", "target"]
Decision = Literal["accepted", "rejected"]


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
    """The decided pairs of one profile and entity, in both orientations for pairs of source records."""

    accepted: frozenset[tuple[str, CandidateKind, str]] = frozenset()
    rejected: frozenset[tuple[str, CandidateKind, str]] = frozenset()

    def of(self, source_id: str, kind: CandidateKind, candidate: str) -> Decision | None:
        """The decision on a pair, if any."""
        keys = {(source_id, kind, candidate)} | ({(candidate, kind, source_id)} if kind == "source" else set())
        if keys & self.rejected:
            return "rejected"
        if keys & self.accepted:
            return "accepted"
        return None


def load_decisions(conn: psycopg.Connection, *, profile: str, entity: str) -> Decisions:
    """Every decided pair of ``profile`` / ``entity``."""
    rows = conn.execute("SELECT source_id, candidate_kind, candidate, decision FROM import_control.review_pairs"
                        " WHERE profile = %s AND entity = %s AND decision IS NOT NULL", (profile, entity)).fetchall()
    return Decisions(accepted=frozenset((s, k, c) for s, k, c, d in rows if d == "accepted"),
                     rejected=frozenset((s, k, c) for s, k, c, d in rows if d == "rejected"))


def record_review(conn: psycopg.Connection, pairs: list[ReviewPair], *, profile: str, entity: str,
                  run_id: str) -> list[int]:
    """Store the pairs listed by a run (a pair listed before keeps its id and decision); return their ids."""
    ids: list[int] = []
    for pair in pairs:
        row = conn.execute(
            "INSERT INTO import_control.review_pairs (profile, entity, source_id, candidate_kind, candidate, confidence,"
            " match_fields, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (profile, entity, source_id, candidate_kind, candidate) DO UPDATE SET"
            " confidence = EXCLUDED.confidence, match_fields = EXCLUDED.match_fields, run_id = EXCLUDED.run_id,"
            " updated_at = now() RETURNING review_id",
            (profile, entity, pair.source_id, pair.candidate_kind, pair.candidate, pair.confidence,
             json.dumps(pair.fields), run_id)).fetchone()
        ids.append(row[0])
    return ids


REPORT_COLUMNS = ["review_id", "source_id", "candidate_kind", "candidate", "confidence", "fields"]


def write_review_report(pairs: list[ReviewPair], ids: list[int], *, profile: str, entity: str, run_id: str) -> str:
    """The run's review pairs as ``<data>/reports/<run>/<profile>_<entity>_review.csv``; returns the path."""
    folder = data_dir() / "reports" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile}_{entity}_review.csv"
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        for review_id, pair in zip(ids, pairs):
            writer.writerow([review_id, pair.source_id, pair.candidate_kind, pair.candidate, f"{pair.confidence:.2f}",
                             describe_fields(pair.fields)])
    return str(path)


def describe_fields(fields: dict[str, dict]) -> str:
    """``email exact +15.0; first_name else -8.0``: what each field said about the pair."""
    return "; ".join(f"{name} {value.get('level')} {value.get('bits', 0):+.1f}" for name, value in fields.items())


def list_pairs(conn: psycopg.Connection, *, profile: str | None = None, entity: str | None = None,
               decided: bool = False) -> list[tuple]:
    """Pairs waiting for a decision (or, with ``decided``, all pairs), the most likely first."""
    rows = conn.execute(
        "SELECT review_id, profile, entity, source_id, candidate_kind, candidate, confidence, match_fields, decision"
        " FROM import_control.review_pairs WHERE (%s::text IS NULL OR profile = %s)"
        " AND (%s::text IS NULL OR entity = %s) AND (%s OR decision IS NULL)"
        " ORDER BY profile, entity, confidence DESC, review_id",
        (profile, profile, entity, entity, decided)).fetchall()
    return rows


def decide(conn: psycopg.Connection, review_ids: list[int], decision: Decision) -> list[int]:
    """Record ``decision`` on the pairs ``review_ids``; returns the ids that exist (the others are unknown)."""
    rows = conn.execute("UPDATE import_control.review_pairs SET decision = %s, decided_at = now(), updated_at = now()"
                        " WHERE review_id = ANY(%s) RETURNING review_id", (decision, review_ids)).fetchall()
    return sorted(row[0] for row in rows)
