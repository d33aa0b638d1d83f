"""Blocking: which pairs of records are worth scoring at all.

Scoring every pair is rows x rows. Instead every record gets a few *blocking keys*, and only
records sharing a key are compared. With block sizes capped, each record meets at most a fixed
number of others, so the work grows linearly with the rows.

Keys, as text ``"<type>=<value>"`` (the loader stores or queries them with
``WHERE key = ANY(...)``):

| strategy | field kind | key types | why |
|---|---|---|---|
| exact | any | ``f:exact`` raw value | lossless, see below |
| case_insensitive | any | ``f:norm`` normalised value | lossless, see below |
| fuzzy | email | ``f:norm``, ``f:local`` (the mailbox name: no ``+tag``, dots or separators), ``f:half`` (each half of the mailbox name with the domain) | the mailbox name survives a changed domain; one slip changes one half only |
| fuzzy | phone | ``f:last7`` (last 7 digits) | survives a missing or different country / area code |
| fuzzy | name, text | ``f:norm``; text also ``f:phonetic`` (fallback) | the value, and Soundex pairs of its words |
| fuzzy | all name fields together | ``names:token``, ``names:phonetic`` (fallback) | see below |
| any | match_any fields, the first match_all field | ``f:norm`` | a match_any (match_all) pair must always be compared |

A pair matches (or is listed for review) only when its primary fields give evidence for it
(see :mod:`.matching`). Under ``exact`` and ``case_insensitive`` a field either agrees or not,
so every pair that can match shares a primary value: blocking on the primary values loses
nothing (except in capped blocks).

Name keys join all name-kind fields of the rule (first + last), strip accents and split into
words. ``names:token`` is a whole word plus the first two letters of another word (``doe|jo``,
``john|do``); ``names:phonetic`` is the sorted pair of the words' Soundex codes
(``d000|j500``). Both ignore word order, so swapped first/last names share them; a typo in one
word keeps the token key of the other word, and most typos after a word's first letter keep its
Soundex code, so the phonetic key survives typos in both words.

Name keys are *fallback* keys: they matter for records whose email and phone both fail to
block (a missing phone and a typo in the email's local part). On the benchmark they find 1.7 %
of the true duplicates, but names repeat far more than emails or phones, so their blocks grow
with the data. They are therefore capped ten times tighter (``max_block_size // 10``) than the
strong keys: at 100 k x 100 k this still finds 80 % of what only they find (0.3 % of all true
pairs are lost) while the candidate pairs drop from 1.29 M to 0.34 M, and it is what keeps the
growth linear when the name vocabulary is small.

Only primary fields get keys of their own (plus the name keys in fuzzy mode): a pair that
shares only a company name has no primary evidence, cannot match, and would only make blocks
huge.

A block holding more records (both sides together) than its cap is not expanded: such keys
(``info`` local parts, ``smith|jo``) say little and would make the cost quadratic. Capped
blocks are reported with their size so an operator can see what was skipped; the records in
them are still compared through their other keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations, permutations
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from import_pipelines.dedupe.comparison import email_mailbox, email_parts, value_cache
from import_pipelines.dedupe.normalize import PreparedFrame, fold_accents, prepare_frame

if TYPE_CHECKING:
    from import_pipelines.dedupe.matching import DedupeRule

FALLBACK_CAP_DIVISOR = 10
"""Fallback keys (name tokens, Soundex pairs) are capped at ``max_block_size // 10``."""

_MAX_NAME_WORDS = 4
_HALF_MIN = 3  # letters of a mailbox-name half: shorter halves ("jo") would block crowds together
_WORD_SPLIT = re.compile(r"[\s\-]+")
_PUNCTUATION = re.compile(r"[^\w\s\-]")
# Soundex digit per letter; vowels and y become "0" (they separate repeated codes), h and w vanish.
_SOUNDEX_TABLE = str.maketrans("bfpvcgjkqsxzdtlmnraeiouyhw", "11112222222233455600000000", "")
_SOUNDEX_TABLE.update({ord("h"): None, ord("w"): None})


class KeyColumn(NamedTuple):
    """One key type in long form: a record position and a key value per row.

    ``fallback`` keys get the tighter cap; ``hashes`` are the values' hashes when already known.
    """

    key_type: str
    positions: np.ndarray
    values: np.ndarray
    fallback: bool = False
    hashes: np.ndarray | None = None


@dataclass(frozen=True)
class CandidatePairs:
    """Pairs of record positions to score, how many there are, and which blocks were skipped."""

    left: np.ndarray
    right: np.ndarray
    pairs_compared: int
    capped_blocks: dict[str, int] = field(default_factory=dict)


def _value_key(key_type: str, prepared: PreparedFrame, name: str, *, normalized: bool = False) -> KeyColumn:
    """The field's value itself as the key, reusing the hashes computed with the values."""
    if name in prepared.rule.all_values and not normalized:
        return KeyColumn(key_type, *_derived(prepared, name, lambda value: value))
    positions = prepared.present(name, normalized=normalized)
    return KeyColumn(key_type, positions, prepared.values(name, normalized=normalized)[positions],
                     hashes=prepared.hashes(name, normalized=normalized)[positions])


def _derived(prepared: PreparedFrame, name: str,
             transform: Callable[[str], str | None]) -> tuple[np.ndarray, np.ndarray]:
    """One key per record and value: ``transform(value)`` where the value and the result are not None.

    A multi-valued field (``rule.all_values``) gives a key for each of the record's values.
    """
    if name in prepared.rule.all_values:
        rows, keys = [], []
        for position, values in enumerate(prepared.multi(name).tolist()):
            for key in dict.fromkeys(transform(value) for value in values or ()):
                if key is not None:
                    rows.append(position)
                    keys.append(key)
        return np.array(rows, dtype=np.int64), np.array(keys + [None], dtype=object)[:-1]
    positions = prepared.present(name)
    values = prepared.values(name)[positions]
    keys = np.array([transform(value) for value in values.tolist()] + [None], dtype=object)[:-1]
    kept = np.not_equal(keys, None)
    return positions[kept], keys[kept]


def _derived_many(prepared: PreparedFrame, name: str,
                  transform: Callable[[str], list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Several keys per value: ``transform(value)`` (a list) for each of the record's values."""
    values = prepared.multi(name) if name in prepared.rule.all_values else prepared.values(name)
    rows, keys = [], []
    for position, items in enumerate(values.tolist()):
        if items is None:
            continue
        for key in dict.fromkeys(k for item in (items if isinstance(items, tuple) else (items,))
                                 for k in transform(item)):
            rows.append(position)
            keys.append(key)
    return np.array(rows, dtype=np.int64), np.array(keys + [None], dtype=object)[:-1]


def _email_local(email: str) -> str | None:
    # the mailbox name as the comparison reads it: dots, underscores, hyphens and +tags aside
    local = email_mailbox(email)
    # One or two letter local parts ("a@x.com") would block unrelated people together.
    return local if len(local) >= 3 else None


def _email_halves(email: str) -> list[str]:
    """The first and the last part of the mailbox name, each with the domain.

    One typo (a transposed, dropped or replaced letter) changes at most one of them, so two
    addresses one typo apart share a key, while a whole-address key would not.
    """
    _, _, mailbox, letters, digits = email_parts(email)
    if len(mailbox) < 2 * _HALF_MIN:
        return []
    domain = email.rpartition("@")[2]
    # the other address may be a letter longer or shorter: its halves are cut where this one's
    # would be at that length
    cuts = sorted({max(_HALF_MIN, (len(mailbox) + d) // 2 - 1) for d in (-1, 0, 1)})
    return [key for k in cuts for key in (f"<{mailbox[:k]}@{domain}", f">{mailbox[-k:]}@{domain}")]


def _last7(phone: str) -> str:
    return phone[-7:]


def _words(text: str) -> list[str]:
    """Latin, accent-free words of a normalised name, punctuation dropped (``o'brien`` -> ``obrien``).

    Other scripts are transliterated (``дмитрий`` -> ``dmitriy``), so that a name written in its
    own script and in Latin letters shares the phonetic key.
    """
    text = fold_accents(text)
    if not text.isascii():
        from anyascii import anyascii

        text = anyascii(text).lower()
    if not text.replace(" ", "").isalpha():
        text = _PUNCTUATION.sub("", text)
        return [word for word in _WORD_SPLIT.split(text) if word][:_MAX_NAME_WORDS]
    return text.split()[:_MAX_NAME_WORDS]


@value_cache()
def soundex(word: str) -> str:
    """American Soundex of an ASCII lower-case word (``robert`` and ``rupert`` -> ``r163``).

    Vowels and h/w/y drop out and similar consonants share a digit, so most single typos after
    the first letter keep the code. Cached: names repeat, so most words are coded once.
    """
    digits = word.translate(_SOUNDEX_TABLE)
    code = [d for k, d in enumerate(digits) if k == 0 or d != digits[k - 1]]
    if word[0] not in "hw":
        # The first letter is written as itself, not as its digit.
        code = code[1:]
    return (word[0] + "".join(code).replace("0", "") + "000")[:4]


def _text_word_keys(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``token`` and ``phonetic`` keys of one text."""
    words = [word for word in _words(text) if len(word) >= 2]
    if len(words) == 2:
        # The common case (first + last name), spelled out: most names take this path.
        a, b = words
        sa, sb = soundex(a), soundex(b)
        return ((f"{a}|{b[:2]}",) if a == b else (f"{a}|{b[:2]}", f"{b}|{a[:2]}"),
                (f"{sa}|{sb}" if sa <= sb else f"{sb}|{sa}",))
    if len(words) == 1:
        return (words[0] + "|",), ()
    if words:
        # Sets, because "Lee Lee" must count once per block.
        tokens = {f"{word}|{other[:2]}" for word, other in permutations(words, 2)}
        codes = sorted(soundex(word) for word in words)
        return tuple(tokens), tuple({f"{a}|{b}" for a, b in combinations(codes, 2)})
    return (), ()


def _spread(codes: np.ndarray, per_text: list[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Keys per record from keys per distinct text: positions ascending, each record's keys in order."""
    lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
    flat = np.array([key for keys in per_text for key in keys] + [None], dtype=object)[:-1]
    present = np.flatnonzero(codes >= 0)
    counts = lengths[codes[present]]
    ends = np.cumsum(counts)
    # each record's slice of ``flat``: its text's first key, plus the key's rank within the record
    rank = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts, counts)
    first = np.cumsum(lengths) - lengths
    return np.repeat(present, counts).astype(np.int64), flat[np.repeat(first[codes[present]], counts) + rank]


def _word_keys(texts: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``token`` and ``phonetic`` keys of free text (names): see the module docstring.

    Names repeat, so the keys are worked out once per distinct text (a loop over texts, each
    with a handful of words at most) and spread to its records.
    """
    codes, uniques = pd.factorize(texts)
    per_text = [_text_word_keys(text) for text in uniques.tolist()]
    return _spread(codes, [keys[0] for keys in per_text]), _spread(codes, [keys[1] for keys in per_text])


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """Space-joined values of several fields per record (missing parts skipped)."""
    joined = [" ".join(part for part in parts if part) or None for parts in zip(*(a.tolist() for a in arrays))]
    return np.array(joined + [None], dtype=object)[:-1]


def keyed_fields(rule: DedupeRule) -> list[str]:
    """The compared fields that get blocking keys of their own: the primary ones.

    A pair matches only with evidence from its primary fields, so a pair that shares no primary
    value (nor, under ``fuzzy``, a name key) cannot match.
    """
    return rule.primary_fields


def record_keys(prepared: PreparedFrame, rule: DedupeRule) -> list[KeyColumn]:
    """All blocking keys of a prepared frame, one long-form column per key type."""
    keys: list[KeyColumn] = []
    for name in keyed_fields(rule):
        kind = rule.kind_of(name)
        if rule.strategy == "exact":
            keys.append(_value_key(f"{name}:exact", prepared, name))
        elif rule.strategy == "case_insensitive" or kind == "name":
            keys.append(_value_key(f"{name}:norm", prepared, name))
        elif kind == "email":
            keys.append(_value_key(f"{name}:norm", prepared, name))
            keys.append(KeyColumn(f"{name}:local", *_derived(prepared, name, _email_local)))
            keys.append(KeyColumn(f"{name}:half", *_derived_many(prepared, name, _email_halves)))
        elif kind == "phone":
            keys.append(KeyColumn(f"{name}:last7", *_derived(prepared, name, _last7)))
        else:
            keys.append(_value_key(f"{name}:norm", prepared, name))
            _, phonetic = _word_keys(prepared.values(name))
            keys.append(KeyColumn(f"{name}:phonetic", *phonetic, fallback=True))
    if rule.strategy == "fuzzy":
        name_fields = [name for name in rule.compared_fields if rule.kind_of(name) == "name"]
        if name_fields:
            token, phonetic = _word_keys(_joined([prepared.values(name) for name in name_fields]))
            keys.append(KeyColumn("names:token", *token, fallback=True))
            keys.append(KeyColumn("names:phonetic", *phonetic, fallback=True))
    seen = {key.key_type for key in keys}
    # a match_all pair agrees on every listed field, so on the first: its key brings them together
    for name in dict.fromkeys(rule.match_any + rule.match_all[:1]):
        if f"{name}:norm" not in seen or rule.strategy == "exact":
            keys.append(_value_key(f"{name}:norm", prepared, name, normalized=True))
            seen.add(f"{name}:norm")
    return keys


def fallback_cap(max_block_size: int) -> int:
    """The block cap of fallback keys: a tenth of ``max_block_size``, never below a pair."""
    return max(2, max_block_size // FALLBACK_CAP_DIVISOR)


def key_hashes(key: KeyColumn) -> np.ndarray:
    """The block identity of each key in ``key``: the value's 64-bit hash salted by the key type.

    Python's string hash is salted per process, so hashes only compare within one process; that
    is all blocking needs, in memory or in a temporary table of the same session.
    """
    hashes = key.hashes if key.hashes is not None else np.fromiter(
        map(hash, key.values.tolist()), dtype=np.int64, count=len(key.values))
    return hashes ^ np.int64(hash(key.key_type))


def hashed_keys(prepared: PreparedFrame, rule: DedupeRule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every blocking key of ``prepared`` in long form: record positions, key hashes, fallback flags.

    The same keys and hashes as the in-memory pair generation, for callers that count blocks
    elsewhere (the staging path counts them in SQL, a chunk of records at a time).
    """
    keys = record_keys(prepared, rule)
    empty = np.empty(0, np.int64)
    return (np.concatenate([key.positions for key in keys] + [empty]),
            np.concatenate([key_hashes(key) for key in keys] + [empty]),
            np.concatenate([np.full(len(key.positions), key.fallback, dtype=bool) for key in keys]
                           + [np.empty(0, dtype=bool)]))


def _keys_frame(prepared: PreparedFrame, rule: DedupeRule) -> pd.DataFrame:
    parts = [pd.DataFrame({"record_id": prepared.ids[key.positions],
                           "key": [f"{key.key_type}={value}" for value in key.values.tolist()]})
             for key in record_keys(prepared, rule)]
    if not parts:
        return pd.DataFrame({"record_id": pd.Series(dtype=object), "key": pd.Series(dtype=object)})
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


def blocking_keys(df: pd.DataFrame, rule: DedupeRule, *, id_column: str | None = None) -> pd.DataFrame:
    """Blocking keys of incoming records: a frame of ``record_id``, ``key`` (text).

    The loader fetches candidate target rows whose keys are ``= ANY`` of these. ``id_column``
    None takes ids from the index.
    """
    return _keys_frame(prepare_frame(df, rule, id_column=id_column, side="incoming"), rule)


def target_blocking_keys(existing_df: pd.DataFrame, rule: DedupeRule, *, id_column: str | None = None) -> pd.DataFrame:
    """Blocking keys of existing target rows, computed exactly as :func:`blocking_keys` does.

    Use it to build or refresh a key index of the target table (``record_id``, ``key``), so the
    SQL side of the lookup sees the same keys the incoming side asks for.
    """
    return _keys_frame(prepare_frame(existing_df, rule, id_column=id_column, side="existing"), rule)


@dataclass(frozen=True)
class _CodedKeys:
    """Blocking keys of all sides as dense integer codes shared across sides, with their caps."""

    positions: list[np.ndarray]
    codes: list[np.ndarray]
    caps: np.ndarray
    type_names: list[str]
    types: np.ndarray
    values: np.ndarray
    first: np.ndarray

    @property
    def n_codes(self) -> int:
        """Number of distinct keys."""
        return len(self.caps)

    def describe(self, codes: np.ndarray, sizes: np.ndarray) -> dict[str, int]:
        """``{"type=value": size}`` for the given block codes."""
        rows = self.first[codes]
        return {f"{self.type_names[t]}={v}": int(size)
                for t, v, size in zip(self.types[rows].tolist(), self.values[rows].tolist(), sizes.tolist())}


def _coded(sides: list[PreparedFrame], rule: DedupeRule, *, max_block_size: int) -> _CodedKeys:
    """Give every distinct key one integer code, the same on all sides, and its block cap.

    Keys are hashed with Python's (cached) string hash salted by key type, and the 64-bit
    hashes are factorised: several times faster than factorising the strings. A collision can
    only add a candidate pair, which scoring then judges on the real values; it never creates
    a match.
    """
    per_side = [record_keys(prepared, rule) for prepared in sides]
    type_names = [key.key_type for key in per_side[0]]
    fallback = np.array([key.fallback for key in per_side[0]] + [False], dtype=bool)
    positions, hashes, types, values = [], [], [], []
    empty_int, empty_obj = np.empty(0, np.int64), np.empty(0, dtype=object)
    for keys in per_side:
        positions.append(np.concatenate([key.positions for key in keys] + [empty_int]))
        hashes.append(np.concatenate([key_hashes(key) for key in keys] + [empty_int]))
        types.append(np.concatenate([np.full(len(key.values), t, dtype=np.int64) for t, key in enumerate(keys)]
                                    + [empty_int]))
        values.append(np.concatenate([key.values for key in keys] + [empty_obj]))
    codes, uniques = pd.factorize(np.concatenate(hashes))
    codes = codes.astype(np.int64)
    all_types = np.concatenate(types)
    # Where each code first occurs: its key type (for the cap) and a value to report.
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    caps = np.where(fallback[all_types[first]], fallback_cap(max_block_size), max_block_size)
    bounds = np.cumsum([len(h) for h in hashes])[:-1]
    return _CodedKeys(positions=positions, codes=np.split(codes, bounds), caps=caps, type_names=type_names,
                      types=all_types, values=np.concatenate(values), first=first)


def candidate_pairs_between(left: PreparedFrame, right: PreparedFrame, rule: DedupeRule, *,
                            max_block_size: int) -> CandidatePairs:
    """Distinct (left, right) position pairs that share at least one uncapped blocking key."""
    keys = _coded([left, right], rule, max_block_size=max_block_size)
    (lp, rp), (lc, rc) = keys.positions, keys.codes
    count_l = np.bincount(lc, minlength=keys.n_codes)
    count_r = np.bincount(rc, minlength=keys.n_codes)
    both = (count_l > 0) & (count_r > 0)
    capped = both & (count_l + count_r > keys.caps)
    useful = both & ~capped
    keep_l, keep_r = useful[lc], useful[rc]
    merged = pd.DataFrame({"c": lc[keep_l], "i": lp[keep_l]}).merge(
        pd.DataFrame({"c": rc[keep_r], "j": rp[keep_r]}), on="c", how="inner", sort=False)
    width = max(right.size, 1)
    pair = pd.unique(merged["i"].to_numpy(np.int64) * width + merged["j"].to_numpy(np.int64))
    capped_codes = np.flatnonzero(capped)
    return CandidatePairs(left=pair // width, right=pair % width, pairs_compared=len(pair),
                          capped_blocks=keys.describe(capped_codes, (count_l + count_r)[capped_codes]))


def candidate_pairs_within(prepared: PreparedFrame, rule: DedupeRule, *, max_block_size: int) -> CandidatePairs:
    """Distinct position pairs ``(a, b)``, ``a < b``, within one frame sharing an uncapped key."""
    keys = _coded([prepared], rule, max_block_size=max_block_size)
    positions, codes = keys.positions[0], keys.codes[0]
    counts = np.bincount(codes, minlength=keys.n_codes)
    capped = counts > keys.caps
    useful = (counts >= 2) & ~capped
    keep = useful[codes]
    block = pd.DataFrame({"c": codes[keep], "i": positions[keep]})
    merged = block.merge(block.rename(columns={"i": "j"}), on="c", how="inner", sort=False)
    a = merged["i"].to_numpy(np.int64)
    b = merged["j"].to_numpy(np.int64)
    upper = a < b
    width = max(prepared.size, 1)
    pair = pd.unique(a[upper] * width + b[upper])
    capped_codes = np.flatnonzero(capped)
    return CandidatePairs(left=pair // width, right=pair % width, pairs_compared=len(pair),
                          capped_blocks=keys.describe(capped_codes, counts[capped_codes]))
