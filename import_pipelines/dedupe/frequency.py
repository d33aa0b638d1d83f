"""Term frequencies: how many records of the population hold a value.

Agreement on a rare value is stronger evidence than agreement on a common one (see
:mod:`.comparison`), so scoring needs, for each value it meets, the number of records holding
it. Values are counted by a 64-bit key: the value's hash salted by a *namespace* (the field and
the form counted, e.g. ``email:mailbox``), as the blocking keys are. A record counts a value once,
however many of its addresses share it.

:class:`Frequencies` holds the counts in memory for the in-memory engine; the staging path keeps
them in a temporary table and asks for the ones a chunk of pairs needs
(:class:`~.staging.SessionFrequencies`), so both read the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from import_pipelines.dedupe.comparison import full_name, tf_namespaces

if TYPE_CHECKING:
    from import_pipelines.dedupe.matching import DedupeRule
    from import_pipelines.dedupe.normalize import PreparedFrame


def namespace_hash(namespace: str) -> np.int64:
    """The salt of a namespace (Python's string hash: stable within one process)."""
    return np.int64(hash(namespace))


def value_hashes(namespace: str, values: np.ndarray | list[str]) -> np.ndarray:
    """The counting keys of ``values`` (strings) in ``namespace``."""
    hashes = np.fromiter(map(hash, list(values)), dtype=np.int64, count=len(values))
    return hashes ^ namespace_hash(namespace)


def _present(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(record position, value) of every present value of a single-valued field."""
    present = np.flatnonzero(np.not_equal(values, None))
    return present.astype(np.int64), values[present]


def _flat_tuples(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(record position, value) of every value of a multi-valued field, one row per value."""
    positions, flat = [], []
    for position, item in enumerate(values.tolist()):
        for value in item or ():
            positions.append(position)
            flat.append(value)
    return np.array(positions, dtype=np.int64), np.array(flat + [None], dtype=object)[:-1]


def _counted(namespace: str, positions: np.ndarray, values: np.ndarray,
             form) -> tuple[np.ndarray, np.ndarray]:
    """The counting keys of ``form(value)`` per record, each distinct value worked out once."""
    codes, uniques = pd.factorize(values)
    forms = [form(v) for v in uniques.tolist()]
    hashes = value_hashes(namespace, [f or "" for f in forms])
    keep = np.array([bool(f) for f in forms] + [False], dtype=bool)[:-1][codes]
    positions, keys = positions[keep], hashes[codes[keep]]
    if len(keys) and len(np.unique(positions)) < len(positions):
        # a record counts a value once, however many of its addresses share it
        pairs = np.unique(np.stack([positions, keys], axis=1), axis=0)
        positions, keys = pairs[:, 0], pairs[:, 1]
    return positions, keys


def record_frequency_keys(prepared: PreparedFrame, rule: DedupeRule) -> tuple[np.ndarray, np.ndarray]:
    """Every counting key of every record of ``prepared`` (positions, keys); a record counts a value once."""
    positions: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for name in rule.compared_fields:
        kind = rule.kind_of(name)
        at, values = (_flat_tuples(prepared.multi(name)) if name in rule.all_values
                      else _present(prepared.values(name)))
        if not len(values):
            continue
        for namespace, form in tf_namespaces(kind, name).items():
            found = _counted(namespace, at, values, form)
            positions.append(found[0])
            keys.append(found[1])
    names = [name for name in rule.compared_fields if rule.kind_of(name) == "name"]
    if len(names) == 2:
        first, last = prepared.values(names[0]), prepared.values(names[1])
        both = np.flatnonzero(np.not_equal(first, None) & np.not_equal(last, None))
        if len(both):
            forms = [full_name(f, l) for f, l in zip(first[both].tolist(), last[both].tolist())]
            positions.append(both.astype(np.int64))
            keys.append(value_hashes("names:full", forms))
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(positions).astype(np.int64), np.concatenate(keys)


class Frequencies:
    """Counts of values in a population of ``population`` records, by counting key."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray, *, population: int) -> None:
        self._index = pd.Index(keys)
        self._counts = np.asarray(counts, dtype=np.int64)
        self.population = population

    @classmethod
    def of(cls, sides: list[PreparedFrame], rule: DedupeRule) -> Frequencies:
        """The frequencies of the records of all ``sides`` together."""
        keys = np.concatenate([record_frequency_keys(side, rule)[1] for side in sides] + [np.empty(0, np.int64)])
        unique, counts = np.unique(keys, return_counts=True)
        return cls(unique, counts, population=sum(side.size for side in sides))

    def counts(self, namespace: str, values: np.ndarray) -> np.ndarray:
        """How many records hold each of ``values`` (at least 1: the record that holds it)."""
        if len(values) == 0:
            return np.empty(0, dtype=np.int64)
        found = self._index.get_indexer(value_hashes(namespace, values.tolist()))
        return np.where(found >= 0, self._counts[np.maximum(found, 0)], 1)
