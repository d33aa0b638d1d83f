"""Precision and recall of a duplicate matcher on a labelled evaluation set.

Two tasks, counted apart:

- **against the target**: each incoming record matched to an existing one is a true positive
  when both are the same person, a false one otherwise. Recall is over the incoming copies of
  existing customers that a person could decide (``decidable``): the share matched to their
  own existing record.
- **within the batch**: each record marked a duplicate of its cluster's survivor is a true
  positive when both are the same person. Recall is over the decidable copies of new
  customers: the share that ends up in one cluster with the customer's clean record.

Any matcher that yields matches as ``(incoming id, existing id)`` and duplicates as
``(record id, survivor id)`` is measured the same way (the built-in one and Splink).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass

from import_pipelines_tests.dedupe.evaluation_set import EvaluationSet


@dataclass(frozen=True)
class Quality:
    """One task's figures: precision over everything found, recall over the decidable duplicates."""

    precision: float
    recall: float
    found: int
    false: int
    decidable: int

    def as_dict(self) -> dict[str, float | int]:
        """The figures, rounded for a report."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _precision(true: int, found: int) -> float:
    return true / found if found else 1.0


def against_target(evaluation: EvaluationSet, matches: Iterable[tuple[Hashable, Hashable]]) -> Quality:
    """Figures of ``matches``, ``(incoming id, existing id)`` pairs (at most one per incoming record)."""
    incoming, existing = evaluation.incoming, evaluation.existing
    person = dict(zip(incoming["id"], incoming["entity"]))
    known = dict(zip(existing["id"], existing["entity"]))
    pairs = list(matches)
    right = {record for record, target in pairs if person[record] == known[target]}
    wanted = incoming.loc[(incoming["kind"] == "duplicate") & incoming["decidable"].astype(bool), "id"].tolist()
    return Quality(precision=_precision(len(right), len(pairs)),
                   recall=sum(record in right for record in wanted) / len(wanted) if wanted else 1.0,
                   found=len(pairs), false=len(pairs) - len(right), decidable=len(wanted))


def within_batch(evaluation: EvaluationSet, duplicates: Iterable[tuple[Hashable, Hashable]]) -> Quality:
    """Figures of ``duplicates``, ``(record id, survivor id)`` pairs of incoming records."""
    incoming = evaluation.incoming
    person = dict(zip(incoming["id"], incoming["entity"]))
    pairs = list(duplicates)
    survivor = {record: kept for record, kept in pairs}
    right = sum(person[record] == person[kept] for record, kept in pairs)
    clean = dict(zip(incoming.loc[incoming["kind"] == "new", "entity"], incoming.loc[incoming["kind"] == "new", "id"]))
    copies = incoming[(incoming["kind"] == "batch_duplicate") & incoming["decidable"].astype(bool)]
    joined = [survivor.get(record, record) == survivor.get(clean[entity], clean[entity])
              for record, entity in zip(copies["id"], copies["entity"])]
    return Quality(precision=_precision(right, len(pairs)), recall=sum(joined) / len(joined) if joined else 1.0,
                   found=len(pairs), false=len(pairs) - right, decidable=len(joined))


MATCH_COLUMNS = ["id", "email", "first_name", "last_name", "phone"]
LIST_COLUMNS = ["all_emails", "all_phones"]


def builtin_quality(evaluation: EvaluationSet, rule) -> dict[str, Quality]:
    """Run the built-in matcher (``match_against`` and ``find_duplicates_within``) under ``rule``."""
    from import_pipelines.dedupe import find_duplicates_within, match_against

    batch = evaluation.incoming[MATCH_COLUMNS + LIST_COLUMNS]
    found = match_against(batch, evaluation.existing[MATCH_COLUMNS], rule, incoming_id="id", existing_id="id")
    groups = find_duplicates_within(batch, rule, id_column="id")
    return {"against_target": against_target(evaluation, [(m.record_id, m.duplicate_of) for m in found.matches]),
            "within_batch": within_batch(evaluation, [(d.record_id, d.duplicate_of) for d in groups.duplicates])}
