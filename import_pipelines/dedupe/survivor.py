"""Duplicates inside one incoming batch: clusters of matched records and the survivor of each.

Matched pairs are edges; clusters are their connected components (a vectorised union-find), so
``A~B`` and ``B~C`` put A, B and C in one cluster even when A and C score below the threshold.

The survivor of a cluster is, in this order: the most recently updated record (when an
``updated_column`` is given; records without a timestamp count as oldest), then the most
complete record (most non-blank columns), then the lowest id. Every other member is reported
as a duplicate of the survivor with its *direct* score against the survivor; a member that
only joined through other members has basis ``chain``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from import_pipelines.dedupe import blocking
from import_pipelines.dedupe.matching import (
    DEFAULT_MAX_BLOCK_SIZE,
    DedupeRule,
    Match,
    PairScores,
    build_matches,
    id_order,
    matches_frame,
    review_pairs,
    score_pairs,
)
from import_pipelines.dedupe.frequency import Frequencies
from import_pipelines.dedupe.normalize import PreparedFrame, prepare_frame


@dataclass(frozen=True)
class DuplicateCluster:
    """Records of one batch that describe the same thing; ``members`` starts with the survivor."""

    survivor: Hashable
    members: tuple[Hashable, ...]


@dataclass(frozen=True)
class DuplicateGroups:
    """The result of :func:`find_duplicates_within`."""

    clusters: list[DuplicateCluster]
    duplicates: list[Match]
    pairs_compared: int
    capped_blocks: dict[str, int] = field(default_factory=dict)
    review: list[Match] = field(default_factory=list)

    @property
    def survivors(self) -> list[Hashable]:
        """The survivor id of every cluster."""
        return [cluster.survivor for cluster in self.clusters]

    def __len__(self) -> int:
        return len(self.duplicates)

    def to_frame(self) -> pd.DataFrame:
        """One row per non-survivor: record_id, duplicate_of, confidence, basis, matched_fields."""
        return matches_frame(self.duplicates)


def connected_components(n: int, *, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component label (the smallest member position) of each of ``n`` nodes joined by edges a-b.

    Union-find over arrays: every round hooks the larger root of each edge under the smaller
    one, then compresses paths by pointer jumping, until all edges join equal roots. Parents
    only ever point to smaller positions, so no cycle can form.
    """
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while True:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            return parent
        low = np.minimum(root_a[differ], root_b[differ])
        high = np.maximum(root_a[differ], root_b[differ])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def completeness(df: pd.DataFrame, *, exclude: list[str]) -> np.ndarray:
    """Number of non-blank values per row, over all columns but ``exclude``."""
    counts = np.zeros(len(df), dtype=np.int64)
    for name in df.columns:
        if name in exclude:
            continue
        column = df[name]
        filled = column.notna().to_numpy(dtype=bool)
        if pd.api.types.is_string_dtype(column.dtype) or pd.api.types.is_object_dtype(column.dtype):
            # A blank string is as good as missing; other non-null objects count as filled.
            not_blank = [not (isinstance(v, str) and not v.strip()) for v in column.tolist()]
            filled = filled & np.array(not_blank, dtype=bool)
        counts += filled
    return counts


def survivor_ranks(df: pd.DataFrame, *, ids: np.ndarray, updated_column: str | None,
                   id_column: str | None) -> np.ndarray:
    """Rank of every row as a survivor (0 = best): newest, then most complete, then lowest id."""
    if updated_column is None:
        newest = np.zeros(len(df), dtype=np.int64)
    else:
        stamps = pd.to_datetime(df[updated_column], utc=True, errors="coerce")
        # Missing timestamps sort as the oldest possible value.
        newest = -stamps.dt.tz_localize(None).to_numpy().astype(np.int64)
        newest[stamps.isna().to_numpy()] = np.iinfo(np.int64).max
    filled = completeness(df, exclude=[name for name in (id_column, updated_column) if name])
    order = np.lexsort((id_order(ids), -filled, newest))
    ranks = np.empty(len(df), dtype=np.int64)
    ranks[order] = np.arange(len(df))
    return ranks


def find_duplicates_within(df: pd.DataFrame, rule: DedupeRule, *, id_column: str, updated_column: str | None = None,
                           max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
                           frequencies: Frequencies | None = None) -> DuplicateGroups:
    """Cluster the duplicates inside one batch and pick a survivor per cluster.

    Pairs are candidates only within blocks (see :mod:`import_pipelines.dedupe.blocking`;
    blocks above ``max_block_size`` records, a tenth of it for name keys, are skipped and
    reported); matched pairs (confidence at or above the threshold, or a ``match_any`` hit) are
    joined into clusters. Survivors: most recent ``updated_column``, then most complete, then
    lowest id. Cluster members are listed survivor first; every non-survivor is reported
    against its survivor with confidence and field scores. Pairs in the review band between
    records of different clusters are listed in ``review`` (never merged). Term frequencies are
    the batch's unless ``frequencies`` gives others.
    """
    if updated_column is not None and updated_column not in df.columns:
        raise ValueError(f"dedupe: the incoming frame has no updated column {updated_column!r}")
    prepared = prepare_frame(df, rule, id_column=id_column, side="incoming")
    frequencies = frequencies or Frequencies.of([prepared], rule)
    candidates = blocking.candidate_pairs_within(prepared, rule, max_block_size=max_block_size)
    scores = score_pairs(prepared, prepared, i=candidates.left, j=candidates.right, rule=rule, frequencies=frequencies)
    edges = scores.select(scores.is_match(rule.threshold))
    clusters, duplicates = cluster_matches(df, prepared, left=edges.left, right=edges.right, rule=rule,
                                           id_column=id_column, updated_column=updated_column,
                                           frequencies=frequencies)
    labels = connected_components(prepared.size, a=edges.left, b=edges.right)
    band = review_pairs(oriented(scores.select(labels[scores.left] != labels[scores.right]),
                                 survivor_side(df, prepared, id_column=id_column, updated_column=updated_column)),
                        rule=rule)
    review = build_matches(band, left_ids=prepared.ids, right_ids=prepared.ids, threshold=rule.threshold,
                           basis="review")
    return DuplicateGroups(clusters=clusters, duplicates=duplicates, pairs_compared=candidates.pairs_compared,
                           capped_blocks=candidates.capped_blocks, review=review)


def survivor_side(df: pd.DataFrame, prepared: PreparedFrame, *, id_column: str | None,
                  updated_column: str | None) -> np.ndarray:
    """Survivor rank of every record of the batch (0 = would survive first)."""
    return survivor_ranks(df, ids=prepared.ids, updated_column=updated_column, id_column=id_column)


def oriented(scores: PairScores, ranks: np.ndarray) -> PairScores:
    """Pairs turned so that the left record is the one that would not survive (it waits for review)."""
    swap = ranks[scores.left] < ranks[scores.right]
    left = np.where(swap, scores.right, scores.left)
    right = np.where(swap, scores.left, scores.right)
    return replace(scores, left=left, right=right)


def cluster_matches(df: pd.DataFrame, prepared: PreparedFrame, *, left: np.ndarray, right: np.ndarray,
                    rule: DedupeRule, id_column: str | None, updated_column: str | None,
                    frequencies: Frequencies) -> tuple[list[DuplicateCluster], list[Match]]:
    """Clusters of the matched pairs ``(left[k], right[k])`` (row positions of ``df`` / ``prepared``).

    Survivor per cluster by :func:`survivor_ranks`; every other member is reported against its
    survivor with its direct score. ``df`` needs only the rows that can be in a pair: the
    staging path passes just the records of its matched pairs.
    """
    labels = connected_components(prepared.size, a=left, b=right)
    sizes = np.bincount(labels, minlength=prepared.size)
    in_cluster = np.flatnonzero(sizes[labels] >= 2)
    if len(in_cluster) == 0:
        return [], []

    # Only clustered rows compete, so only they pay for timestamp parsing and completeness.
    ranks = survivor_ranks(df.iloc[in_cluster], ids=prepared.ids[in_cluster], updated_column=updated_column,
                           id_column=id_column)
    members = in_cluster[np.lexsort((ranks, labels[in_cluster]))]
    member_labels = labels[members]
    starts = np.flatnonzero(np.r_[True, member_labels[1:] != member_labels[:-1]])
    survivor_of_label = np.full(prepared.size, -1, dtype=np.int64)
    survivor_of_label[member_labels[starts]] = members[starts]
    survivor = survivor_of_label[member_labels]

    losers = members[members != survivor]
    direct = score_pairs(prepared, prepared, i=losers, j=survivor[members != survivor], rule=rule, prune=False,
                         frequencies=frequencies)
    duplicates = build_matches(direct, left_ids=prepared.ids, right_ids=prepared.ids, threshold=rule.threshold)

    ids = prepared.ids[members].tolist()
    bounds = np.r_[starts, len(members)].tolist()
    clusters = [DuplicateCluster(survivor=ids[start], members=tuple(ids[start:end]))
                for start, end in zip(bounds[:-1], bounds[1:])]
    return clusters, duplicates
