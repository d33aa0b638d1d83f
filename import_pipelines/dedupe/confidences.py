"""The confidences of the duplicates a run found, summed up: a count, a mean and a histogram.

A run's metadata shows the mean confidence and a histogram in 5-point buckets. Both come from
this summary, which the streaming dedupe path counts in SQL: its size does not grow with the
duplicates found, as a list of one value per duplicate would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

BUCKET = 5
"""Width of a histogram bucket, in confidence points; 95-100 is the last one and holds 100."""
LAST_BUCKET = 100 - BUCKET


@dataclass(frozen=True)
class Confidences:
    """How many duplicates were found, the sum of their confidences, and how many fall in each bucket.

    ``buckets`` holds ``(lowest confidence of the bucket, duplicates in it)`` for the buckets
    that hold any, lowest first.
    """

    count: int = 0
    total: float = 0.0
    buckets: tuple[tuple[int, int], ...] = ()

    @classmethod
    def certain(cls, count: int) -> Confidences:
        """``count`` duplicates of confidence 100 (a repeated source id)."""
        return cls(count=count, total=100.0 * count, buckets=((LAST_BUCKET, count),) if count else ())

    def __add__(self, other: Confidences) -> Confidences:
        together = Counter(dict(self.buckets))
        together.update(dict(other.buckets))
        return Confidences(count=self.count + other.count, total=self.total + other.total,
                           buckets=tuple(sorted(together.items())))

    def __bool__(self) -> bool:
        return self.count > 0

    @property
    def mean(self) -> float | None:
        """The mean confidence (0-100), or None when nothing was found."""
        return self.total / self.count if self.count else None
