"""Dedupe rules, pair scoring, and matching an incoming batch against existing target rows.

Scoring is Fellegi-Sunter record linkage (see :mod:`.comparison` for the levels and weights):

1. Each compared field present on both sides is put in a comparison level of its kind, worth a
   weight in bits (log2 Bayes factor); agreement on a rare value weighs more than on a common
   one (term frequencies, :mod:`.frequency`). A field missing on either side weighs 0.
2. A multi-valued field (``all_values``: every address of a customer) compares every value of
   one record with every value of the other and keeps the best agreement, or, when none agrees,
   the strongest disagreement (``name2@`` beside ``name@`` is evidence against).
3. When the rule has exactly two ``name`` fields (given and family name), a record with the
   whole name in the first and none in the second is split, and a pair is also scored with the
   names crossed, keeping the better assignment.
4. In a population of more than :data:`~.comparison.REFERENCE_POPULATION` records, the name and
   text evidence of a pair that no address or phone links loses
   :func:`~.comparison.population_correction` bits, once per pair.
5. ``bits = prior + (primary_weight / 0.8) * primary + (secondary_weight / 0.2) * secondary``,
   each tier the sum of its fields' bits times their field weights: at the default 80/20 every
   field counts its own weight; other tier weights scale a tier's evidence up or down.
6. ``confidence = 100 * posterior probability``. A pair *matches* when its confidence reaches
   ``threshold``, its primary fields give evidence for it (positive primary bits: agreeing
   names alone never merge two records) and no name field contradicts it (level ``else``:
   addresses and phones are shared in households and offices, names tell their people
   apart). A pair at or above ``review_threshold`` that does not match is *for review*: it is
   never merged, and a person decides. A pair without primary evidence is neither, so its
   secondary fields are not compared at all (``score_pairs(prune=True)``).
7. ``match_any``: a pair whose normalised values agree on any listed field is a duplicate with
   confidence 100, whatever the score. ``match_all``: the same when they agree on every listed
   field (a composite identity: a name and a postcode). A probability never reaches 100, so
   these are the deterministic rules; the score only ever adds to them.

Under ``exact`` and ``case_insensitive`` every field has only the levels ``exact`` and ``else``
(raw or normalised values). Equal values are found vectorised; unequal ones go through the
per-pair comparisons of :mod:`.comparison`, whose per-value features are cached.
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
from import_pipelines.dedupe import blocking
from import_pipelines.dedupe.comparison import (
    FULL_NAME_PRIOR_FREQUENCY,
    GENERATIONS,
    IDENTIFYING_LEVELS,
    FULL_NAME_PRIOR_WEIGHT,
    FULL_NAME_RANGE,
    PRIOR_BITS,
    compare,
    frequency_bits,
    full_name,
    population_correction,
    probability,
)
from import_pipelines.dedupe.frequency import Frequencies
from import_pipelines.dedupe.normalize import FieldKind, PreparedFrame, infer_kind, prepare_frame

Strategy = Literal["exact", "case_insensitive", "fuzzy"]
MatchBasis = Literal["score", "match_any", "chain", "accepted", "review"]
LoadedMatch = Literal["duplicate", "update"]
"""Why a pair counts as a duplicate: its score reached the threshold, a ``match_any`` field
agreed, (within a batch only) it joined the cluster through other members, or a person accepted
it; ``review`` marks a pair listed for a person to decide."""

DEFAULT_PRIMARY_WEIGHT = 0.8
DEFAULT_SECONDARY_WEIGHT = 0.2

DEFAULT_MAX_BLOCK_SIZE = 50
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

    ``on_loaded_match`` is what a record does that matches a row this import loaded from another
    source record which is not in the batch: become that record's ``duplicate`` (two records of
    one person; the default), or ``update`` the row (a source without ids of its own, whose
    records are identified by the match: a file row whose email changed is the same contact).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy
    primary: FieldList
    secondary: FieldList = Field(default_factory=list)
    primary_weight: float = Field(default=0.8, ge=0, le=1)
    secondary_weight: float = Field(default=0.2, ge=0, le=1)
    threshold: float = Field(default=85.0, ge=0, le=100)
    review_threshold: float | None = Field(default=None, ge=0, le=100)
    match_any: list[str] = Field(default_factory=list)
    match_all: list[str] = Field(default_factory=list)
    all_values: dict[str, str] = Field(default_factory=dict)
    field_kinds: dict[str, FieldKind] = Field(default_factory=dict)
    phone_country: str = Field(default="1", pattern=r"^[1-9][0-9]{0,2}$")
    on_loaded_match: LoadedMatch = "duplicate"

    @model_validator(mode="after")
    def _check(self) -> DedupeRule:
        if not self.primary:
            raise ValueError("dedupe rule: 'primary' must list at least one field")
        if self.primary_weight <= 0:
            raise ValueError("dedupe rule: primary_weight must be above 0 (the primary fields decide a match)")
        if self.review_threshold is not None and self.review_threshold >= self.threshold and self.threshold > 0:
            raise ValueError(f"dedupe rule: review_threshold ({self.review_threshold:g}) must be below threshold"
                             f" ({self.threshold:g})")
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
        for setting, names in (("match_any", self.match_any), ("match_all", self.match_all)):
            if any(not name for name in names):
                raise ValueError(f"dedupe rule: {setting} holds an empty field name")
        if len(self.match_all) == 1:
            raise ValueError(f"dedupe rule: match_all lists one field ({self.match_all[0]!r}); a single field that"
                             " decides alone belongs in match_any")
        listed = [name for name in self.match_all if name in self.all_values]
        if listed:
            raise ValueError(f"dedupe rule: match_all compares single values; {listed} "
                             f"{'is' if len(listed) == 1 else 'are'} in all_values")
        for name, column in self.all_values.items():
            if name not in seen:
                raise ValueError(f"dedupe rule: all_values names {name!r}, which is not a primary or secondary field")
            if column in seen or column in self.match_any or column in self.match_all:
                raise ValueError(f"dedupe rule: all_values maps {name!r} to {column!r}, which is a compared field;"
                                 " it must be a field of its own holding a list")
        unknown = sorted(set(self.field_kinds) - seen - set(self.match_any) - set(self.match_all))
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
        """Every column a frame must have for this rule (compared fields, then match_any and match_all)."""
        return list(dict.fromkeys(self.compared_fields + self.match_any + self.match_all))

    @property
    def list_columns(self) -> list[str]:
        """The columns holding every value of a multi-valued field (optional in a frame)."""
        return list(dict.fromkeys(self.all_values.values()))

    @property
    def review_from(self) -> float:
        """The confidence at which the review band starts."""
        return self.review_threshold if self.review_threshold is not None else max(0.0, self.threshold - 35.0)


@dataclass(frozen=True)
class Match:
    """One record found to duplicate another (or, with basis ``review``, perhaps to).

    ``matched_fields`` holds every field present on both sides with its evidence in bits
    (positive for a match, negative against); ``levels`` names each field's comparison level.
    """

    record_id: Hashable
    duplicate_of: Hashable
    confidence: float
    matched_fields: dict[str, float]
    basis: MatchBasis
    levels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Matches:
    """The result of :func:`match_against`: the best existing match per incoming record.

    ``review`` lists, for incoming records without a match, their pairs in the review band.
    """

    matches: list[Match]
    unmatched: list[Hashable]
    pairs_compared: int
    capped_blocks: dict[str, int] = field(default_factory=dict)
    review: list[Match] = field(default_factory=list)

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
    """Scores of candidate pairs given as positions into a left and a right frame.

    ``field_scores`` are bits per field (NaN where a side lacks the field), ``levels`` the
    comparison level names; ``primary_ok`` says whether the primary fields gave evidence for
    the pair, which a match needs.
    """

    left: np.ndarray
    right: np.ndarray
    confidence: np.ndarray
    field_scores: np.ndarray
    fields: tuple[str, ...]
    match_any_hit: np.ndarray
    levels: np.ndarray
    primary_ok: np.ndarray

    def select(self, mask: np.ndarray) -> PairScores:
        """The subset of pairs where ``mask`` is true (a boolean mask or positions)."""
        return PairScores(self.left[mask], self.right[mask], self.confidence[mask], self.field_scores[mask],
                          self.fields, self.match_any_hit[mask], self.levels[mask], self.primary_ok[mask])

    @classmethod
    def concat(cls, parts: list[PairScores], *, fields: tuple[str, ...]) -> PairScores:
        """The pairs of several parts, in order (positions are kept as they are)."""
        empty = np.empty(0, dtype=np.int64)
        return cls(np.concatenate([p.left for p in parts] + [empty]),
                   np.concatenate([p.right for p in parts] + [empty]),
                   np.concatenate([p.confidence for p in parts] + [np.empty(0)]),
                   np.concatenate([p.field_scores for p in parts] + [np.empty((0, len(fields)), dtype=np.float32)]),
                   fields, np.concatenate([p.match_any_hit for p in parts] + [np.empty(0, dtype=bool)]),
                   np.concatenate([p.levels for p in parts] + [np.empty((0, len(fields)), dtype=object)]),
                   np.concatenate([p.primary_ok for p in parts] + [np.empty(0, dtype=bool)]))

    def is_match(self, threshold: float) -> np.ndarray:
        """Per pair: a match_any hit, or a confidence at or above ``threshold`` with primary evidence."""
        return self.match_any_hit | ((self.confidence >= threshold - _EPSILON) & self.primary_ok)

    def in_review(self, rule: DedupeRule) -> np.ndarray:
        """Per pair: not a match, but at or above the rule's review threshold."""
        return ~self.is_match(rule.threshold) & (self.confidence >= rule.review_from - _EPSILON)

    def basis(self, threshold: float) -> np.ndarray:
        """Per pair: ``match_any``, ``score``, or ``chain`` (not a match by itself)."""
        return np.where(self.match_any_hit, "match_any", np.where(self.is_match(threshold), "score", "chain"))

    def matched_fields(self) -> list[dict[str, float]]:
        """Per pair, ``{field: bits}`` over the fields present on both sides."""
        rounded = np.round(self.field_scores.astype(np.float64), 2).tolist()
        return [{name: score for name, score in zip(self.fields, row) if score == score} for row in rounded]

    def level_names(self) -> list[dict[str, str]]:
        """Per pair, ``{field: level}`` over the fields present on both sides."""
        return [{name: level for name, level in zip(self.fields, row) if level is not None}
                for row in self.levels.tolist()]


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


def _reduce_best(rows: np.ndarray, weights: np.ndarray, levels: np.ndarray,
                 size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of several value pairs: the best positive weight, else the most negative one."""
    order = np.lexsort((-weights, rows))
    rows, weights, levels = rows[order], weights[order], levels[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)] - 1
    pick = np.where(weights[starts] > 0, starts, ends)
    return rows[pick], weights[pick], levels[pick]


def _field_evidence(left: PreparedFrame, right: PreparedFrame, *, i: np.ndarray, j: np.ndarray, name: str,
                    rule: DedupeRule, frequencies: Frequencies, primary: bool,
                    values: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bits (NaN where missing) and level names (None where missing) of one field for pairs ``i``, ``j``."""
    kind = rule.kind_of(name)
    options = {"kind": kind, "field": name, "fuzzy": rule.strategy == "fuzzy", "primary": primary,
               "counts": frequencies.counts, "population": frequencies.population}
    bits = np.full(len(i), np.nan)
    levels = np.full(len(i), None, dtype=object)
    if name in rule.all_values and values is None:
        a, b = left.multi(name)[i], right.multi(name)[j]
        present = np.flatnonzero(np.not_equal(a, None) & np.not_equal(b, None))
        if not len(present):
            return bits, levels
        sizes_a = np.fromiter((len(v) for v in a[present]), dtype=np.int64, count=len(present))
        sizes_b = np.fromiter((len(v) for v in b[present]), dtype=np.int64, count=len(present))
        single = present[(sizes_a == 1) & (sizes_b == 1)]
        if len(single):
            x = np.array([v[0] for v in a[single]] + [None], dtype=object)[:-1]
            y = np.array([v[0] for v in b[single]] + [None], dtype=object)[:-1]
            levels[single], bits[single] = compare(x, y, **options)
        several = present[(sizes_a > 1) | (sizes_b > 1)]
        if len(several):
            rows, xs, ys = [], [], []
            for row, va, vb in zip(several.tolist(), a[several].tolist(), b[several].tolist()):
                for x in va:
                    for y in vb:
                        rows.append(row)
                        xs.append(x)
                        ys.append(y)
            x = np.array(xs + [None], dtype=object)[:-1]
            y = np.array(ys + [None], dtype=object)[:-1]
            found_levels, found_bits = compare(x, y, **options)
            rows_done, best_bits, best_levels = _reduce_best(np.array(rows, dtype=np.int64), found_bits, found_levels,
                                                             len(i))
            bits[rows_done], levels[rows_done] = best_bits, best_levels
        return bits, levels
    a, b = values if values is not None else (left.take(name, i), right.take(name, j))
    present = np.flatnonzero(np.not_equal(a, None) & np.not_equal(b, None))
    if len(present):
        levels[present], bits[present] = compare(a[present], b[present], **options)
    return bits, levels


def _split_names(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the last name is missing and the first holds several words, split the whole name.

    ``Smith, John`` is family name first; otherwise the last word is the family name, with a
    generational suffix (``John Smith Jr.``) kept on it.
    """
    rows = [k for k, (f, l) in enumerate(zip(first.tolist(), last.tolist())) if l is None and f and (" " in f or "," in f)]
    if rows:
        first, last = first.copy(), last.copy()
        for k in rows:
            whole = first[k]
            if "," in whole:
                tail, _, head = whole.partition(",")
            else:
                words = whole.split()
                cut = -2 if len(words) > 2 and words[-1].strip(".").lower() in GENERATIONS else -1
                head, tail = " ".join(words[:cut]), " ".join(words[cut:])
            first[k], last[k] = head.strip() or None, tail.strip() or None
    return first, last


def _name_evidence(left: PreparedFrame, right: PreparedFrame, *, i: np.ndarray, j: np.ndarray, names: list[str],
                   tiers: list[bool], rule: DedupeRule,
                   frequencies: Frequencies) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Given and family name scored together: split whole names, and cross them where that scores better."""
    fa, la = _split_names(left.take(names[0], i), left.take(names[1], i))
    fb, lb = _split_names(right.take(names[0], j), right.take(names[1], j))
    options = {"rule": rule, "frequencies": frequencies}
    first = _field_evidence(left, right, i=i, j=j, name=names[0], primary=tiers[0], values=(fa, fb), **options)
    last = _field_evidence(left, right, i=i, j=j, name=names[1], primary=tiers[1], values=(la, lb), **options)
    direct = first[0] + last[0]
    # swapped names disagree where they stand: only pairs with a contradiction are tried crossed
    rows = np.flatnonzero(~np.isnan(direct) & ((first[1] == "else") | (last[1] == "else")))
    if len(rows):
        sub = (i[rows], j[rows])
        ab = _field_evidence(left, right, i=sub[0], j=sub[1], name=names[0], primary=tiers[0],
                             values=(fa[rows], lb[rows]), **options)
        ba = _field_evidence(left, right, i=sub[0], j=sub[1], name=names[1], primary=tiers[1],
                             values=(la[rows], fb[rows]), **options)
        better = (ab[0] + ba[0]) > direct[rows]
        take = rows[better]
        first[0][take], first[1][take] = ab[0][better], ab[1][better]
        last[0][take], last[1][take] = ba[0][better], ba[1][better]
    # agreeing on both names says no more than the full name's own frequency allows
    agree = np.flatnonzero(np.isin(first[1], ["exact", "translit"]) & np.isin(last[1], ["exact", "translit"]))
    if len(agree):
        both = first[0][agree] + last[0][agree]
        forms = np.array([full_name(f, l) for f, l in zip(fa[agree].tolist(), la[agree].tolist())] + [None],
                         dtype=object)[:-1]
        cap = frequency_bits(frequencies.counts("names:full", forms), population=frequencies.population,
                             bounds=FULL_NAME_RANGE, prior=FULL_NAME_PRIOR_FREQUENCY, prior_weight=FULL_NAME_PRIOR_WEIGHT)
        scale = np.where(both > cap, cap / np.maximum(both, 1e-9), 1.0)
        first[0][agree] *= scale
        last[0][agree] *= scale
    return [first[0], last[0]], [first[1], last[1]]


def _correct_for_population(bits: dict[str, np.ndarray], levels: dict[str, np.ndarray], *, rule: DedupeRule,
                            population: int, size: int) -> None:
    """Scale down the positive name and text evidence of pairs that no identifier links, in place.

    Once per pair, by :func:`~.comparison.population_correction` bits at most (never below no
    evidence): spread over the fields in proportion to what each said.
    """
    excess = population_correction(population)
    if not excess or not size:
        return
    identified = np.zeros(size, dtype=bool)
    described: list[str] = []
    for name in bits:
        kind = rule.kind_of(name)
        if kind in ("email", "phone") or (kind == "text" and name in rule.primary_fields):
            identified |= np.isin(levels[name], list(IDENTIFYING_LEVELS))
        else:
            described.append(name)
    if not described:
        return
    positive = sum((np.clip(np.nan_to_num(bits[name]), 0, None) for name in described), np.zeros(size))
    kept = np.where(identified | (positive <= 0), 1.0, np.maximum(positive - excess, 0) / np.maximum(positive, 1e-9))
    for name in described:
        bits[name] = np.where(bits[name] > 0, bits[name] * kept, bits[name])


def score_pairs(left: PreparedFrame, right: PreparedFrame, *, i: np.ndarray, j: np.ndarray, rule: DedupeRule,
                frequencies: Frequencies, prune: bool = True) -> PairScores:
    """Score the pairs ``(left[i[k]], right[j[k]])`` under ``rule`` (see the module docstring).

    With ``prune``, a pair whose primary fields give no evidence for it (and no ``match_any``
    hit) can neither match nor be reviewed, so its secondary fields are not compared: they are
    missing in its scores. ``prune=False`` scores every field of every pair.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    hit = np.zeros(len(i), dtype=bool)
    hit_by_field: dict[str, np.ndarray] = {}

    def agreeing(name: str) -> np.ndarray:
        if name in rule.all_values:
            a, b = left.multi(name)[i], right.multi(name)[j]
            return np.array([x is not None and y is not None and not set(x).isdisjoint(y)
                             for x, y in zip(a.tolist(), b.tolist())], dtype=bool).reshape(len(i))
        a, b = left.take(name, i, normalized=True), right.take(name, j, normalized=True)
        return np.not_equal(a, None) & (a == b).astype(bool)

    for name in rule.match_any:
        hit_by_field[name] = agreeing(name)
        hit |= hit_by_field[name]
    if rule.match_all:
        together = np.logical_and.reduce([agreeing(name) for name in rule.match_all])
        for name in rule.match_all:
            hit_by_field[name] = together | hit_by_field.get(name, np.zeros(len(i), dtype=bool))
        hit |= together

    fields = tuple(rule.compared_fields)
    primary = set(rule.primary_fields)
    weights = {item.field: item.weight for item in [*rule.primary_weights, *rule.secondary_weights]}
    bits: dict[str, np.ndarray] = {}
    levels: dict[str, np.ndarray] = {}
    names = [name for name in fields if rule.kind_of(name) == "name"]
    paired = names if len(names) == 2 else []

    def evidence(wanted: list[str], rows: np.ndarray | None) -> None:
        # bits and levels of ``wanted`` for the pairs ``rows`` (all when None); NaN and None elsewhere
        ii, jj = (i, j) if rows is None else (i[rows], j[rows])
        found_bits: dict[str, np.ndarray] = {}
        found_levels: dict[str, np.ndarray] = {}
        if paired and set(paired) <= set(wanted):
            pair_bits, pair_levels = _name_evidence(left, right, i=ii, j=jj, names=paired,
                                                    tiers=[name in primary for name in paired], rule=rule,
                                                    frequencies=frequencies)
            found_bits.update(zip(paired, pair_bits))
            found_levels.update(zip(paired, pair_levels))
        for name in wanted:
            if name not in found_bits:
                found_bits[name], found_levels[name] = _field_evidence(
                    left, right, i=ii, j=jj, name=name, rule=rule, frequencies=frequencies, primary=name in primary)
        for name in wanted:
            if rows is None:
                bits[name], levels[name] = found_bits[name], found_levels[name]
            else:
                bits[name] = np.full(len(i), np.nan)
                bits[name][rows] = found_bits[name]
                levels[name] = np.full(len(i), None, dtype=object)
                levels[name][rows] = found_levels[name]

    first = [name for name in fields if name in primary]
    rest = [name for name in fields if name not in primary]
    if prune and rest and not (set(paired) & primary):
        # a pair needs evidence from its primary fields to match or to be reviewed: the secondary
        # ones (names, the costly comparisons) are scored only for pairs that have some
        evidence(first, None)
        stated = sum((np.nan_to_num(bits[name]) * weights[name] for name in first), np.zeros(len(i)))
        evidence(rest, np.flatnonzero(hit | (stated > 0)))
    else:
        evidence(list(fields), None)
    _correct_for_population(bits, levels, rule=rule, population=frequencies.population, size=len(i))
    primary_bits = sum((np.nan_to_num(bits[name]) * weights[name] for name in rule.primary_fields),
                       np.zeros(len(i)))
    secondary_bits = sum((np.nan_to_num(bits[name]) * weights[name] for name in rule.secondary_fields),
                         np.zeros(len(i)))
    total = (PRIOR_BITS + rule.primary_weight / DEFAULT_PRIMARY_WEIGHT * primary_bits
             + rule.secondary_weight / DEFAULT_SECONDARY_WEIGHT * secondary_bits)
    # rounded so that float noise cannot break a tie that the arithmetic says is exact
    confidence = np.round(np.where(hit, 100.0, 100.0 * probability(total)), 4)

    extra = tuple(dict.fromkeys(name for name in rule.match_any + rule.match_all if name not in fields))
    all_fields = fields + extra
    scores = np.column_stack([bits[name] for name in fields] + [np.full(len(i), np.nan)] * len(extra)
                             ).astype(np.float32) if all_fields else np.empty((len(i), 0), dtype=np.float32)
    level_table = np.empty((len(i), len(all_fields)), dtype=object)
    for k, name in enumerate(fields):
        level_table[:, k] = levels[name]
    for name, agree in hit_by_field.items():
        # a match_any (match_all) field that agreed after normalisation is recorded as an exact agreement
        column = all_fields.index(name)
        level_table[agree, column] = "exact"
        if name in extra:
            scores[agree, column] = 0.0
    # identifiers are shared in households and offices: names that contradict each other veto a
    # match however strongly the shared address and phone agree (the pair goes to review instead)
    contradicted = np.zeros(len(i), dtype=bool)
    for name in names:
        contradicted |= levels[name] == "else"
    return PairScores(i, j, confidence, scores, all_fields, hit, level_table, (primary_bits > 0) & ~contradicted)


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


def build_matches(scores: PairScores, *, left_ids: np.ndarray, right_ids: np.ndarray, threshold: float,
                  basis: MatchBasis | None = None) -> list[Match]:
    """Turn scored pairs into :class:`Match` objects (left id duplicates right id)."""
    record_ids = left_ids[scores.left].tolist()
    duplicate_of = right_ids[scores.right].tolist()
    confidence = np.round(scores.confidence, 2).tolist()
    bases = [basis] * len(record_ids) if basis else scores.basis(threshold).tolist()
    fields = scores.matched_fields()
    levels = scores.level_names()
    return [Match(record_id=r, duplicate_of=d, confidence=c, matched_fields=f, basis=b, levels=lv)
            for r, d, c, f, b, lv in zip(record_ids, duplicate_of, confidence, fields, bases, levels)]


def review_pairs(scores: PairScores, *, rule: DedupeRule, limit: int = 3) -> PairScores:
    """The pairs in the review band, at most ``limit`` per left record, the most likely first."""
    band = scores.select(scores.in_review(rule))
    order = np.lexsort((band.right, -band.confidence, band.left))
    band = band.select(order)
    starts = np.flatnonzero(np.r_[True, band.left[1:] != band.left[:-1]]) if len(band.left) else np.empty(0, int)
    rank = np.arange(len(band.left)) - np.repeat(starts, np.diff(np.r_[starts, len(band.left)]))
    return band.select(rank < limit)


def match_against(incoming_df: pd.DataFrame, existing_df: pd.DataFrame, rule: DedupeRule, *, incoming_id: str,
                  existing_id: str, max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
                  frequencies: Frequencies | None = None) -> Matches:
    """Find, for each incoming record, its best existing match at or above the rule's threshold.

    ``existing_df`` is meant to hold the target rows that share a blocking key with the batch
    (see :func:`~import_pipelines.dedupe.blocking.blocking_keys`), but any superset works.
    Ties on confidence go to the lowest existing id. Blocks holding more than
    ``max_block_size`` records (both sides together; a tenth of that for name keys) are
    skipped and reported in ``capped_blocks``. Term frequencies are those of both frames
    together unless ``frequencies`` gives others. Unmatched records' pairs in the review band
    are listed in ``review``.
    """
    left = prepare_frame(incoming_df, rule, id_column=incoming_id, side="incoming")
    right = prepare_frame(existing_df, rule, id_column=existing_id, side="existing")
    frequencies = frequencies or Frequencies.of([left, right], rule)
    candidates = blocking.candidate_pairs_between(left, right, rule, max_block_size=max_block_size)
    scores = score_pairs(left, right, i=candidates.left, j=candidates.right, rule=rule, frequencies=frequencies)
    matched = scores.select(scores.is_match(rule.threshold))

    best = best_per_left(matched, right_rank=id_order(right.ids)[matched.right])
    matches = build_matches(best, left_ids=left.ids, right_ids=right.ids, threshold=rule.threshold)
    has_match = np.zeros(left.size, dtype=bool)
    has_match[best.left] = True
    band = review_pairs(scores.select(~has_match[scores.left]), rule=rule)
    review = build_matches(band, left_ids=left.ids, right_ids=right.ids, threshold=rule.threshold, basis="review")
    return Matches(matches=matches, unmatched=left.ids[~has_match].tolist(),
                   pairs_compared=candidates.pairs_compared, capped_blocks=candidates.capped_blocks, review=review)
