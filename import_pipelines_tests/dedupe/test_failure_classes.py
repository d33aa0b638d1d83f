"""The ways a duplicate matcher goes wrong on customer data, each on the shipped FreeScout rule.

- different people merged: mailboxes that differ by a number are second accounts, not typos;
- missing is not different: an absent last name or phone is no evidence against a pair;
- only one address compared: every address of a customer counts, not just the preferred one;
- common names are weak evidence: agreeing on "Jennifer Thomas" says less than on a rare name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from import_pipelines.dedupe import find_duplicates_within, match_against
from import_pipelines.templates.loader import load_template

RULE = load_template("freescout").entities["customer_users"].dedupe
COLUMNS = ["id", "email", "first_name", "last_name", "phone", "all_emails", "all_phones"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{name: row.get(name) for name in COLUMNS} for row in rows], columns=COLUMNS)
    frame["all_emails"] = [row.get("all_emails", [row["email"]] if row.get("email") else None) for row in rows]
    frame["all_phones"] = [row.get("all_phones", [row["phone"]] if row.get("phone") else None) for row in rows]
    return frame


def _match(incoming: dict, existing: dict):
    return match_against(_frame([incoming | {"id": 1}]), _frame([existing | {"id": 2}]), RULE, incoming_id="id",
                         existing_id="id").get(1)


@pytest.mark.parametrize(("incoming", "existing"), [
    # a digit added to a mailbox name, a common first name and nothing else
    ({"email": "thomas2@gmail.com", "first_name": "Thomas"}, {"email": "thomas5@gmail.com", "first_name": "Thomas"}),
    ({"email": "thomas@gmail.com", "first_name": "Thomas"}, {"email": "thomas7@gmail.com", "first_name": "Thomas"}),
    # first.last2@ beside first.last@: the second account of a second Jennifer Thomas
    ({"email": "jennifer.thomas2@example.com", "first_name": "Jennifer", "last_name": "Thomas"},
     {"email": "jennifer.thomas@example.com", "first_name": "Jennifer", "last_name": "Thomas",
      "phone": "+1 555 010 2000"}),
    ({"email": "j.smith1987@yahoo.com", "first_name": "John", "last_name": "Smith"},
     {"email": "j.smith1988@yahoo.com", "first_name": "John", "last_name": "Smith"}),
])
def test_mailboxes_differing_by_a_number_are_different_people(incoming: dict, existing: dict) -> None:
    assert _match(incoming, existing) is None
    # nor inside one batch
    groups = find_duplicates_within(_frame([incoming | {"id": 1}, existing | {"id": 2}]), RULE, id_column="id")
    assert groups.duplicates == []


@pytest.mark.parametrize("incoming", [
    # the whole name in the first name, no last name, no phone
    {"email": " Jennifer.Thomas@Example.com", "first_name": "Jennifer Thomas"},
    # an initial and no phone
    {"email": "jennifer.thomas@example.com ", "first_name": "J.", "last_name": "Thomas"},
    # no first name, no phone
    {"email": "JENNIFER.THOMAS@EXAMPLE.COM", "last_name": "Thomas"},
    # nothing but the address
    {"email": "jennifer.thomas@example.com"},
])
def test_the_same_address_with_fields_missing_is_a_duplicate(incoming: dict) -> None:
    existing = {"email": "jennifer.thomas@example.com", "first_name": "Jennifer", "last_name": "Thomas",
                "phone": "+1 555 010 2000"}
    match = _match(incoming, existing)
    assert match is not None and match.duplicate_of == 2 and match.confidence >= RULE.threshold


def test_every_address_of_a_customer_is_compared() -> None:
    # the customer's preferred (work) address differs; the private one is the existing record's
    incoming = {"email": "jthomas@acme-widgets.com", "first_name": "Jennifer", "last_name": "Thomas",
                "all_emails": ["jthomas@acme-widgets.com", "jen.thomas.1979@gmail.com"]}
    existing = {"email": "jen.thomas.1979@gmail.com", "first_name": "Jennifer", "last_name": "Thomas"}
    match = _match(incoming, existing)
    assert match is not None and match.duplicate_of == 2 and match.confidence >= RULE.threshold
    # and phones: the second number of the customer is the existing record's only one
    incoming = {"email": "jt@acme-widgets.com", "first_name": "Jennifer", "last_name": "Thomas",
                "phone": "+1 555 010 2000", "all_phones": ["+1 555 010 2000", "(555) 777-1234"]}
    existing = {"email": "jenny.t@example.org", "first_name": "Jennifer", "last_name": "Thomas",
                "phone": "555-777-1234"}
    match = _match(incoming, existing)
    assert match is not None and match.duplicate_of == 2


def _population(rng: np.random.Generator, size: int) -> list[dict]:
    """People of whom many are called Jennifer or Thomas, with personal addresses."""
    first = ["Jennifer", "Thomas", "Mary", "John", "Michael", "Linda", "David", "Susan"]
    last = ["Thomas", "Smith", "Johnson", "Brown", "Jones", "Miller", "Davis", "Wilson"]
    people = []
    for k in range(size):
        f, surname = first[rng.integers(len(first))], last[rng.integers(len(last))]
        people.append({"id": 100 + k, "email": f"{f[0]}{surname}.{k}@mail{k % 13}.example".lower(),
                       "first_name": f, "last_name": surname})
    return people


def test_agreeing_on_a_rare_name_counts_more_than_on_a_common_one() -> None:
    existing = _population(np.random.default_rng(3), 400)
    existing += [{"id": 1, "email": "jennifer.thomas@gmail.com", "first_name": "Jennifer", "last_name": "Thomas"},
                 {"id": 2, "email": "siobhan.angstrom@gmail.com", "first_name": "Siobhán", "last_name": "Ångström"}]
    # the same comparison pattern for both: the same mailbox name at another domain, the same name
    incoming = [{"id": 11, "email": "jennifer.thomas@outlook.com", "first_name": "Jennifer", "last_name": "Thomas"},
                {"id": 12, "email": "siobhan.angstrom@outlook.com", "first_name": "Siobhán", "last_name": "Ångström"}]
    result = match_against(_frame(incoming), _frame(existing), RULE, incoming_id="id", existing_id="id")
    scored = {row.record_id: row for row in result.matches + result.review}
    rare, common = scored[12], scored.get(11)
    # the rare name makes the pair likely enough for a person to look (or to merge); the common
    # one, in a population where every eighth person is a Jennifer or a Thomas, does not
    assert rare.duplicate_of == 2 and rare.confidence >= RULE.review_from
    assert result.get(11) is None and (common is None or common.confidence < rare.confidence - 30)
    # the other direction of the same claim: a name alone, common or rare, merges nobody
    alone = match_against(_frame([{"id": 21, "email": "jt1@corp.example", "first_name": "Jennifer",
                                   "last_name": "Thomas"}]), _frame(existing), RULE, incoming_id="id",
                          existing_id="id")
    assert alone.matches == []
