"""What the imports into a target did over the last days, per profile and entity, from its control schema.

One set-based query per part, over what the runs keep anyway:

- runs, source rows and each action's count, and the seconds the loads took: the run summaries
  (kept for ever, so a window of any length is answerable);
- duplicates merged into an earlier record or a target row: the audit rows with ``duplicate_of``
  (per-record audit: only as far back as the profile's retention keeps it);
- rejected-row problems by type: ``import_errors``;
- possible duplicates waiting for a person: the open ``review_pairs`` (whenever listed).

A run that was rolled back still counts: it ran. The ``import_analytics`` asset
(``defs/control``) materialises this daily (a stopped schedule) with the totals as numeric metadata,
which the Dagster UI plots across materialisations; ``python -m import_pipelines analytics`` prints it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

COUNTS = ("source_rows", "created", "updated", "unchanged", "skipped", "failed")

_SUMMARIES = """
SELECT s.profile, s.entity, count(DISTINCT m.run_seq) AS runs, max(r.started_at) AS last_run_at,
       sum(m.source_rows), sum(m.created), sum(m.updated), sum(m.unchanged), sum(m.skipped), sum(m.failed),
       sum(m.seconds)
FROM import_control.runs AS r
JOIN import_control.run_summaries AS m USING (run_seq)
JOIN import_control.streams AS s USING (stream_id)
WHERE r.started_at >= %(since)s
GROUP BY s.profile, s.entity
"""
_DUPLICATES = """
SELECT s.profile, s.entity, count(*)
FROM import_control.audit_records AS a JOIN import_control.streams AS s USING (stream_id)
WHERE a.run_day >= %(since)s::date AND a.recorded_at >= %(since)s AND a.duplicate_of IS NOT NULL
  AND a.action <> 'rolled_back'
GROUP BY s.profile, s.entity
"""
_ERRORS = """
SELECT profile, entity, jsonb_object_agg(error_type, n)
FROM (SELECT profile, entity, coalesce(error_type, stage) AS error_type, count(*) AS n
      FROM import_control.import_errors WHERE created_at >= %(since)s GROUP BY 1, 2, 3) AS t
GROUP BY profile, entity
"""
_WAITING = """
SELECT profile, entity, count(*) FROM import_control.review_pairs WHERE decision IS NULL GROUP BY profile, entity
"""


@dataclass
class StreamHistory:
    """One profile's entity over the window."""

    profile: str
    entity: str
    runs: int = 0
    last_run_at: dt.datetime | None = None
    source_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    duplicates: int = 0
    waiting_review: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        """Failed records over source rows (0 without rows)."""
        return self.failed / self.source_rows if self.source_rows else 0.0

    @property
    def rows_per_s(self) -> float | None:
        """Source rows over the loads' seconds, when the summaries recorded them."""
        return self.source_rows / self.seconds if self.seconds else None


@dataclass
class History:
    """Every stream with runs, duplicates, errors or open reviews in the window, by profile and entity."""

    days: int
    since: dt.datetime
    streams: list[StreamHistory]

    def totals(self) -> dict[str, Any]:
        """The window's totals over every stream: the numbers a dashboard plots."""
        sums = {name: sum(getattr(s, name) for s in self.streams)
                for name in ("runs", *COUNTS, "duplicates", "waiting_review")}
        sums["errors"] = sum(sum(s.errors.values()) for s in self.streams)
        sums["failure_rate"] = round(sums["failed"] / sums["source_rows"], 6) if sums["source_rows"] else 0.0
        return sums

    def as_json(self) -> dict[str, Any]:
        """Plain values for ``--json`` and metadata."""
        return {"days": self.days, "since": self.since.isoformat(), "totals": self.totals(),
                "streams": [{**asdict(s), "last_run_at": s.last_run_at.isoformat() if s.last_run_at else None,
                             "failure_rate": round(s.failure_rate, 6),
                             "rows_per_s": round(s.rows_per_s, 1) if s.rows_per_s else None} for s in self.streams]}

    def render_markdown(self) -> str:
        """A table a person reads at a glance."""
        lines = ["| profile | entity | runs | last run | source rows | created | updated | unchanged | skipped"
                 " | failed | failure rate | rows/s | duplicates | waiting review | errors |",
                 "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for s in self.streams:
            errors = ", ".join(f"{kind} {n:,}" for kind, n in s.errors.items())
            lines.append(f"| {s.profile} | {s.entity} | {s.runs:,} | "
                         f"{s.last_run_at.strftime('%Y-%m-%d %H:%M') if s.last_run_at else ''} | "
                         + " | ".join(f"{getattr(s, name):,}" for name in COUNTS)
                         + f" | {s.failure_rate:.2%} | {f'{s.rows_per_s:,.0f}' if s.rows_per_s else ''}"
                         f" | {s.duplicates:,} | {s.waiting_review:,} | {errors} |")
        return "\n".join(lines)


def import_history(conn: psycopg.Connection, *, days: int = 30, now: dt.datetime | None = None) -> History:
    """What the imports did over the last ``days`` days (see the module)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    since = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=days)
    params = {"since": since}
    streams: dict[tuple[str, str], StreamHistory] = {}

    def stream(profile: str, entity: str) -> StreamHistory:
        return streams.setdefault((profile, entity), StreamHistory(profile, entity))

    for profile, entity, runs, last, *counts, seconds in conn.execute(_SUMMARIES, params):
        one = stream(profile, entity)
        one.runs, one.last_run_at, one.seconds = runs, last, float(seconds or 0.0)
        for name, value in zip(COUNTS, counts):
            setattr(one, name, int(value or 0))
    for profile, entity, count in conn.execute(_DUPLICATES, params):
        stream(profile, entity).duplicates = count
    for profile, entity, errors in conn.execute(_ERRORS, params):
        stream(profile, entity).errors = dict(sorted(errors.items(), key=lambda kind: (-kind[1], kind[0])))
    for profile, entity, count in conn.execute(_WAITING):
        stream(profile, entity).waiting_review = count
    return History(days=days, since=since, streams=[streams[key] for key in sorted(streams)])
