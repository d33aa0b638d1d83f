"""Dedupe rules, pair scoring, and matching an incoming batch against existing target rows.

Confidence (0-100) of a pair of records:

1. Each field present on both sides gets a similarity: 100 or 0 under ``exact`` and
   ``case_insensitive``, normalised Levenshtein similarity x 100 under ``fuzzy``.
2. Within the primary fields and within the secondary fields, the weighted mean over the fields
   present on both sides (a field missing on either side counts neither for nor against).
3. ``primary_weight * primary + secondary_weight * secondary``. With no primary field present on
   both sides the primary part is 0; with no secondary field present on both sides the secondary
   weight goes to the primary part (missing secondary data must not cap a perfect primary match
   at 80).
4. ``match_any``: a pair whose normalised values agree on any listed field is a duplicate with
   confidence 100, whatever the weighted score.

When a tier holds exactly two ``name`` fields (first and last name), a pair is also scored with
them crossed and keeps the better assignment, so ``Doe John`` matches ``John Doe``.

Scoring is vectorised: candidate pairs are index arrays and every field is scored for all pairs
in one ``rapidfuzz.process.cpdist`` call (C++, all cores). ``cpdist`` exists since rapidfuzz
3.8 and ``setup.py`` requires 3.9, so there is no fallback. Pairs whose primary score cannot
reach the threshold any more are dropped before the secondary fields are scored.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from import_pipelines.dedupe import blocking
from import_pipelines.dedupe.normalize import FieldKind, PreparedFrame, infer_kind, prepare_frame

Strategy = Literal["exact", "case_insensitive", "fuzzy"]
MatchBasis = Literal["score", "match_any", "chain"]
"""Why a pair counts as a duplicate: its weighted score reached the threshold, a ``match_any``
field agreed, or (within a batch only) it joined the cluster through other members."""

DEFAULT_MAX_BLOCK_SIZE = 100
# float32 scores summed and divided can land a hair below an exactly reached threshold.
_EPSILON = 1e-6


class FieldWeight(BaseModel):
    """One field of a rule tier with its weight relative to the other fields of that tier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)


def _as_field_weights(items: list[FieldWeight | str]) -> list[FieldWeight | str]:
    # A bare name is a field of weight 1; after validation every item is a FieldWeight.
    return [FieldWeight(field=item) if isinstance(item, str) else item for item in items]


FieldList = Annotated[list[FieldWeight | str], AfterValidator(_as_field_weights)]


class DedupeRule(BaseModel):
    """How to decide that two records describe the same thing.

    ``primary`` and ``secondary`` accept field names or :class:`FieldWeight` objects (a bare
    name weighs 1). ``threshold`` is on the 0-100 confidence scale. ``field_kinds`` says how to
    normalise a field; absent fields are inferred from their names (``email``, ``phone``,
    ``first_name`` ...). ``phone_country`` is the calling code given to numbers written without
    one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy
    primary: FieldList
    secondary: FieldList = Field(default_factory=list)
    primary_weight: float = Field(default=0.8, ge=0, le=1)
    secondary_weight: float = Field(default=0.2, ge=0, le=1)
    threshold: float = Field(default=85.0, ge=0, le=100)
    match_any: list[str] = Field(default_factory=list)
    field_kinds: dict[str, FieldKind] = Field(default_factory=dict)
    phone_country: str = Field(default="1", pattern=r"^[1-9][0-9]{0,2}$")

    @model_validator(mode="after")
    def _check(self) -> DedupeRule:
        if not self.primary:
            raise ValueError("dedupe rule: 'primary' must list at least one field")
        total = self.primary_weight + self.secondary_weight
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(
                f"dedupe rule: primary_weight + secondary_weight must be 1, got "
                f"{self.primary_weight} + {self.secondary_weight} = {total:g}")
        if 0 < self.threshold < 1:
            raise ValueError(
                f"dedupe rule: threshold is on a 0-100 scale; {self.threshold} looks like a fraction, "
                f"write {self.threshold * 100:g}")
        seen: set[str] = set()
        for item in [*self.primary_weights, *self.secondary_weights]:
            if item.field in seen:
                raise ValueError(f"dedupe rule: field {item.field!r} is listed more than once in primary/secondary")
            seen.add(item.field)
        for name in self.match_any:
            if not name:
                raise ValueError("dedupe rule: match_any holds an empty field name")
        unknown = sorted(set(self.field_kinds) - seen - set(self.match_any))
        if unknown:
            raise ValueError(f"dedupe rule: field_kinds names fields the rule does not use: {unknown}")
        return self

    def kind_of(self, name: str) -> FieldKind:
        """The normalisation kind of ``name``: declared in ``field_kinds`` or inferred."""
        return self.field_kinds.get(name) or infer_kind(name)

    @property
    def primary_weights(self) -> list[FieldWeight]:
        """The primary fields with their weights, in rule order."""
        return [item for item in self.primary if isinstance(item, FieldWeight)]

    @property
    def secondary_weights(self) -> list[FieldWeight]:
        """The secondary fields with their weights, in rule order."""
        return [item for item in self.secondary if isinstance(item, FieldWeight)]

    @property
    def primary_fields(self) -> list[str]:
        """Names of the primary fields, in rule order."""
        return [item.field for item in self.primary_weights]

    @property
    def secondary_fields(self) -> list[str]:
        """Names of the secondary fields, in rule order."""
        return [item.field for item in self.secondary_weights]

    @property
    def compared_fields(self) -> list[str]:
        """Primary then secondary field names: the fields that make up the weighted score."""
        return self.primary_fields + self.secondary_fields

    @property
    def columns(self) -> list[str]:
        """Every column a frame must have for this rule (compared fields, then match_any)."""
        return list(dict.fromkeys(self.compared_fields + self.match_any))


@dataclass(frozen=True)
class Match:
    """One record found to duplicate another.

    ``matched_fields`` holds every field present on both sides with its 0-100 similarity.
    """

    record_id: Hashable
    duplicate_of: Hashable
    confidence: float
    matched_fields: dict[str, float]
    basis: MatchBasis


@dataclass(frozen=True)
class Matches:
    """The result of :func:`match_against`: the best existing match per incoming record."""

    matches: list[Match]
    unmatched: list[Hashable]
    pairs_compared: int
    capped_blocks: dict[str, int] = field(default_factory=dict)

    @cached_property
    def _by_id(self) -> dict[Hashable, Match]:
        return {match.record_id: match for match in self.matches}

    def get(self, record_id: Hashable) -> Match | None:
        """The match of incoming ``record_id``, or None when it matched nothing."""
        return self._by_id.get(record_id)

    def __len__(self) -> int:
        return len(self.matches)

    def to_frame(self) -> pd.DataFrame:
        """One row per incoming record: record_id, duplicate_of, confidence, basis, matched_fields.

        Unmatched records have ``duplicate_of`` None and ``confidence`` NaN.
        """
        return matches_frame(self.matches, unmatched=self.unmatched)


@dataclass(frozen=True)
class PairScores:
    """Scores of candidate pairs given as positions into a left and a right frame."""

    left: np.ndarray
    right: np.ndarray
    confidence: np.ndarray
    field_scores: np.ndarray
    fields: tuple[str, ...]
    match_any_hit: np.ndarray

    def select(self, mask: np.ndarray) -> PairScores:
        """The subset of pairs where ``mask`` is true."""
        return PairScores(self.left[mask], self.right[mask], self.confidence[mask], self.field_scores[mask],
                          self.fields, self.match_any_hit[mask])

    @classmethod
    def concat(cls, parts: list[PairScores], *, fields: tuple[str, ...]) -> PairScores:
        """The pairs of several parts, in order (positions are kept as they are)."""
        empty = np.empty(0, dtype=np.int64)
        return cls(np.concatenate([p.left for p in parts] + [empty]),
                   np.concatenate([p.right for p in parts] + [empty]),
                   np.concatenate([p.confidence for p in parts] + [np.empty(0)]),
                   np.concatenate([p.field_scores for p in parts] + [np.empty((0, len(fields)), dtype=np.float32)]),
                   fields, np.concatenate([p.match_any_hit for p in parts] + [np.empty(0, dtype=bool)]))

    def is_match(self, threshold: float) -> np.ndarray:
        """Per pair: a match_any hit or a confidence at or above ``threshold``."""
        return self.match_any_hit | (self.confidence >= threshold - _EPSILON)

    def basis(self, threshold: float) -> np.ndarray:
        """Per pair: ``match_any``, ``score`` or ``chain`` (below threshold)."""
        return np.where(self.match_any_hit, "match_any",
                        np.where(self.confidence >= threshold - _EPSILON, "score", "chain"))

    def matched_fields(self) -> list[dict[str, float]]:
        """Per pair, ``{field: score}`` over the fields present on both sides."""
        rounded = np.round(self.field_scores.astype(np.float64), 2).tolist()
        return [{name: score for name, score in zip(self.fields, row) if score == score} for row in rounded]


def matches_frame(matches: list[Match], *, unmatched: list[Hashable] | None = None) -> pd.DataFrame:
    """Matches as a frame: record_id, duplicate_of, confidence, basis, matched_fields.

    ``unmatched`` ids get rows with ``duplicate_of`` None and ``confidence`` NaN. Ids stay
    Python objects so integer ids do not turn into floats next to a None.
    """
    unmatched = unmatched or []
    return pd.DataFrame({
        "record_id": pd.Series([m.record_id for m in matches] + list(unmatched), dtype=object),
        "duplicate_of": pd.Series([m.duplicate_of for m in matches] + [None] * len(unmatched), dtype=object),
        "confidence": pd.Series([m.confidence for m in matches] + [np.nan] * len(unmatched), dtype="float64"),
        "basis": pd.Series([m.basis for m in matches] + [None] * len(unmatched), dtype=object),
        "matched_fields": pd.Series([m.matched_fields for m in matches] + [{} for _ in unmatched], dtype=object),
    })


def similarity(left: np.ndarray, right: np.ndarray, *, strategy: Strategy) -> np.ndarray:
    """0-100 similarity of aligned object arrays of strings (both sides present)."""
    equal = (left == right).astype(bool)
    if strategy != "fuzzy":
        return np.where(equal, 100.0, 0.0).astype(np.float32)
    scores = np.full(len(left), 100.0, dtype=np.float32)
    differ = ~equal
    if differ.any():
        scores[differ] = process.cpdist(left[differ], right[differ], scorer=Levenshtein.normalized_similarity,
                                        score_multiplier=100, dtype=np.float32, workers=-1)
    return scores


def _field_scores(left: PreparedFrame, right: PreparedFrame, *, i: np.ndarray, j: np.ndarray, name: str,
                  strategy: Strategy) -> np.ndarray:
    a, b = left.take(name, i), right.take(name, j)
    present = np.not_equal(a, None) & np.not_equal(b, None)
    scores = np.full(len(i), np.nan, dtype=np.float32)
    if present.any():
        scores[present] = similarity(a[present], b[present], strategy=strategy)
    return scores


def _tier_scores(left: PreparedFrame, right: PreparedFrame, *, i: np.ndarray, j: np.ndarray, names: list[str],
                 rule: DedupeRule) -> np.ndarray:
    """Field scores of one tier, with first/last names crossed where that scores better."""
    columns = [_field_scores(left, right, i=i, j=j, name=name, strategy=rule.strategy) for name in names]
    scores = np.column_stack(columns) if columns else np.empty((len(i), 0), dtype=np.float32)
    name_columns = [k for k, name in enumerate(names) if rule.kind_of(name) == "name"]
    if len(name_columns) == 2:
        a, b = name_columns
        fa, fb = names[a], names[b]
        direct = scores[:, a] + scores[:, b]
        # Only pairs with all four names present and an imperfect direct match can gain.
        cross_rows = np.flatnonzero(~np.isnan(direct) & (direct < 200))
        if len(cross_rows):
            ci, cj = i[cross_rows], j[cross_rows]
            ab = similarity(left.take(fa, ci), right.take(fb, cj), strategy=rule.strategy)
            ba = similarity(left.take(fb, ci), right.take(fa, cj), strategy=rule.strategy)
            better = (ab + ba) > direct[cross_rows]
            rows = cross_rows[better]
            scores[rows, a] = ab[better]
            scores[rows, b] = ba[better]
    return scores


def _weighted(scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean over present fields, and whether any field was present."""
    present = ~np.isnan(scores)
    w = present * weights
    denominator = w.sum(axis=1)
    numerator = (np.nan_to_num(scores) * w).sum(axis=1)
    any_present = denominator > 0
    mean = np.divide(numerator, denominator, out=np.zeros(len(scores)), where=any_present)
    return mean, any_present


def score_pairs(left: PreparedFrame, right: PreparedFrame, *, i: np.ndarray, j: np.ndarray, rule: DedupeRule,
                prune: bool = True) -> PairScores:
    """Score the pairs ``(left[i[k]], right[j[k]])`` under ``rule``.

    With ``prune``, pairs that cannot reach the threshold after their primary fields are scored
    (and have no ``match_any`` hit) are dropped from the result, saving the secondary scoring.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    hit = np.zeros(len(i), dtype=bool)
    hit_by_field: dict[str, np.ndarray] = {}
    for name in rule.match_any:
        a, b = left.take(name, i, normalized=True), right.take(name, j, normalized=True)
        agree = np.not_equal(a, None) & (a == b).astype(bool)
        hit_by_field[name] = agree
        hit |= agree

    primary = _tier_scores(left, right, i=i, j=j, names=rule.primary_fields, rule=rule)
    primary_mean, _ = _weighted(primary, np.array([f.weight for f in rule.primary_weights]))
    if prune:
        best_possible = rule.primary_weight * primary_mean + rule.secondary_weight * 100.0
        keep = hit | (best_possible >= rule.threshold - _EPSILON)
        i, j, hit, primary, primary_mean = i[keep], j[keep], hit[keep], primary[keep], primary_mean[keep]
        hit_by_field = {name: agree[keep] for name, agree in hit_by_field.items()}

    secondary = _tier_scores(left, right, i=i, j=j, names=rule.secondary_fields, rule=rule)
    secondary_mean, secondary_present = _weighted(secondary, np.array([f.weight for f in rule.secondary_weights]))
    confidence = np.where(secondary_present,
                          rule.primary_weight * primary_mean + rule.secondary_weight * secondary_mean,
                          primary_mean)
    # Rounded so that float32 noise cannot break a tie that the arithmetic says is exact.
    confidence = np.round(np.where(hit, 100.0, confidence), 4)

    fields = tuple(rule.compared_fields)
    scores = np.hstack([primary, secondary]).astype(np.float32)
    extra = [name for name in rule.match_any if name not in fields]
    if extra:
        scores = np.hstack([scores, np.full((len(i), len(extra)), np.nan, dtype=np.float32)])
        fields = fields + tuple(extra)
    for name, agree in hit_by_field.items():
        # A match_any field that agreed after normalisation is a full match of that field.
        scores[agree, fields.index(name)] = 100.0
    return PairScores(i, j, confidence, scores, fields, hit)


def id_order(ids: np.ndarray) -> np.ndarray:
    """Rank of each id in ascending order (ties keep input order); mixed types sort as text."""
    try:
        order = np.argsort(ids, kind="stable")
    except TypeError:
        order = np.argsort(np.array([str(x) for x in ids], dtype=object), kind="stable")
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


def best_per_left(matched: PairScores, *, right_rank: np.ndarray) -> PairScores:
    """Per left record, its best pair: the highest confidence, ties to the lowest right id.

    ``right_rank`` is, per pair, the rank of its right record's id (see :func:`id_order`).
    """
    order = np.lexsort((right_rank, -matched.confidence, matched.left))
    _, first = np.unique(matched.left[order], return_index=True)
    return matched.select(order[first])


def build_matches(scores: PairScores, *, left_ids: np.ndarray, right_ids: np.ndarray,
                  threshold: float) -> list[Match]:
    """Turn scored pairs into :class:`Match` objects (left id duplicates right id)."""
    record_ids = left_ids[scores.left].tolist()
    duplicate_of = right_ids[scores.right].tolist()
    confidence = np.round(scores.confidence, 2).tolist()
    basis = scores.basis(threshold).tolist()
    fields = scores.matched_fields()
    return [Match(record_id=r, duplicate_of=d, confidence=c, matched_fields=f, basis=b)
            for r, d, c, f, b in zip(record_ids, duplicate_of, confidence, fields, basis)]


def match_against(incoming_df: pd.DataFrame, existing_df: pd.DataFrame, rule: DedupeRule, *, incoming_id: str,
                  existing_id: str, max_block_size: int = DEFAULT_MAX_BLOCK_SIZE) -> Matches:
    """Find, for each incoming record, its best existing match at or above the rule's threshold.

    ``existing_df`` is meant to hold the target rows that share a blocking key with the batch
    (see :func:`~import_pipelines.dedupe.blocking.blocking_keys`), but any superset works.
    Ties on confidence go to the lowest existing id. Blocks holding more than
    ``max_block_size`` records (both sides together; a tenth of that for name keys) are
    skipped and reported in ``capped_blocks``.
    """
    left = prepare_frame(incoming_df, rule, id_column=incoming_id, side="incoming")
    right = prepare_frame(existing_df, rule, id_column=existing_id, side="existing")
    candidates = blocking.candidate_pairs_between(left, right, rule, max_block_size=max_block_size)
    scores = score_pairs(left, right, i=candidates.left, j=candidates.right, rule=rule)
    matched = scores.select(scores.is_match(rule.threshold))

    best = best_per_left(matched, right_rank=id_order(right.ids)[matched.right])
    matches = build_matches(best, left_ids=left.ids, right_ids=right.ids, threshold=rule.threshold)
    has_match = np.zeros(left.size, dtype=bool)
    has_match[best.left] = True
    return Matches(matches=matches, unmatched=left.ids[~has_match].tolist(),
                   pairs_compared=candidates.pairs_compared, capped_blocks=candidates.capped_blocks)
