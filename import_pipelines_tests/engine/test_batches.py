"""How the load splits staging rows into batches for its sessions."""

from __future__ import annotations

import pytest

from import_pipelines.engine.load import MIN_GUIDED_BATCH, batch_ranges


@pytest.mark.parametrize("rows", [0, 1, 100, 21_597, 258_733, 480_966, 2_000_000])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_cover_every_row_once_and_shrink_towards_the_end(rows: int, workers: int) -> None:
    ranges = batch_ranges(rows, batch_rows=250_000, workers=workers)
    assert [lo for lo, _ in ranges] == ([0] + [hi for _, hi in ranges[:-1]] if rows else [])
    assert (ranges[-1][1] if ranges else 0) == rows
    sizes = [hi - lo for lo, hi in ranges]
    assert all(0 < size <= 250_000 for size in sizes)
    assert sizes == sorted(sizes, reverse=True) or sizes[-1] >= MIN_GUIDED_BATCH
    # with several sessions, the last batch (which one of them may merge alone) is small next to the whole
    if workers > 1 and rows > 20 * MIN_GUIDED_BATCH:
        assert sizes[-1] <= max(MIN_GUIDED_BATCH, rows // 16)


def test_small_batch_sizes_are_kept() -> None:
    assert batch_ranges(100, batch_rows=30, workers=2) == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert batch_ranges(480_966, batch_rows=250_000, workers=2) == [
        (0, 240_483), (240_483, 360_725), (360_725, 420_846), (420_846, 450_906), (450_906, 465_936), (465_936, 480_966)]
