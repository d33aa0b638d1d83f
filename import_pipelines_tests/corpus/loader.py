"""The bad-input corpus: cases on disk, each with its inputs and its expected outcome.

A case is either an entry of a ``cases/*.yaml`` file (``cases: [{id, kind, ..., expect}]``) or a
folder ``cases/<id>/`` with a ``case.yaml`` beside its input files (a CSV, a workbook, a JSON
document). ``kind`` picks the runner that feeds the inputs to the project and checks ``expect``;
each runner lives in ``runners/`` and registers itself with :func:`runner`, so a new kind of
input (files, sheets, API pages) adds a module there and its cases, and nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Case:
    """One corpus case: its inputs (``spec``), its expected outcome and the folder its files are in."""

    id: str
    kind: str
    spec: dict[str, Any]
    expect: dict[str, Any]
    folder: Path
    source: str  # the file the case was read from, for messages


@dataclass
class Context:
    """What a runner gets from the test: a database server, fresh databases, a scratch folder."""

    pg_server: str
    new_database: Callable[[str], str]
    tmp_path: Path
    extra: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[Case, Context], None]
RUNNERS: dict[str, Runner] = {}


def runner(kind: str) -> Callable[[Runner], Runner]:
    """Register the function that runs cases of ``kind``."""
    def register(function: Runner) -> Runner:
        if kind in RUNNERS:
            raise ValueError(f"two runners for corpus kind {kind!r}")
        RUNNERS[kind] = function
        return function
    return register


def load_runners() -> dict[str, Runner]:
    """Import every module of ``runners/`` (each registers its kinds) and return the registry."""
    from import_pipelines_tests.corpus import runners

    for module in pkgutil.iter_modules(runners.__path__):
        importlib.import_module(f"{runners.__name__}.{module.name}")
    return RUNNERS


def load_cases(folder: Path = CASES_DIR) -> list[Case]:
    """Every case under ``folder``: entries of ``*.yaml`` files, then ``*/case.yaml`` folders."""
    cases: list[Case] = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("cases", []):
            cases.append(_case(dict(entry), folder=folder, source=path.name))
    for path in sorted(folder.glob("*/case.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entry.setdefault("id", path.parent.name)
        cases.append(_case(dict(entry), folder=path.parent, source=f"{path.parent.name}/case.yaml"))
    return cases


def _case(entry: dict[str, Any], *, folder: Path, source: str) -> Case:
    missing = [key for key in ("id", "kind", "expect") if key not in entry]
    if missing:
        raise ValueError(f"{source}: a corpus case lacks {', '.join(missing)}: {entry}")
    return Case(id=str(entry.pop("id")), kind=str(entry.pop("kind")), expect=entry.pop("expect"), spec=entry,
                folder=folder, source=source)
