"""The bad-input corpus, run by one parametrised test: every case ends in its expected outcome.

An expected error names the file, row or YAML path and the rule; an expected import states what
was created and failed and what the target holds. A case that crashes without such a message,
loses a row or half-writes the target fails here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from import_pipelines_tests.corpus.loader import Case, Context, load_cases, load_runners

CASES = load_cases()
RUNNERS = load_runners()


def test_the_corpus_is_well_formed() -> None:
    ids = Counter(case.id for case in CASES)
    assert not [i for i, n in ids.items() if n > 1], "corpus case ids must be unique"
    assert {case.kind for case in CASES} <= set(RUNNERS), "every kind needs a runner in corpus/runners/"
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_corpus_case(case: Case, pg_server: str, new_database: Callable[[str], str], tmp_path: Path) -> None:
    RUNNERS[case.kind](case, Context(pg_server=pg_server, new_database=new_database, tmp_path=tmp_path))
