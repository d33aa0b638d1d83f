"""Apply a dedupe rule to a staged entity: within the batch, then against the target table.

Nothing held in this process grows with the tables. The staged rows and the target rows are
streamed a chunk at a time, and a chunk leaves behind only its blocking keys (the hashes of
:func:`~.blocking.hashed_keys`, the keys of the in-memory engine) in temporary tables of the
session. Block sizes, the caps and the distinct candidate pairs are computed there, in SQL. The
pairs come back as ids a chunk at a time, the distinct records a chunk names are read by id
(each once per chunk, not once per pair: a record sits in dozens of pairs) and scored by
:func:`~.matching.score_pairs`. What a chunk of pairs finds leaves this process with it, by
COPY into more temporary tables: the matched pairs and the review band within the batch, each
record's best match in the target and its review pairs. Clusters are their connected
components, found in SQL, and the survivor rule (:func:`~.survivor.cluster_matches`) reads
back a run of whole clusters at a time; which record takes a target row, and which review
pairs are listed, is decided set-based. Each chunk starts with empty value caches
(:func:`~.comparison.clear_value_caches`): the features of the values it meets (an address's
parts, a name's words) are worked out once within it and go with it. Memory is therefore a
chunk, whatever the tables and the duplicates found; the findings are those of
:func:`~.survivor.find_duplicates_within` and :func:`~.matching.match_against` on the whole tables.

Findings go back to the staging table (``_dup_of``, ``_match_tid``, ``_confidence``, ``_match``),
where the merge turns them into actions by mode, and their confidences are summed up in SQL
(:class:`~.confidences.Confidences`). Pairs in the review band stay in a temporary table
(:class:`~.review.ReviewPairs`); the caller records them and holds their records back
(:func:`~.review.hold_for_review`) before its transaction ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident, ident_list
from import_pipelines.dedupe.blocking import fallback_cap, hashed_keys
from import_pipelines.dedupe.comparison import clear_value_caches
from import_pipelines.dedupe.confidences import BUCKET, LAST_BUCKET, Confidences
from import_pipelines.dedupe.frequency import record_frequency_keys, value_hashes
from import_pipelines.dedupe.matching import (
    DEFAULT_MAX_BLOCK_SIZE,
    DedupeRule,
    PairScores,
    best_per_left,
    build_matches,
    id_order,
    score_pairs,
)
from import_pipelines.dedupe.normalize import prepare_frame
from import_pipelines.dedupe.review import Decisions, ReviewPairs, list_for_review
from import_pipelines.dedupe.survivor import cluster_matches, survivor_ranks

CHUNK_ROWS = 5_000
"""Rows (staged records, target records, clustered records) worked on at a time."""
PAIRS_PER_ROW_CHUNK = 4
"""Candidate pairs scored at a time, per row of ``CHUNK_ROWS``: a pair is two ids, and the records
a chunk of pairs names (at most twice as many, in practice far fewer) are read and normalised once."""
REVIEW_ORDER_CHUNKS = 4
"""The review pairs against the target are listed in runs of this many chunks of pairs, the
likeliest first within a run, then in pair order (the order the list has had since the chunks
of pairs were four times larger; it is the review ids' order and the CSV's)."""

_INTEGER_OIDS = {20, 21, 23}  # int8, int2, int4: ids that travel as binary bigint
# COPY ... (FORMAT BINARY): signature, flags, header extension length; a field count of -1 ends it
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_TEMP_TABLES = ("_dedupe_keys", "_dedupe_pairs", "_dedupe_target_keys", "_dedupe_skip", "_dedupe_target_pairs",
                "_dedupe_tf", "_dedupe_findings", "_dedupe_edges", "_dedupe_band", "_dedupe_links", "_dedupe_labels",
                "_dedupe_review", "_dedupe_best", "_dedupe_target_band")

_VALID = sql.SQL("s._dup_of IS NULL AND s._error IS NULL")  # the staged rows the rule looks at

@dataclass(frozen=True)
class DedupeOutcome:
    """What the rule found: duplicates inside the batch, matches against the target, their confidences,
    and the pairs listed for review."""

    within: int = 0
    against_target: int = 0
    of_loaded: int = 0  # duplicates of records this import loaded before (met as target rows)
    pairs_compared: int = 0
    confidences: Confidences = field(default_factory=Confidences)
    review: ReviewPairs = field(default_factory=ReviewPairs)

    @property
    def found(self) -> int:
        """Duplicates found in both directions."""
        return self.within + self.against_target + self.of_loaded

    @property
    def mean_confidence(self) -> float | None:
        """Mean confidence (0-100) of the duplicates found."""
        return self.confidences.mean


@dataclass(frozen=True)
class _Context:
    """What every stage needs: the tables, the rule, and how much to hold at a time."""

    conn: psycopg.Connection
    reader: psycopg.Connection | None
    staging: sql.Identifier
    target: sql.Identifier
    primary_key: str
    natural_key: tuple[str, str]
    source_system: str
    source_id: str
    rule: DedupeRule
    survivor_updated: str | None
    chunk_rows: int
    caps: dict[str, int]
    lists: list[str]
    decisions: Decisions
    frequencies: SessionFrequencies | None = None


class SessionFrequencies:
    """Term frequencies counted in the session's ``_dedupe_tf`` table (values held by two records or more).

    Reads the same numbers as :class:`~.frequency.Frequencies` over the staged and target rows,
    fetching only the counts a chunk of pairs needs.
    """

    def __init__(self, conn: psycopg.Connection, *, population: int) -> None:
        self.conn = conn
        self.population = population

    def counts(self, namespace: str, values: np.ndarray) -> np.ndarray:
        """How many records hold each of ``values`` (at least 1)."""
        if len(values) == 0:
            return np.empty(0, dtype=np.int64)
        hashes = value_hashes(namespace, values.tolist())
        found = dict(self.conn.execute("SELECT h, n FROM _dedupe_tf WHERE h = ANY(%s)",
                                       (np.unique(hashes).tolist(),)).fetchall())
        return np.fromiter((found.get(h, 1) for h in hashes.tolist()), dtype=np.int64, count=len(hashes))


def apply_rule(conn: psycopg.Connection, *, staging: sql.Identifier, target: sql.Identifier, primary_key: str,
               natural_key: tuple[str, str], source_system: str, source_id: str, rule: DedupeRule,
               survivor_updated: str | None = None, reader: psycopg.Connection | None = None,
               chunk_rows: int = CHUNK_ROWS, max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
               decisions: Decisions | None = None) -> DedupeOutcome:
    """Find duplicates for the staged rows and write the findings into the staging table.

    Every valid staged row takes part in the within-batch clustering; survivors that the target
    does not hold yet by natural key are then matched against the target's rows (a target row
    that a record of this batch holds by natural key is no candidate). Works ``chunk_rows`` at
    a time (see the module docstring) in a savepoint of the caller's transaction; the temporary
    tables it uses are gone when it returns.

    ``reader``, a second session on the same database, streams the staged and target rows while
    ``conn`` takes in their keys, so that reading, computing keys and the server's intake
    overlap. It sees committed rows only. Without it ``conn`` does all of it in turn.

    Pairs in the review band are listed in ``review`` (the record held back first) and never
    merged; ``decisions`` taken on earlier runs merge accepted pairs and keep rejected ones apart.
    The listed pairs are kept until the caller's transaction ends (``conn`` is in one, or this
    function's own transaction ends when it returns): read, record and hold them within it.
    """
    present = {d.name for d in conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(staging)).description}
    ctx = _Context(conn=conn, reader=reader, staging=staging, target=target, primary_key=primary_key,
                   natural_key=natural_key, source_system=source_system, source_id=source_id, rule=rule,
                   survivor_updated=survivor_updated, chunk_rows=chunk_rows,
                   caps={"cap": max_block_size, "fallback_cap": fallback_cap(max_block_size)},
                   lists=[c for c in rule.list_columns if c in present], decisions=decisions if decisions is not None else Decisions())
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _dedupe_keys (h bigint, id bigint, fb boolean, tf boolean) ON COMMIT DROP")
        staged = _stage_keys(ctx, table="_dedupe_keys", id_column="_rn", side="incoming", query=sql.SQL(
            "SELECT s._rn, {cols} FROM {stg} AS s WHERE {valid}").format(
            cols=ident_list(rule.columns + ctx.lists, prefix="s"), stg=staging, valid=_VALID))
        outcome = DedupeOutcome()
        if staged:
            target_rows = _stage_target_keys(ctx)
            # an empty target leaves no key table behind (its id type comes from its first rows)
            target_tf = sql.SQL(" UNION ALL SELECT h FROM _dedupe_target_keys WHERE tf" if target_rows else "")
            conn.execute(sql.SQL("CREATE TEMP TABLE _dedupe_tf ON COMMIT DROP AS SELECT h, count(*)::int AS n FROM ("
                                 " SELECT h FROM _dedupe_keys WHERE tf{}) AS k GROUP BY h HAVING count(*) > 1"
                                 ).format(target_tf))
            conn.execute("CREATE UNIQUE INDEX ON _dedupe_tf (h)")
            ctx = replace(ctx, frequencies=SessionFrequencies(conn, population=staged + target_rows))
            conn.execute("CREATE TEMP TABLE _dedupe_findings (seq bigint, rn bigint, dup_of text, match_tid text,"
                         " confidence float8, match jsonb, kind text DEFAULT 'within') ON COMMIT DROP")
            within, within_pairs = _within_batch(ctx)
            against, own, target_pairs = _against_target(ctx, target_rows=target_rows)
            _write_back(conn, staging=staging)
            review = list_for_review(conn, sql.SQL(
                "SELECT row_number() OVER (ORDER BY part, seq) AS ord, source_id, kind AS candidate_kind, candidate,"
                " confidence, fields FROM _dedupe_review"))
            outcome = DedupeOutcome(within=within, against_target=against, of_loaded=own,
                                    pairs_compared=within_pairs + target_pairs, confidences=_confidences(conn),
                                    review=review)
        # ON COMMIT DROP alone would keep them, and their disk, until the caller's transaction ends
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(ident(t) for t in _TEMP_TABLES)))
    return outcome


def _confidences(conn: psycopg.Connection) -> Confidences:
    """The confidences of ``_dedupe_findings`` summed up (in the order of the findings) and counted by bucket."""
    count, total = conn.execute("SELECT count(*), coalesce(sum(confidence ORDER BY seq), 0) FROM _dedupe_findings"
                                ).fetchone()
    buckets = conn.execute("SELECT least(%(last)s, floor(confidence / %(width)s)::int * %(width)s) AS low, count(*)"
                           " FROM _dedupe_findings GROUP BY low ORDER BY low",
                           {"last": LAST_BUCKET, "width": BUCKET}).fetchall()
    return Confidences(count=count, total=total, buckets=tuple(buckets))


def _frame(rows: list[tuple], *, columns: list[str], rule: DedupeRule, id_column: str | None = None) -> pd.DataFrame:
    """Fetched rows as a frame whose rule fields are text, value by value.

    Built as objects, so that a value reads the same whichever chunk it arrives in (inferring a
    column type per chunk would turn the integers of a chunk with a NULL into floats).
    """
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    for name in rule.columns:
        frame[name] = frame[name].astype("string")
    # list columns (text[] or a JSON array) arrive as Python lists and stay so
    if id_column is not None and pd.api.types.infer_dtype(frame[id_column].to_numpy()) == "integer":
        frame[id_column] = frame[id_column].astype(np.int64)
    return frame


# -- blocking keys into temporary tables ---------------------------------------------------------

def _stage_keys(ctx: _Context, *, table: str, query: sql.Composable, id_column: str, side: str,
                params: tuple = (), create: sql.Composable | None = None) -> int:
    """Stream ``query`` (an id, then the rule's fields) and COPY every row's keys into ``table``.

    Blocking keys and term-frequency counting keys (``tf``) go to the same table. ``table``
    (``h``, ``id``, ``fb``, ``tf``) exists already unless ``create`` makes it; integer ids are
    widened to bigint so that they travel as binary. With a reader session the rows come from
    it and one COPY stays open on the main session for the whole stream, written by a worker
    thread, so that the server takes in a chunk's keys while the next chunk's are computed.
    Returns the number of rows streamed.
    """
    conn, rule = ctx.conn, ctx.rule
    lists = ctx.lists if side == "incoming" else []
    with (ctx.reader or conn).cursor(name=f"import_pipelines{table}") as cursor:
        cursor.itersize = ctx.chunk_rows
        cursor.execute(query, params)
        binary = create is None or cursor.description[0].type_code in _INTEGER_OIDS
        first = cursor.fetchmany(ctx.chunk_rows)
        if not first:
            return 0
        if create is not None:
            conn.execute(create)
            if binary:
                conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN id TYPE bigint").format(ident(table)))
        rows = 0

        def keys_of(chunk: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            nonlocal rows
            rows += len(chunk)
            clear_value_caches()
            frame = _frame(chunk, columns=[id_column, *rule.columns, *lists], rule=rule, id_column=id_column)
            prepared = prepare_frame(frame, rule, id_column=id_column, side=side)
            positions, hashes, fallback = hashed_keys(prepared, rule)
            tf_positions, tf_hashes = record_frequency_keys(prepared, rule)
            return (np.concatenate([hashes, tf_hashes]), prepared.ids[np.concatenate([positions, tf_positions])],
                    np.concatenate([fallback, np.zeros(len(tf_hashes), dtype=bool)]),
                    np.r_[np.zeros(len(hashes), dtype=bool), np.ones(len(tf_hashes), dtype=bool)])

        chunks = _chunks(cursor, first=first, size=ctx.chunk_rows, ahead=ctx.reader is not None)
        if ctx.reader is None:
            for chunk in chunks:  # one COPY per chunk: the session must be free for the next FETCH
                with _key_copy(conn, table=table, binary=binary) as send:
                    send(*keys_of(chunk))
        else:
            with _key_copy(conn, table=table, binary=binary) as send:
                for chunk in chunks:
                    send(*keys_of(chunk))
    return rows


def _chunks(cursor: psycopg.ServerCursor, *, first: list[tuple], size: int, ahead: bool) -> Iterator[list[tuple]]:
    """``first``, then the cursor's next chunks; ``ahead``: each fetched while the previous is worked on."""
    if not ahead:
        chunk = first
        while chunk:
            yield chunk
            chunk = cursor.fetchmany(size)
        return
    # one chunk in flight: the server reads and sends it (the driver waits outside the GIL)
    # while the keys of the previous one are computed
    with ThreadPoolExecutor(max_workers=1) as pool:
        chunk = first
        while chunk:
            pending = pool.submit(cursor.fetchmany, size)
            yield chunk
            chunk = pending.result()


@contextmanager
def _key_copy(conn: psycopg.Connection, *, table: str,
              binary: bool) -> Iterator[Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]]:
    """A COPY into a key table; yields ``send(hashes, ids, fallback, tf)``.

    A worker thread writes what is sent, so ``send`` returns while the server is still taking
    the rows in; it waits only for the chunk before, so at most two chunks are ever held.
    """
    statement = sql.SQL("COPY {} (h, id, fb, tf) FROM STDIN{}").format(
        ident(table), sql.SQL(" (FORMAT BINARY)" if binary else ""))
    with conn.cursor() as cursor, cursor.copy(statement) as copy, ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future | None = None

        def write(hashes: np.ndarray, ids: np.ndarray, fallback: np.ndarray, tf: np.ndarray) -> None:
            if binary:
                copy.write(_binary_rows([hashes, ids.astype(np.int64), fallback, tf]))
            else:
                for row in zip(hashes.tolist(), ids.tolist(), fallback.tolist(), tf.tolist()):
                    copy.write_row(row)

        def send(hashes: np.ndarray, ids: np.ndarray, fallback: np.ndarray, tf: np.ndarray) -> None:
            nonlocal pending
            if pending is not None:
                pending.result()
            pending = writer.submit(write, hashes, ids, fallback, tf)

        if binary:
            copy.write(_COPY_HEADER)
        yield send
        if pending is not None:
            pending.result()
        if binary:
            copy.write(_COPY_TRAILER)


def _binary_rows(columns: list[np.ndarray]) -> bytes:
    """Rows of int64 and bool columns (no NULLs) in COPY's binary format, laid out by numpy."""
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for k, values in enumerate(columns):
        layout += [(f"len{k}", ">i4"), (f"val{k}", "?" if values.dtype == bool else ">i8")]
    rows = np.empty(len(columns[0]), dtype=layout)
    rows["count"] = len(columns)
    for k, values in enumerate(columns):
        rows[f"len{k}"] = rows.dtype[f"val{k}"].itemsize
        rows[f"val{k}"] = values
    return rows.tobytes()


# -- scoring candidate pairs a chunk at a time ---------------------------------------------------

def _scored_pairs(ctx: _Context, *, pairs: sql.Composable, left: list[str], left_table: sql.Composable,
                  right: list[str], right_table: sql.Composable, decisions_of: Callable,
                  ) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame, PairScores, PairScores]]:
    """Score the pairs that ``pairs`` streams, a chunk at a time; yield the matched and the review ones.

    ``pairs`` gives a left and a right record id per row: the ids of ``left_table`` and
    ``right_table`` in the first column of ``left`` and ``right`` (the columns read, the rule's
    fields among them). A record takes part in many pairs of a chunk, so each is read and
    normalised once per chunk, and the pairs address it by position (reading both records with
    every pair moved the same rows dozens of times). ``decisions_of(a, b)`` gives a person's
    decision on each pair of the chunk (or None): an accepted pair matches, a rejected one
    neither matches nor waits for review. Yields the two records of the kept pairs (row ``k`` of
    each frame is pair ``k``), then the matched and the review pairs as positions into them.
    """
    rule = ctx.rule
    with ctx.conn.cursor(name="import_pipelines_dedupe_pairs") as cursor:
        cursor.itersize = ctx.chunk_rows * PAIRS_PER_ROW_CHUNK
        cursor.execute(pairs)
        number = -1
        while chunk := cursor.fetchmany(ctx.chunk_rows * PAIRS_PER_ROW_CHUNK):
            number += 1
            clear_value_caches()
            a_records, i = _records(ctx, [row[0] for row in chunk], columns=left, table=left_table)
            b_records, j = _records(ctx, [row[1] for row in chunk], columns=right, table=right_table)
            present = np.flatnonzero((i >= 0) & (j >= 0))  # a record gone since the pair was listed: no pair
            if len(present) < len(i):
                i, j = i[present], j[present]
            if not len(i):
                continue
            scores = score_pairs(prepare_frame(a_records, rule, id_column=None),
                                 prepare_frame(b_records, rule, id_column=None),
                                 i=i, j=j, rule=rule, frequencies=ctx.frequencies)
            if ctx.decisions:
                decided = np.array(decisions_of(a_records.iloc[i], b_records.iloc[j]) + [None], dtype=object)[:-1]
                accepted, rejected = decided == "accepted", decided == "rejected"
            else:  # nobody decided anything yet: the usual case
                accepted = rejected = np.zeros(len(i), dtype=bool)
            matched_mask = (scores.is_match(rule.threshold) | accepted) & ~rejected
            review_mask = scores.in_review(rule) & ~accepted & ~rejected
            keep = np.flatnonzero(matched_mask | review_mask)
            if len(keep):
                kept = scores.select(keep)
                renumbered = np.arange(len(keep))
                kept = replace(kept, left=renumbered, right=renumbered,
                               confidence=np.where(accepted[keep], np.maximum(kept.confidence, ctx.rule.threshold),
                                                   kept.confidence))
                yield (number, a_records.iloc[i[keep]].reset_index(drop=True),
                       b_records.iloc[j[keep]].reset_index(drop=True),
                       kept.select(matched_mask[keep]), kept.select(review_mask[keep]))


def _records(ctx: _Context, ids: list, *, columns: list[str], table: sql.Composable) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct records ``ids`` names, read once from ``table``, and each id's position among them (-1: gone)."""
    at: dict = {}
    positions = np.fromiter((at.setdefault(k, len(at)) for k in ids), dtype=np.int64, count=len(ids))
    rows = ctx.conn.execute(sql.SQL("SELECT {cols} FROM {t} WHERE {id} = ANY(%s)").format(
        cols=ident_list(columns), t=table, id=ident(columns[0])), (list(at),)).fetchall()
    found = {row[0]: row for row in rows}
    order = [k for k in at if k in found]
    if len(order) < len(at):
        moved = {k: n for n, k in enumerate(order)}
        positions = np.array([moved.get(k, -1) for k in at], dtype=np.int64)[positions]
    return _frame([found[k] for k in order], columns=columns, rule=ctx.rule, id_column=columns[0]), positions


def _fields_of(scores: PairScores) -> list[dict[str, dict]]:
    """Per pair: ``{field: {"level": ..., "bits": ...}}``."""
    return [{name: {"level": levels[name], "bits": bits[name]} for name in levels}
            for levels, bits in zip(scores.level_names(), scores.matched_fields())]


def _within_batch(ctx: _Context) -> tuple[int, int]:
    """Duplicates inside the batch: every non-survivor of a cluster against its survivor.

    Candidate pairs share a block of 2 to cap records (``_dedupe_keys``). The matched pairs go
    to ``_dedupe_edges`` and the pairs in the review band, turned so that the record that would
    not survive comes first, to ``_dedupe_band`` as each chunk is scored; clusters are their
    connected components, found in SQL (:func:`_cluster_labels`). The clustered records are
    then read back a run of whole clusters at a time for the survivor rule and the direct
    scores (:func:`_survivors`). Review pairs between records of one cluster are dropped (they
    merge through other members anyway); the others go to ``_dedupe_review``. Returns the
    duplicates found (in ``_dedupe_findings``) and the pairs compared.
    """
    conn = ctx.conn
    conn.execute("CREATE TEMP TABLE _dedupe_pairs (a bigint, b bigint) ON COMMIT DROP")
    pairs = conn.execute(
        "INSERT INTO _dedupe_pairs (a, b)"
        " WITH blocks AS (SELECT h FROM _dedupe_keys WHERE NOT tf GROUP BY h HAVING count(*) >= 2"
        "   AND count(*) <= CASE WHEN bool_or(fb) THEN %(fallback_cap)s ELSE %(cap)s END),"
        " members AS MATERIALIZED (SELECT k.h, k.id FROM _dedupe_keys AS k WHERE NOT k.tf"
        "   AND k.h IN (SELECT h FROM blocks))"
        # in order, so that a chunk of pairs read back in table order repeats its first records
        " SELECT DISTINCT a.id, b.id FROM members AS a JOIN members AS b ON b.h = a.h AND a.id < b.id ORDER BY 1, 2",
        ctx.caps).rowcount
    record = _record_columns(ctx)
    sid = ctx.source_id

    def decisions_of(a: pd.DataFrame, b: pd.DataFrame) -> list[str | None]:
        return [ctx.decisions.of(x, "source", y) for x, y in zip(map(str, a[sid].tolist()), map(str, b[sid].tolist()))]

    conn.execute("CREATE TEMP TABLE _dedupe_edges (a bigint, b bigint) ON COMMIT DROP")
    conn.execute("CREATE TEMP TABLE _dedupe_band (seq bigint, x bigint, y bigint, held text, other text,"
                 " confidence float8, fields text) ON COMMIT DROP")
    seq = 0
    for _, a, b, hits, doubts in _scored_pairs(ctx, pairs=sql.SQL("SELECT a, b FROM _dedupe_pairs"), left=record,
                                            left_table=ctx.staging, right=record, right_table=ctx.staging,
                                            decisions_of=decisions_of):
        if len(hits.left):
            with conn.cursor().copy("COPY _dedupe_edges (a, b) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_COPY_HEADER + _binary_rows([a["_rn"].to_numpy(dtype=np.int64)[hits.left],
                                                        b["_rn"].to_numpy(dtype=np.int64)[hits.right]])
                           + _COPY_TRAILER)
        if len(doubts.left):
            a, b = a.iloc[doubts.left].reset_index(drop=True), b.iloc[doubts.right].reset_index(drop=True)
            both = pd.concat([a, b], ignore_index=True)
            ranks = survivor_ranks(both, ids=both["_rn"].to_numpy(), updated_column=ctx.survivor_updated,
                                   id_column="_rn")
            rows = []
            for k, (x, y, a_sid, b_sid, fields) in enumerate(zip(
                    a["_rn"].tolist(), b["_rn"].tolist(), map(str, a[sid].tolist()), map(str, b[sid].tolist()),
                    _fields_of(doubts))):
                held, other = (a_sid, b_sid) if ranks[k] > ranks[len(a) + k] else (b_sid, a_sid)
                rows.append((seq, int(x), int(y), held, other, float(round(doubts.confidence[k], 2)),
                             json.dumps(fields)))
                seq += 1
            _copy_rows(conn, "_dedupe_band", rows)
    _cluster_labels(conn)
    duplicates = _survivors(ctx, record=record)
    # a pair of two records of one cluster merges through other members anyway
    conn.execute("CREATE TEMP TABLE _dedupe_review ON COMMIT DROP AS"
                 " SELECT 0 AS part, b.seq, b.held AS source_id, 'source' AS kind, b.other AS candidate,"
                 " b.confidence, b.fields FROM _dedupe_band AS b"
                 " LEFT JOIN _dedupe_labels AS lx ON lx.rn = b.x LEFT JOIN _dedupe_labels AS ly ON ly.rn = b.y"
                 " WHERE lx.label IS NULL OR lx.label IS DISTINCT FROM ly.label")
    return duplicates, pairs


def _record_columns(ctx: _Context) -> list[str]:
    """The staged columns a within-batch record is read with: row number, fields, source id, update time."""
    return list(dict.fromkeys(["_rn", *ctx.rule.columns, *ctx.lists, ctx.source_id]
                              + ([ctx.survivor_updated] if ctx.survivor_updated else [])))


def _copy_rows(conn: psycopg.Connection, table: str, rows: list[tuple], *, columns: list[str] | None = None) -> None:
    """COPY ``rows`` (text format) into the session's ``table`` (into ``columns``, else all of them)."""
    target = sql.SQL("{} ({})").format(ident(table), ident_list(columns)) if columns else ident(table)
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
        for row in rows:
            copy.write_row(row)


def _cluster_labels(conn: psycopg.Connection) -> None:
    """``_dedupe_labels``: every record of a matched pair and its cluster's label, the smallest member.

    Label propagation over ``_dedupe_edges`` (both ways): each round a record takes the smallest
    label among itself and its neighbours, then the label of its label (pointer jumping), until
    no label changes. Duplicates form small clusters, so a few rounds over the pairs do.
    """
    conn.execute("CREATE TEMP TABLE _dedupe_links ON COMMIT DROP AS"
                 " SELECT a AS rn, b AS other FROM _dedupe_edges UNION SELECT b, a FROM _dedupe_edges")
    conn.execute("CREATE TEMP TABLE _dedupe_labels ON COMMIT DROP AS"
                 " SELECT rn, least(rn, min(other)) AS label FROM _dedupe_links GROUP BY rn")
    conn.execute("CREATE UNIQUE INDEX ON _dedupe_labels (rn)")
    conn.execute("ANALYZE _dedupe_labels")
    changed = True
    while changed:
        changed = conn.execute(
            "UPDATE _dedupe_labels AS l SET label = m.label FROM ("
            " SELECT k.rn, min(n.label) AS label FROM _dedupe_links AS k JOIN _dedupe_labels AS n ON n.rn = k.other"
            " GROUP BY k.rn) AS m WHERE m.rn = l.rn AND m.label < l.label").rowcount > 0
        changed = conn.execute(
            "UPDATE _dedupe_labels AS l SET label = p.label FROM _dedupe_labels AS p"
            " WHERE p.rn = l.label AND p.label < l.label").rowcount > 0 or changed
    conn.execute("DROP TABLE _dedupe_links")


def _survivors(ctx: _Context, *, record: list[str]) -> int:
    """The survivor of every cluster of ``_dedupe_labels`` and its other members' findings; returns how many.

    Clusters are read in the order of their labels, whole, ``chunk_rows`` records at a time or
    so; each run of clusters goes through :func:`~.survivor.cluster_matches` (a cluster's
    survivor and its members' direct scores depend on its own members only), and its findings
    are appended to ``_dedupe_findings`` in that order.
    """
    conn = ctx.conn
    found = 0

    def settle(members: list[tuple[int, int]]) -> None:
        nonlocal found
        clear_value_caches()
        rns = [rn for _, rn in members]
        frame, positions = _records(ctx, rns, columns=record, table=ctx.staging)
        labels = np.array([label for label, _ in members], dtype=np.int64)
        # every member joined to its cluster's smallest member: the same components
        at = dict(zip(rns, positions.tolist()))
        joined = np.flatnonzero(labels != np.array(rns, dtype=np.int64))
        prepared = prepare_frame(frame, ctx.rule, id_column="_rn")
        _, duplicates = cluster_matches(frame, prepared, left=positions[joined],
                                        right=np.array([at[label] for label in labels[joined].tolist()],
                                                       dtype=np.int64),
                                        rule=ctx.rule, id_column="_rn", updated_column=ctx.survivor_updated,
                                        frequencies=ctx.frequencies)
        source_ids = dict(zip(frame["_rn"].tolist(), map(str, frame[ctx.source_id].tolist())))
        _copy_rows(conn, "_dedupe_findings", columns=["seq", "rn", "dup_of", "match_tid", "confidence", "match"], rows=[
            (found + k, int(dup.record_id), source_ids[dup.duplicate_of], None, float(dup.confidence),
             json.dumps(dup.matched_fields)) for k, dup in enumerate(duplicates)])
        found += len(duplicates)

    with conn.cursor(name="import_pipelines_dedupe_clusters") as cursor:
        cursor.itersize = ctx.chunk_rows
        cursor.execute("SELECT label, rn FROM _dedupe_labels ORDER BY label, rn")
        members: list[tuple[int, int]] = []
        while chunk := cursor.fetchmany(ctx.chunk_rows):
            for label, rn in chunk:
                if len(members) >= ctx.chunk_rows and label != members[-1][0]:
                    settle(members)
                    members = []
                members.append((label, rn))
        if members:
            settle(members)
    return found


def _stage_target_keys(ctx: _Context) -> int:
    """Stream the target's rows (but those this batch holds by natural key) into ``_dedupe_target_keys``."""
    system, id_column = (ident(name) for name in ctx.natural_key)
    return _stage_keys(
        ctx, table="_dedupe_target_keys", id_column=ctx.primary_key, side="existing", params=(ctx.source_system,),
        query=sql.SQL("SELECT t.{pk}, {cols} FROM {t} AS t WHERE NOT (t.{sys} = %s AND t.{idc} IS NOT NULL"
                      " AND EXISTS (SELECT 1 FROM {stg} AS s WHERE (s.{sid})::text = t.{idc}))").format(
            pk=ident(ctx.primary_key), cols=ident_list(ctx.rule.columns, prefix="t"), t=ctx.target, sys=system,
            idc=id_column, stg=ctx.staging, sid=ident(ctx.source_id)),
        create=sql.SQL("CREATE TEMP TABLE _dedupe_target_keys ON COMMIT DROP AS"
                       " SELECT 0::bigint AS h, t.{pk} AS id, false AS fb, false AS tf FROM {t} AS t WITH NO DATA"
                       ).format(pk=ident(ctx.primary_key), t=ctx.target))


def _against_target(ctx: _Context, *, target_rows: int) -> tuple[int, int, int]:
    """Match the batch's survivors against the target's rows; append to ``_dedupe_findings`` and ``_dedupe_review``.

    Survivors are the valid staged rows that are neither duplicates found within the batch nor
    held by the target by natural key. Blocks are sized over both sides together, as in
    :func:`~.matching.match_against`; each survivor keeps its best match, and one target row
    takes one record: its best match, the others becoming that record's duplicates. A row this
    import loaded from another record (its natural key is this source system's) is that record:
    a survivor matching it is the record's duplicate, as it would be had both been in one batch,
    not an update of its row. A survivor without a match lists its pairs in the review band (at
    most three, unless it waits for review within the batch already).

    Each chunk of scored pairs leaves its best match per record in ``_dedupe_best`` and its
    review pairs in ``_dedupe_target_band``; the rest is set-based (:func:`_settle_target`).
    Returns the records matched to the target, those matched to this import's own records, and
    the pairs compared.
    """
    conn, rule = ctx.conn, ctx.rule
    system, id_column = (ident(name) for name in ctx.natural_key)
    sid = ident(ctx.source_id)
    if not target_rows:
        return 0, 0, 0

    conn.execute("CREATE TEMP TABLE _dedupe_skip ON COMMIT DROP AS SELECT rn AS id FROM _dedupe_findings")
    conn.execute(sql.SQL("INSERT INTO _dedupe_skip (id) SELECT s._rn FROM {stg} AS s WHERE {valid} AND EXISTS ("
                         "SELECT 1 FROM {t} AS t WHERE t.{sys} = %s AND t.{idc} = (s.{sid})::text)").format(
        stg=ctx.staging, valid=_VALID, t=ctx.target, sys=system, idc=id_column, sid=sid), (ctx.source_system,))
    conn.execute("CREATE TEMP TABLE _dedupe_target_pairs ON COMMIT DROP AS"
                 " SELECT 0::bigint AS rn, id FROM _dedupe_target_keys WITH NO DATA")
    pairs = conn.execute(
        "INSERT INTO _dedupe_target_pairs (rn, id)"
        " WITH incoming AS MATERIALIZED (SELECT k.h, k.id, k.fb FROM _dedupe_keys AS k WHERE NOT k.tf"
        "   AND NOT EXISTS (SELECT 1 FROM _dedupe_skip AS x WHERE x.id = k.id)),"
        " sizes AS (SELECT h, count(*) AS n, bool_or(fb) AS fb FROM incoming GROUP BY h),"
        " target_sizes AS (SELECT h, count(*) AS n FROM _dedupe_target_keys WHERE NOT tf"
        "   AND h IN (SELECT h FROM sizes) GROUP BY h),"
        " blocks AS (SELECT s.h FROM sizes AS s JOIN target_sizes AS t ON t.h = s.h"
        "   WHERE s.n + t.n <= CASE WHEN s.fb THEN %(fallback_cap)s ELSE %(cap)s END)"
        " SELECT DISTINCT i.id, t.id FROM incoming AS i JOIN blocks AS b ON b.h = i.h"
        " JOIN _dedupe_target_keys AS t ON t.h = i.h AND NOT t.tf ORDER BY 1, 2", ctx.caps).rowcount
    if not pairs:
        return 0, 0, 0

    incoming = list(dict.fromkeys(["_rn", *rule.columns, *ctx.lists, ctx.source_id]))
    existing = list(dict.fromkeys([ctx.primary_key, *rule.columns, *ctx.natural_key]))
    pk = ctx.primary_key
    system_column, id_column = ctx.natural_key

    def decisions_of(a: pd.DataFrame, b: pd.DataFrame) -> list[str | None]:
        found = []
        for record, row, system, external in zip(map(str, a[ctx.source_id].tolist()), map(str, b[pk].tolist()),
                                                 b[system_column].tolist(), b[id_column].tolist()):
            decided = ctx.decisions.of(record, "target", row)
            if decided is None and system == ctx.source_system and external is not None:
                # a pair decided while both were records of one import: the other one has been loaded since
                decided = ctx.decisions.of(record, "source", str(external))
            found.append(decided)
        return found

    def own_record(system: object, external: object) -> str | None:
        """The source id of this import's record a target row holds (None: a row from elsewhere)."""
        return str(external) if system == ctx.source_system and external is not None else None

    # the target's ids in their own type, so that ties between chunks go to the lowest id as within one
    conn.execute("CREATE TEMP TABLE _dedupe_best ON COMMIT DROP AS SELECT 0::bigint AS seq, 0::bigint AS rn,"
                 " ''::text AS sid, id AS tid, ''::text AS tid_text, 0::float8 AS raw, 0::float8 AS confidence,"
                 " ''::text AS fields, ''::text AS own FROM _dedupe_target_keys WITH NO DATA")
    conn.execute("CREATE TEMP TABLE _dedupe_target_band (run int, raw float8, chunk int, k int, rn bigint,"
                 " source_id text, candidate text, confidence float8, fields text) ON COMMIT DROP")
    best_seq = 0
    for number, a, b, hits, doubts in _scored_pairs(ctx, pairs=sql.SQL("SELECT rn, id FROM _dedupe_target_pairs"),
                                            left=incoming, left_table=ctx.staging, right=existing,
                                            right_table=ctx.target, decisions_of=decisions_of):
        if len(hits.left):
            record_ids, left = np.unique(a["_rn"].to_numpy()[hits.left], return_inverse=True)
            target_ids, right = np.unique(b[pk].to_numpy()[hits.right], return_inverse=True)
            scored = replace(hits, left=left, right=right)
            best = best_per_left(scored, right_rank=id_order(target_ids)[scored.right])
            matches = build_matches(best, left_ids=record_ids, right_ids=target_ids, threshold=rule.threshold)
            hit_a, hit_b = a.iloc[hits.left], b.iloc[hits.right]
            source_ids = dict(zip(hit_a["_rn"].tolist(), map(str, hit_a[ctx.source_id].tolist())))
            owners = dict(zip(hit_b[pk].tolist(), map(own_record, hit_b[system_column].tolist(),
                                                        hit_b[id_column].tolist())))
            rows = [(best_seq + k, int(m.record_id), source_ids[m.record_id], m.duplicate_of, str(m.duplicate_of), raw,
                     float(m.confidence), json.dumps(m.matched_fields), owners[m.duplicate_of])
                    for k, (m, raw) in enumerate(zip(matches, best.confidence.tolist()))]
            best_seq += len(rows)
            _copy_rows(conn, "_dedupe_best", rows)
        if len(doubts.left):
            fields = _fields_of(doubts)
            rows = []
            for k in range(len(doubts.left)):
                source = str(a[ctx.source_id].iat[doubts.left[k]])
                external = b[id_column].iat[doubts.right[k]]
                if (b[system_column].iat[doubts.right[k]] == ctx.source_system and external is not None
                        and (source, "source", str(external)) in ctx.decisions.waiting):
                    continue  # already waiting as a pair of two records of this import: one pair, one decision
                rows.append((number // REVIEW_ORDER_CHUNKS, float(doubts.confidence[k]), number, k,
                             int(a["_rn"].iat[doubts.left[k]]), source, str(b[pk].iat[doubts.right[k]]),
                             float(round(doubts.confidence[k], 2)), json.dumps(fields[k])))
            _copy_rows(conn, "_dedupe_target_band", rows)
    return (*_settle_target(ctx), pairs)


def _settle_target(ctx: _Context) -> tuple[int, int]:
    """Findings and review pairs from the best matches and band pairs of :func:`_against_target`.

    A record whose pairs spanned two chunks has a best match from each: the highest confidence
    wins, ties to the lowest target id, as within one chunk (:func:`~.matching.best_per_left`).
    Then, in SQL: a match of a row holding one of this import's records (still in the batch,
    when the rule updates such rows) makes that record's duplicate; otherwise a target row goes
    to its best match (highest confidence, then lowest row number) and its other matches become
    that record's duplicates. Findings are numbered in that order. A record matched, or waiting
    for review within the batch, lists no pairs of its own; the others list their first three
    (in the order of :data:`REVIEW_ORDER_CHUNKS`).
    Returns the records matched to the target and those matched to this import's own records.
    """
    conn = ctx.conn
    split = conn.execute("SELECT seq, rn, tid, raw FROM _dedupe_best WHERE rn IN ("
                         " SELECT rn FROM _dedupe_best GROUP BY rn HAVING count(*) > 1) ORDER BY rn, seq").fetchall()
    if split:
        frame = pd.DataFrame(split, columns=["seq", "rn", "tid", "raw"])
        losers: list[int] = []
        for _, rows in frame.groupby("rn", sort=False):
            order = np.lexsort((id_order(rows["tid"].to_numpy()), -rows["raw"].to_numpy()))
            losers += rows["seq"].to_numpy()[order[1:]].tolist()
        conn.execute("DELETE FROM _dedupe_best WHERE seq = ANY(%s)", (losers,))
    start = conn.execute("SELECT count(*) FROM _dedupe_findings").fetchone()[0]
    against, own = conn.execute(sql.SQL(
        # the records of this import's rows still in the batch: a join, small, then probed as a hashed subplan
        "WITH staged AS (SELECT DISTINCT (s.{sid})::text AS own FROM {stg} AS s"
        "   WHERE (s.{sid})::text IN (SELECT own FROM _dedupe_best WHERE own IS NOT NULL)),"
        " best AS (SELECT b.*, b.own IS NOT NULL AND (%(any_loaded)s OR b.own IN (SELECT own FROM staged)) AS mine"
        "   FROM _dedupe_best AS b),"
        " taken AS (SELECT rn, sid, tid_text, confidence, fields, first_value(sid) OVER w AS owner,"
        "   row_number() OVER w AS place FROM best WHERE NOT mine"
        "   WINDOW w AS (PARTITION BY tid_text ORDER BY confidence DESC, rn)),"
        " settled AS (SELECT rn, own AS dup_of, NULL AS match_tid, confidence, fields, 'own' AS kind FROM best"
        "   WHERE mine UNION ALL SELECT rn, CASE WHEN place > 1 THEN owner END,"
        "   CASE WHEN place = 1 THEN tid_text END, confidence, fields,"
        "   CASE WHEN place = 1 THEN 'target' ELSE 'within' END FROM taken),"
        " written AS (INSERT INTO _dedupe_findings (seq, rn, dup_of, match_tid, confidence, match, kind)"
        "   SELECT %(start)s + row_number() OVER (ORDER BY confidence DESC, rn) - 1, rn, dup_of, match_tid,"
        "   confidence, fields::jsonb, kind FROM settled RETURNING kind)"
        " SELECT count(*) FILTER (WHERE kind = 'target'), count(*) FILTER (WHERE kind = 'own') FROM written").format(
        stg=ctx.staging, sid=ident(ctx.source_id)),
        {"any_loaded": ctx.rule.on_loaded_match != "update", "start": start}).fetchone()
    conn.execute("INSERT INTO _dedupe_review SELECT 1, seq, source_id, 'target', candidate, confidence, fields FROM ("
                 " SELECT t.*, row_number() OVER (PARTITION BY t.source_id ORDER BY t.seq) AS n FROM ("
                 "  SELECT b.*, row_number() OVER (ORDER BY b.run, b.raw DESC, b.chunk, b.k) AS seq"
                 "  FROM _dedupe_target_band AS b) AS t"
                 " WHERE NOT EXISTS (SELECT 1 FROM _dedupe_best AS b WHERE b.rn = t.rn)"
                 " AND NOT EXISTS (SELECT 1 FROM _dedupe_review AS r WHERE r.source_id = t.source_id)) AS listed"
                 " WHERE n <= 3")
    return against, own


def _write_back(conn: psycopg.Connection, *, staging: sql.Identifier) -> None:
    """The findings of ``_dedupe_findings`` into the staging table's ``_dup_of`` ... ``_match``."""
    conn.execute(sql.SQL("UPDATE {} AS s SET _dup_of = f.dup_of, _match_tid = f.match_tid, _confidence = f.confidence,"
                         " _match = f.match FROM _dedupe_findings AS f WHERE s._rn = f.rn").format(staging))
