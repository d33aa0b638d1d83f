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


def record_frequency_keys(prepared: PreparedFrame, rule: DedupeRule) -> tuple[np.ndarray, np.ndarray]:
    """Every counting key of every record of ``prepared`` (positions, keys); a record counts a value once."""
    positions: list[int] = []
    keys: list[np.ndarray] = []
    for name in rule.compared_fields:
        kind = rule.kind_of(name)
        values = prepared.multi(name) if name in rule.all_values else prepared.values(name)
        for namespace, form in tf_namespaces(kind, name).items():
            flat: list[str] = []
            for position, item in enumerate(values.tolist()):
                if item is None:
                    continue
                for value in {form(v) for v in (item if isinstance(item, tuple) else (item,))}:
                    if value:
                        positions.append(position)
                        flat.append(value)
            if flat:
                keys.append(value_hashes(namespace, flat))
    names = [name for name in rule.compared_fields if rule.kind_of(name) == "name"]
    if len(names) == 2:
        both = [(k, full_name(f, l)) for k, (f, l) in enumerate(zip(prepared.values(names[0]).tolist(),
                                                                    prepared.values(names[1]).tolist()))
                if f is not None and l is not None]
        if both:
            positions.extend(k for k, _ in both)
            keys.append(value_hashes("names:full", [form for _, form in both]))
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.array(positions, dtype=np.int64), np.concatenate(keys)


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
