"""Apply a dedupe rule to a staged entity: within the batch, then against the target table.

The staged rows come into pandas (only the rule's fields); the target is streamed through a
server-side cursor a chunk at a time and only rows that share a blocking key with an incoming
record are kept as candidates, so the target table is never held in memory whatever its size.
Findings go back to the staging table (``_dup_of``, ``_match_tid``, ``_confidence``, ``_match``),
where the merge turns them into actions by mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident
from import_pipelines.dedupe.blocking import blocking_keys, target_blocking_keys
from import_pipelines.dedupe.matching import DedupeRule, match_against
from import_pipelines.dedupe.survivor import find_duplicates_within

TARGET_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class DedupeOutcome:
    """What the rule found: duplicates inside the batch, matches against the target, their confidences."""

    within: int = 0
    against_target: int = 0
    pairs_compared: int = 0
    confidences: list[float] = field(default_factory=list)

    @property
    def found(self) -> int:
        """Duplicates found in both directions."""
        return self.within + self.against_target

    @property
    def mean_confidence(self) -> float | None:
        """Mean confidence (0-100) of the duplicates found."""
        return float(np.mean(self.confidences)) if self.confidences else None


def apply_rule(conn: psycopg.Connection, *, staging: sql.Identifier, target: sql.Identifier, primary_key: str,
               natural_key: tuple[str, str], source_system: str, source_id: str, rule: DedupeRule,
               survivor_updated: str | None = None) -> DedupeOutcome:
    """Find duplicates for the staged rows and write the findings into the staging table."""
    columns = rule.columns
    wanted = ["_rn", source_id, *columns] + ([survivor_updated] if survivor_updated and survivor_updated not in columns else [])
    # every valid row takes part in the within-batch clustering, so a re-run forms the same
    # clusters (a duplicate stays a duplicate); only survivors not yet in the target by natural
    # key are matched against the target's rows
    rows = conn.execute(sql.SQL(
        "SELECT {cols}, EXISTS (SELECT 1 FROM {t} AS t WHERE t.{sys} = %s AND t.{idc} = (s.{sid})::text)"
        " FROM {stg} AS s WHERE s._dup_of IS NULL AND s._error IS NULL").format(
        cols=sql.SQL(", ").join(ident("s", c) for c in wanted), stg=staging, t=target, sys=ident(natural_key[0]),
        idc=ident(natural_key[1]), sid=ident(source_id)), (source_system,)).fetchall()
    if not rows:
        return DedupeOutcome()
    incoming = pd.DataFrame(rows, columns=[*wanted, "_known"])
    for column in columns:
        incoming[column] = incoming[column].astype("string")

    groups = find_duplicates_within(incoming, rule, id_column="_rn", updated_column=survivor_updated)
    source_ids = dict(zip(incoming["_rn"], incoming[source_id].astype(str)))
    findings: list[tuple[int, str | None, str | None, float, str]] = []
    for dup in groups.duplicates:
        findings.append((int(dup.record_id), source_ids[dup.duplicate_of], None, float(dup.confidence),
                         json.dumps(dup.matched_fields)))
    duplicates = {int(d.record_id) for d in groups.duplicates}
    survivors = incoming[~incoming["_rn"].isin(duplicates) & ~incoming["_known"].astype(bool)].drop(columns="_known")

    candidates = _candidates(conn, target=target, primary_key=primary_key, rule=rule, incoming=survivors,
                             staging=staging, natural_key=natural_key, source_system=source_system,
                             source_id=source_id)
    against = 0
    pairs = groups.pairs_compared
    if len(candidates):
        matches = match_against(survivors, candidates, rule, incoming_id="_rn", existing_id=primary_key)
        pairs += matches.pairs_compared
        # one target row takes one incoming record: the best match; the others are its duplicates
        best: dict[str, object] = {}
        for match in sorted(matches.matches, key=lambda m: (-m.confidence, m.record_id)):
            owner = best.setdefault(str(match.duplicate_of), match)
            if owner is match:
                findings.append((int(match.record_id), None, str(match.duplicate_of), float(match.confidence),
                                 json.dumps(match.matched_fields)))
                against += 1
            else:
                findings.append((int(match.record_id), source_ids[owner.record_id], None, float(match.confidence),
                                 json.dumps(match.matched_fields)))
    if findings:
        _write_back(conn, staging=staging, findings=findings)
    return DedupeOutcome(within=len(groups.duplicates), against_target=against, pairs_compared=pairs,
                         confidences=[f[3] for f in findings])


def _candidates(conn: psycopg.Connection, *, target: sql.Identifier, primary_key: str, rule: DedupeRule,
                incoming: pd.DataFrame, staging: sql.Identifier, natural_key: tuple[str, str], source_system: str,
                source_id: str) -> pd.DataFrame:
    """Target rows that share at least one blocking key with an incoming record (streamed).

    A row that belongs to a record of this same batch (by natural key) is not a candidate: that
    record updates it, and a second record must not claim it too.
    """
    wanted = [primary_key, *rule.columns]
    if incoming.empty:
        return pd.DataFrame(columns=wanted)
    keys: set[str] | None = None  # computed on the first target chunk: a first import streams nothing
    kept: list[pd.DataFrame] = []
    with conn.cursor(name="import_pipelines_dedupe_candidates") as cursor:
        cursor.itersize = TARGET_CHUNK_ROWS
        cursor.execute(sql.SQL(
            "SELECT {cols} FROM {t} AS t WHERE NOT (t.{sys} = %s AND t.{idc} IS NOT NULL AND EXISTS ("
            "SELECT 1 FROM {stg} AS s WHERE (s.{sid})::text = t.{idc}))").format(
            cols=sql.SQL(", ").join(ident("t", c) for c in wanted), t=target, sys=ident(natural_key[0]),
            idc=ident(natural_key[1]), stg=staging, sid=ident(source_id)), (source_system,))
        while chunk := cursor.fetchmany(TARGET_CHUNK_ROWS):
            frame = pd.DataFrame(chunk, columns=wanted)
            for column in rule.columns:
                frame[column] = frame[column].astype("string")
            if keys is None:
                keys = set(blocking_keys(incoming, rule, id_column="_rn")["key"])
            chunk_keys = target_blocking_keys(frame, rule, id_column=primary_key)
            hit = chunk_keys.loc[chunk_keys["key"].isin(keys), "record_id"].unique()
            if len(hit):
                kept.append(frame[frame[primary_key].isin(hit)])
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=wanted)


def _write_back(conn: psycopg.Connection, *, staging: sql.Identifier,
                findings: list[tuple[int, str | None, str | None, float, str]]) -> None:
    conn.execute("CREATE TEMP TABLE _dedupe_findings (rn bigint, dup_of text, match_tid text, confidence real,"
                 " match jsonb) ON COMMIT DROP")
    with conn.cursor().copy("COPY _dedupe_findings FROM STDIN") as copy:
        for row in findings:
            copy.write_row(row)
    conn.execute(sql.SQL("UPDATE {} AS s SET _dup_of = f.dup_of, _match_tid = f.match_tid, _confidence = f.confidence,"
                         " _match = f.match FROM _dedupe_findings AS f WHERE s._rn = f.rn").format(staging))
