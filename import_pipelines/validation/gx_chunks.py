"""Great-expectations 1.x expectations over the staging table, in chunks of rows.

Only expectations without a built-in SQL form come here. The staged rows are read by ranges of
``_rn`` into one pandas DataFrame per chunk (never the whole table), each chunk validated by an
ephemeral context's pandas batch with ``COMPLETE`` results keyed by ``_rn``; the failing rows'
messages go to a temporary table by COPY, chunk by chunk, so memory stays flat in the row count.

Only expectations that judge rows one by one (column map expectations and their pair and
multi-column kinds) can be chunked: one that judges a whole column (a mean, a row count) or
compares rows with each other (uniqueness, use the built-in ``unique``) is refused, as is
``mostly`` (a row either passes or fails and is not loaded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident, ident_list
from import_pipelines.templates.model import Expectation

CHUNK_ROWS = 50_000
# row-level in GX, but judged against every other row: chunks would miss repeats across them
_ACROSS_ROWS = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
                "expect_multicolumn_values_to_be_unique"}


class ExpectationConfigError(ValueError):
    """A great-expectations expectation the validate step cannot run: ``where`` is its YAML path."""

    def __init__(self, where: str, rule: str):
        self.where = where
        super().__init__(f"{where}: {rule}")


@dataclass
class GxOutcome:
    """Failing rows per expectation position."""

    failed: dict[int, int]
    seconds: float


def build_expectations(items: Sequence[tuple[int, Expectation]], *, where: str) -> list[tuple[int, Any]]:
    """The great-expectations objects for ``(position, expectation)`` pairs; refuses what cannot run in chunks."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import get_expectation_impl

    built = []
    for position, expectation in items:
        path = f"{where}[{position}]"
        try:
            cls = get_expectation_impl(expectation.expect)
        except Exception:  # noqa: BLE001 - GX raises its own ExpectationNotFoundError
            raise ExpectationConfigError(f"{path}.expect", f"great-expectations has no expectation"
                                                           f" {expectation.expect!r}") from None
        if not issubclass(cls, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)) \
                or expectation.expect in _ACROSS_ROWS:
            raise ExpectationConfigError(f"{path}.expect", f"{expectation.expect} judges a column or compares rows"
                                         " with each other, not each row on its own; rows are validated in chunks"
                                         " (use the built-in unique for uniqueness within the batch)")
        if "mostly" in expectation.kwargs:
            raise ExpectationConfigError(f"{path}.kwargs.mostly", "every row must pass: a failing row is not loaded,"
                                                                  " so mostly does not apply")
        try:
            # meta carries the position back on each result (an unsaved suite's expectations have no ids)
            built.append((position, cls(**expectation.kwargs, meta={"position": position})))
        except Exception as error:  # noqa: BLE001 - pydantic v1 ValidationError inside GX
            rule = " ".join(str(error).split())
            raise ExpectationConfigError(f"{path}.kwargs", f"{expectation.expect}: {rule}") from None
    return built


def validate_in_chunks(conn: psycopg.Connection, *, staging: sql.Identifier, rows: int,
                       items: Sequence[tuple[int, Expectation]], where: str, messages: sql.Identifier,
                       chunk_rows: int = CHUNK_ROWS, log: Callable[[str], None] = print) -> GxOutcome:
    """Validate staged rows ``1..rows`` by great-expectations, ``chunk_rows`` at a time.

    Each failing row's message (field, expectation, value) is copied into the temporary table
    ``messages`` (``rn bigint, msg text``); returns the failing rows per expectation position.
    """
    import time

    started = time.perf_counter()
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig

    built = build_expectations(items, where=where)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batches = (context.data_sources.add_pandas("staging").add_dataframe_asset("staged_rows")
               .add_batch_definition_whole_dataframe("chunk"))
    suite = gx.ExpectationSuite(name="validate")
    for _, gx_expectation in built:
        suite.add_expectation(gx_expectation)
    by_position = dict(items)
    columns = list(dict.fromkeys(c for _, e in items for c in e.columns))
    select = sql.SQL("SELECT _rn, {} FROM {} WHERE _rn > %s AND _rn <= %s").format(ident_list(columns), staging)
    failed = {position: 0 for position, _ in items}
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["_rn"]}
    for lo in range(0, rows, chunk_rows):
        frame = pd.DataFrame(conn.execute(select, (lo, lo + chunk_rows)).fetchall(), columns=["_rn", *columns])
        if frame.empty:
            continue
        result = batches.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=result_format)
        out: list[tuple[int, str]] = []
        for check in result.results:
            position = int(check.expectation_config.meta["position"])
            expectation = by_position[position]
            if check.exception_info and check.exception_info.get("raised_exception"):
                raise ExpectationConfigError(f"{where}[{position}]", f"{expectation.expect} raised:"
                                             f" {check.exception_info.get('exception_message')}")
            unexpected = check.result.get("unexpected_index_list") or []
            failed[position] += len(unexpected)
            named = ", ".join(expectation.columns)
            for item in unexpected:
                value = ", ".join(_shown(item.get(c)) for c in expectation.columns if c in item)
                out.append((int(item["_rn"]), f"{named}: failed expectation {expectation.expect}"
                                              f" (validate[{position}]): {value}"))
        if out:
            with conn.cursor().copy(sql.SQL("COPY {} (rn, msg) FROM STDIN").format(messages)) as copy:
                for row in out:
                    copy.write_row(row)
        log(f"great-expectations: rows {lo + 1:,}-{min(rows, lo + chunk_rows):,} validated")
    return GxOutcome(failed=failed, seconds=time.perf_counter() - started)


def _shown(value: object) -> str:
    from import_pipelines.db.sql import SHOWN_CHARS

    text = "NULL" if value is None else str(value)
    return repr(text[:SHOWN_CHARS] + ("…" if len(text) > SHOWN_CHARS else ""))
