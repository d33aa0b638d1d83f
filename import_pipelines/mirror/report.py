"""What a mirror or archive import did: counts per table, late-seeded references, errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from import_pipelines.engine.merge import EngineError

Mode = Literal["create_only", "upsert"]
MODES: tuple[Mode, ...] = ("create_only", "upsert")
Phase = Literal["load", "late_seed"]


class MirrorError(EngineError):
    """A mirror, export or import cannot run (or a whole phase failed); the message says why."""


@dataclass(frozen=True)
class ReferenceProblem:
    """A row whose reference could not be resolved by natural key (or whose natural key is NULL).

    ``natural_key`` identifies the row, ``column`` the referencing column(s), ``missing_key`` the
    natural key of the referenced row that the target does not have.
    """

    table: str
    natural_key: str
    column: str
    referenced_table: str
    missing_key: str
    phase: Phase
    message: str


@dataclass
class TableReport:
    """Counts of one table: rows read and the action taken for each."""

    table: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    unchanged: int = 0
    failed: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        """Throughput of this table's load phase."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add(self, action: str, count: int) -> None:
        """Add ``count`` rows with ``action`` (one of the audit actions)."""
        setattr(self, action, getattr(self, action) + count)

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain dict for JSON output and Dagster metadata."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["rows_per_s"] = round(self.rows_per_s, 1)
        return data


@dataclass
class MirrorReport:
    """The outcome of one run: per-table counts in load order, late seeding, reference errors."""

    run_id: str
    mode: Mode
    tables: dict[str, TableReport] = field(default_factory=dict)
    deferred_references: list[str] = field(default_factory=list)
    late_seeded: int = 0
    placeholders: list[str] = field(default_factory=list)
    errors: list[ReferenceProblem] = field(default_factory=list)
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows read over all tables."""
        return sum(report.rows for report in self.tables.values())

    def total(self, action: str) -> int:
        """Sum of one action's count over all tables."""
        return sum(getattr(report, action) for report in self.tables.values())

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON output (the CLI prints it)."""
        return {
            "run_id": self.run_id, "mode": self.mode, "rows": self.rows, "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds, 1) if self.seconds else 0.0,
            "late_seeded": self.late_seeded, "deferred_references": self.deferred_references,
            "placeholders": self.placeholders, "error_count": self.error_count,
            "errors": [asdict(error) for error in self.errors], "warnings": self.warnings,
            "tables": [report.as_dict() for report in self.tables.values()],
        }
