"""How the authoring tools read database names: words, singulars, normalised forms.

``createdByUserId``, ``created_by_user_id`` and ``Created By User ID`` are the same four words;
``customers`` and ``customer`` the same table noun. One reading for the join suggestions, the
field matcher and the masking rules.
"""

from __future__ import annotations

import re

_IRREGULAR = {"people": "person", "children": "child", "men": "man", "women": "woman", "data": "data",
              "statuses": "status", "addresses": "address", "aliases": "alias", "analyses": "analysis"}


def words(name: str) -> list[str]:
    """The lower-case words of a name: split at case changes and at anything not a letter or digit."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def singular(word: str) -> str:
    """English singular of a table-name word, as application schemas spell plurals."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def normalised(name: str) -> str:
    """``Customer_Emails`` -> ``customer_email``: words joined by ``_``, the last one singular."""
    parts = words(name)
    return "_".join([*parts[:-1], singular(parts[-1])]) if parts else ""


def shared_prefix(names: list[str]) -> str | None:
    """A first word most table names share (``ost``, ``wp``): a namespace, not part of the name."""
    if len(names) < 3:
        return None
    firsts: dict[str, int] = {}
    for name in names:
        parts = words(name)
        if len(parts) > 1:
            firsts[parts[0]] = firsts.get(parts[0], 0) + 1
    if not firsts:
        return None
    word, count = max(firsts.items(), key=lambda item: item[1])
    return word if count >= 0.6 * len(names) else None
