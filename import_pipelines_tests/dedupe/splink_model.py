"""The anchor: a Splink (Fellegi-Sunter) model on the same evaluation sets, DuckDB backend.

Splink gets the same normalised values the built-in matcher compares (addresses trimmed and
lower-cased, phones as digits with a country code, names case-folded) and every address and
phone of a record as arrays, and is configured the way its documentation suggests for people:

- ``email``: exact on the preferred address, any address in common (array intersection), the
  same mailbox name, at most one edit (Damerau-Levenshtein), else;
- ``phone``: exact, any number in common, the same last seven digits, else;
- ``first_name_last_name``: Splink's forename/surname comparison with term-frequency
  adjustments on the full name (exact, swapped, Jaro-Winkler on both, one of the two exact).

It is trained as well as it can be: u by random sampling, m from the evaluation set's own
labels (``estimate_m_from_label_column``, which the built-in weights were effectively also
chosen with), and the prior from the labelled pairs. Predictions are blocked on the address,
the phone, every address and phone (exploded arrays), the mailbox name and the full name.
A pair at or above the rule's threshold (as a probability) is a match; within the batch,
matched pairs are joined into clusters.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from import_pipelines.dedupe.normalize import normalize_values
from import_pipelines_tests.dedupe.evaluation_set import EvaluationSet
from import_pipelines_tests.dedupe.quality import Quality, against_target, within_batch


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    """Splink's input: normalised values, arrays of every address and phone, the label."""
    def norm(values: Any, kind: str) -> list:
        return normalize_values(pd.Series(list(values), dtype=object), kind=kind).tolist()

    out = pd.DataFrame({"uid": df["id"].astype("int64"), "entity": df["entity"].astype("int64")})
    out["email"] = norm(df["email"], "email")
    out["phone"] = norm(df["phone"], "phone")
    out["first_name"] = norm(df["first_name"], "name")
    out["last_name"] = norm(df["last_name"], "name")
    for column, single, kind in (("all_emails", "email", "email"), ("all_phones", "phone", "phone")):
        lists = df[column].tolist() if column in df.columns else [None] * len(df)
        merged = []
        for items, one in zip(lists, out[single].tolist()):
            values = [v for v in norm(items, kind) if v] if isinstance(items, list) else []
            if one and one not in values:
                values.insert(0, one)
            merged.append(values or None)
        out[column] = merged
    out["full_name"] = [f"{a} {b}" if a and b else None for a, b in zip(out["first_name"], out["last_name"])]
    return out.astype(object).where(out.notna(), None)


def _settings():
    import splink.comparison_library as cl
    import splink.comparison_level_library as cll
    from splink import SettingsCreator, block_on

    mailbox = "regexp_extract({col}, '^[^@+]+')"
    email = cl.CustomComparison(output_column_name="email", comparison_levels=[
        cll.NullLevel("all_emails"),
        cll.ExactMatchLevel("email"),
        cll.ArrayIntersectLevel("all_emails", 1),
        cll.CustomLevel(f"{mailbox.format(col='email_l')} = {mailbox.format(col='email_r')}").configure(
            label_for_charts="same mailbox name"),
        cll.DamerauLevenshteinLevel("email", 1),
        cll.ElseLevel()])
    phone = cl.CustomComparison(output_column_name="phone", comparison_levels=[
        cll.NullLevel("all_phones"),
        cll.ExactMatchLevel("phone"),
        cll.ArrayIntersectLevel("all_phones", 1),
        cll.CustomLevel("right(phone_l, 7) = right(phone_r, 7)").configure(label_for_charts="same last seven digits"),
        cll.ElseLevel()])
    names = cl.ForenameSurnameComparison("first_name", "last_name", forename_surname_concat_col_name="full_name")
    return SettingsCreator(
        link_type="link_and_dedupe", unique_id_column_name="uid", comparisons=[email, phone, names],
        blocking_rules_to_generate_predictions=[
            block_on("email"), block_on("phone"), block_on("first_name", "last_name"),
            block_on("all_emails", arrays_to_explode=["all_emails"]),
            block_on("all_phones", arrays_to_explode=["all_phones"]),
            f"{mailbox.format(col='l.email')} = {mailbox.format(col='r.email')}",
        ])


def splink_quality(evaluation: EvaluationSet, *, threshold: float,
                   max_pairs: float = 1e6) -> tuple[dict[str, Quality], dict[str, Any]]:
    """Train and run the Splink model on ``evaluation``; its figures, and how long each part took."""
    from splink import DuckDBAPI, Linker

    started = time.perf_counter()
    existing, incoming = _frame(evaluation.existing), _frame(evaluation.incoming)
    db = DuckDBAPI()
    linker = Linker([db.register(existing, dataset_display_name="existing"),
                     db.register(incoming, dataset_display_name="incoming")], _settings(), log_level=logging.ERROR)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=1)
    linker.training.estimate_m_from_label_column("entity")
    sizes = pd.concat([existing["entity"], incoming["entity"]]).value_counts()
    records = len(existing) + len(incoming)
    linker._settings_obj._probability_two_random_records_match = (
        float((sizes * (sizes - 1) / 2).sum()) / (records * (records - 1) / 2))
    trained = time.perf_counter()
    pairs = linker.inference.predict(threshold_match_probability=threshold / 100,
                                     warning_mode="never").as_pandas_dataframe()
    predicted = time.perf_counter()

    new = set(incoming["uid"].tolist())
    left_new, right_new = pairs["uid_l"].isin(new), pairs["uid_r"].isin(new)
    across = pairs[left_new != right_new]
    record = np.where(left_new[left_new != right_new], across["uid_l"], across["uid_r"])
    target = np.where(left_new[left_new != right_new], across["uid_r"], across["uid_l"])
    best = (pd.DataFrame({"record": record, "target": target, "p": across["match_probability"].to_numpy()})
            .sort_values(["record", "p", "target"], ascending=[True, False, True]).drop_duplicates("record"))
    inside = pairs[left_new & right_new]
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in zip(inside["uid_l"].tolist(), inside["uid_r"].tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members = set(parent) | set(parent.values())
    duplicates = [(x, root(x)) for x in members if root(x) != x]
    figures = {"against_target": against_target(evaluation, zip(best["record"].tolist(), best["target"].tolist())),
               "within_batch": within_batch(evaluation, duplicates)}
    return figures, {"train_s": round(trained - started, 2), "predict_s": round(predicted - trained, 2)}
