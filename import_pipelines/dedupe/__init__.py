"""Duplicate detection: within an incoming batch and against existing target rows.

A :class:`DedupeRule` says which fields decide (primary / secondary, weights, threshold,
``match_any``) and how strictly (``exact``, ``case_insensitive``, ``fuzzy``). Records are
normalised once (:mod:`.normalize`), paired only within blocks that share a key
(:mod:`.blocking`), scored with vectorised rapidfuzz (:mod:`.matching`), and within a batch
clustered with one survivor per cluster (:mod:`.survivor`).

    rule = DedupeRule(strategy="fuzzy", primary=["email", "phone"],
                      secondary=["first_name", "last_name", "company"])
    keys = blocking_keys(batch, rule, id_column="source_id")      # -> SQL: key = ANY(...)
    found = match_against(batch, candidates, rule, incoming_id="source_id", existing_id="id")
    groups = find_duplicates_within(batch, rule, id_column="source_id", updated_column="updated_at")
"""

from import_pipelines.dedupe.blocking import blocking_keys, target_blocking_keys
from import_pipelines.dedupe.matching import (
    DEFAULT_MAX_BLOCK_SIZE,
    DedupeRule,
    FieldWeight,
    Match,
    MatchBasis,
    Matches,
    Strategy,
    match_against,
)
from import_pipelines.dedupe.normalize import FieldKind, infer_kind, normalize_values
from import_pipelines.dedupe.survivor import DuplicateCluster, DuplicateGroups, find_duplicates_within

__all__ = [
    "DEFAULT_MAX_BLOCK_SIZE",
    "DedupeRule",
    "DuplicateCluster",
    "DuplicateGroups",
    "FieldKind",
    "FieldWeight",
    "Match",
    "MatchBasis",
    "Matches",
    "Strategy",
    "blocking_keys",
    "find_duplicates_within",
    "infer_kind",
    "match_against",
    "normalize_values",
    "target_blocking_keys",
]
