"""The field-mapping corpus (``corpus/``): header sets of real exports with the expected mapping."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import yaml

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Case:
    """One export: its headers, sample rows, declared types and accepted answers per column."""

    name: str
    split: str
    headers: list[str]
    rows: list[list[str]]
    types: dict[str, str]
    accepted: list[frozenset[str | None]]


def load_cases(split: str) -> list[Case]:
    """The cases of one split (``tuning`` or ``holdout``), sorted by file name."""
    cases: list[Case] = []
    for path in sorted((CORPUS / split).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        table = list(csv.reader(io.StringIO(data["csv"])))
        headers, rows = table[0], table[1:]
        expect = data["expect"]
        if list(expect) != headers:
            raise ValueError(f"{path}: expect keys differ from the CSV header")
        accepted = [frozenset(value if isinstance(value, list) else [value]) for value in expect.values()]
        cases.append(Case(name=path.stem, split=split, headers=headers, rows=rows, types=data.get("types") or {},
                          accepted=accepted))
    return cases


def wide_header_set(count: int, *, rows: int = 50) -> tuple[list[str], list[list[str]]]:
    """``count`` corpus headers of both splits as one wide file (a repeated name numbered), with
    ``rows`` sample rows made of each column's own corpus values."""
    headers: list[str] = []
    columns: list[list[str]] = []
    for case in load_cases("tuning") + load_cases("holdout"):
        for index, header in enumerate(case.headers):
            headers.append(header if header not in headers else f"{header} {len(headers)}")
            columns.append([row[index] for row in case.rows])
    headers, columns = headers[:count], columns[:count]
    return headers, [[column[k % len(column)] for column in columns] for k in range(rows)]
