"""The merge plan: everything the engine needs to merge one stream into one target table.

Two front ends build it — a template entity (:mod:`import_pipelines.pipeline.plan`) and a
mirrored or archived table (:mod:`import_pipelines.mirror.plan`) — and one engine executes it.
Every expression in a plan is composed SQL over the staging row, aliased ``s``:

- ``key``: the natural key, column by column; the row a staged record becomes is the target row
  whose key columns equal these values (a constant source system and an external id for a
  template, the unique columns of the table for the mirror);
- ``values``: the plain columns written, each with its value;
- ``refs``: the columns that point at other rows, each resolved through a *key relation* — a
  SELECT over the referenced table exposing the referenced columns as ``r0..`` and its natural
  key as ``k0..`` — by equality with the reference's key atoms in the staging row;
- ``change``: how an unchanged record is told from a changed one: by the hash the source gave
  the record against the one ``record_state`` remembers (``hash``), by comparing every written
  column with the target row (``columns``), or not at all (``none``: nothing is ever unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from import_pipelines.engine.target import TargetTable

Mode = Literal["create_only", "update_only", "upsert", "create_new"]
ChangeDetection = Literal["hash", "columns", "none"]
OnMissing = Literal["fail", "set_null"]


@dataclass(frozen=True)
class Value:
    """A target column and the expression (over the staging row ``s``) it takes."""

    column: str
    expr: sql.Composable


@dataclass(frozen=True)
class Ref:
    """A reference: target ``columns`` that hold ``ref_columns`` of the row another natural key names.

    ``relation`` is the referenced table's key relation, ``atoms`` the staged natural key it is
    matched with; a ``deferred`` one may be filled in late (:mod:`~import_pipelines.engine.late_seed`).
    ``source_key`` is the referenced record's source id as its own stream records it (for dry
    runs and duplicates' states).
    """

    name: str
    columns: tuple[str, ...]
    column_types: tuple[str, ...]
    table: TargetTable
    ref_columns: tuple[str, ...]
    relation: sql.Composable
    atoms: tuple[sql.Composable, ...]
    atom_names: tuple[str, ...]
    atom_types: tuple[str, ...]
    present: sql.Composable
    # the message of an unresolvable reference, given its key atoms (staged values, or text)
    describe_missing: Callable[[Sequence[sql.Composable]], sql.Composable]
    source_key: sql.Composable
    ref_stream: str | None = None  # the stream that loads the referenced rows, when it is part of this load
    deferred: bool = False
    not_null: bool = False
    required_message: str | None = None  # set when an absent reference is an error
    on_missing: OnMissing = "fail"
    follows_duplicates: bool = False  # the referenced stream dedupes: a duplicate resolves to its survivor's row

    @property
    def label(self) -> str:
        """The referencing columns as messages name them: ``user_id`` or ``a,b``."""
        return ",".join(self.columns)


@dataclass(frozen=True)
class MergePlan:
    """How one stream is merged into one target table."""

    profile: str
    entity: str
    table: TargetTable
    key: tuple[Value, ...]
    key_null: sql.Composable  # when a staged record's natural key is incomplete
    key_message: str  # its error
    values: tuple[Value, ...]
    source_id: sql.Composable  # the record's id in its source, as text: what the audit and record_state name
    refs: tuple[Ref, ...] = ()
    touch: tuple[str, ...] = ()  # set to now() when a row is updated
    change: ChangeDetection = "hash"
    mode: Mode = "upsert"
    unlinked_key: tuple[str, ...] = ()  # key columns a create_new insert leaves NULL (an unlinked copy)
    dedupes: bool = False  # the staging rows carry duplicate and match decisions

    @property
    def deferred(self) -> tuple[Ref, ...]:
        """The references loaded late."""
        return tuple(ref for ref in self.refs if ref.deferred)

    @property
    def written_columns(self) -> tuple[str, ...]:
        """Every column an insert writes besides the row key."""
        return (*(v.column for v in self.key), *(v.column for v in self.values),
                *(c for ref in self.refs for c in ref.columns))
