"""The shipped customer rule on the two labelled sets: precise, and finding what a person would.

The evaluation set is the one the weights were chosen on; the held-out set comes from another
generator and was not used to choose them. Both must keep precision at 0.995 or more and
recall of the decidable duplicates at 0.90 or more, against the target and within the batch.
"""

from __future__ import annotations

import pandas as pd
import pytest

from import_pipelines.templates.loader import load_template
from import_pipelines_tests.dedupe import evaluation_set, holdout_set
from import_pipelines_tests.dedupe.evaluation_set import EvaluationSet
from import_pipelines_tests.dedupe.quality import against_target, builtin_quality, within_batch

RULE = load_template("freescout").entities["customer_users"].dedupe


@pytest.mark.parametrize("generator", [evaluation_set, holdout_set], ids=["evaluation_set", "holdout_set"])
def test_the_shipped_rule_is_precise_and_finds_what_a_person_would(generator) -> None:
    data = generator.generate()
    assert len(data.existing) + len(data.incoming) >= 5000
    for task, quality in builtin_quality(data, RULE).items():
        assert quality.decidable >= 100, task
        assert quality.precision >= 0.995, (task, quality)
        assert quality.recall >= 0.90, (task, quality)


@pytest.mark.parametrize("generator", [evaluation_set, holdout_set], ids=["evaluation_set", "holdout_set"])
def test_the_sets_hold_every_kind_of_record_and_are_reproducible(generator) -> None:
    data = generator.generate(seed=5, existing=600, incoming=400)
    kinds = data.incoming["kind"].value_counts()
    assert set(kinds.index) == {"duplicate", "batch_duplicate", "lookalike", "new"}
    # not every duplicate can be decided from the data, and no look-alike or new record is one
    decidable = data.incoming.groupby("kind")["decidable"].mean()
    assert 0.5 < decidable["duplicate"] < 1 and decidable["lookalike"] == decidable["new"] == 0
    again = generator.generate(seed=5, existing=600, incoming=400)
    pd.testing.assert_frame_equal(data.incoming, again.incoming)
    pd.testing.assert_frame_equal(data.existing, again.existing)
    assert not generator.generate(seed=6, existing=600, incoming=400).incoming["email"].equals(data.incoming["email"])


def test_the_figures_count_false_matches_and_missed_duplicates() -> None:
    existing = pd.DataFrame({"id": [1, 2], "entity": [10, 20]})
    incoming = pd.DataFrame({
        "id": [101, 102, 103, 104, 105, 106],
        "entity": [10, 20, 30, 40, 40, 50],
        "kind": ["duplicate", "duplicate", "lookalike", "new", "batch_duplicate", "new"],
        "decidable": [True, True, False, False, True, False],
    })
    data = EvaluationSet(existing=existing, incoming=incoming)
    # 101 found, 102 missed, 103 matched to somebody else
    found = against_target(data, [(101, 1), (103, 2)])
    assert (found.precision, found.recall, found.false, found.decidable) == (0.5, 0.5, 1, 2)
    # 105 joined its clean record 104; 106 wrongly joined them too
    inside = within_batch(data, [(105, 104), (106, 104)])
    assert (inside.precision, inside.recall, inside.false, inside.decidable) == (0.5, 1.0, 1, 1)
    assert within_batch(data, []).recall == 0.0 and against_target(data, []).precision == 1.0
