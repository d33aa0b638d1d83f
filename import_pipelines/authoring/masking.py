"""Decide which sample values are secrets or personal data, and hide them.

An inspection shows a few values per column so that a person can see what a column holds; it
must not turn into a dump of e-mail addresses, phone numbers, password hashes or API tokens.
A column is masked when its *name* says what it holds (``email``, ``phone``, ``password``,
``remember_token``, ``api_key``) or when its *values* look like it (an address, a phone number
in a text column, a bcrypt/argon2 hash, a long hex or base64 string, a JWT). Masked samples
keep only the kind (``<email>``), so a reader still learns what the column is for.

The rules err on the side of masking: a wrongly masked column costs a reader one
``--unmasked``; a wrongly shown one leaks data into a terminal, a log or the Dagster UI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from import_pipelines.authoring.names import words

MaskKind = Literal["email", "phone", "secret", "personal"]

# column-name tokens that name what the column holds
_SECRET_TOKENS = {"password", "passwd", "pwd", "secret", "token", "salt", "otp", "totp", "hash", "digest",
                  "apikey", "credential", "credentials", "signature", "nonce", "cookie", "session"}
_SECRET_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("auth", "key"),
                 ("encryption", "key"), ("client", "secret")}
_EMAIL_TOKENS = {"email", "emails", "mail", "e_mail", "cc", "bcc", "recipients", "recipient"}
_PHONE_TOKENS = {"phone", "phones", "mobile", "fax", "tel", "telephone", "msisdn", "cell"}
_PERSONAL_TOKENS = {"ssn", "iban", "bic", "passport", "birthday", "birthdate", "dob", "birth", "address",
                    "street", "ip", "tax", "vat", "card", "pan", "cvv", "national"}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# a phone number: optional +, at least 7 digits, only digits and the usual separators
_PHONE = re.compile(r"^\+?[\d][\d\s().\-/]{5,}\d$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_HASH = re.compile(r"^\$(2[abxy]?|argon2(id|i|d)?|[1356]|pbkdf2[-\w]*|scrypt)\$")
_HEX = re.compile(r"^[0-9a-fA-F]{32,}$")
_BASE64ISH = re.compile(r"^[A-Za-z0-9+/_=-]{24,}$")
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
_TEXT_TYPES = ("text", "character", "varchar", "citext", "json", "jsonb")


def kind_by_name(column: str) -> MaskKind | None:
    """What a column's name says it holds, if it is something to hide."""
    tokens = words(column)
    found = set(tokens)
    if found & _SECRET_TOKENS or any(pair in _SECRET_PAIRS for pair in zip(tokens, tokens[1:])):
        return "secret"
    if found & _EMAIL_TOKENS or column.lower().endswith("email"):
        return "email"
    if found & _PHONE_TOKENS:
        return "phone"
    if found & _PERSONAL_TOKENS:
        return "personal"
    return None


def kind_by_value(value: str, *, data_type: str = "text") -> MaskKind | None:
    """What one sample value looks like, if it is something to hide."""
    text = value.strip()
    if not text:
        return None
    if _HASH.match(text) or _JWT.match(text) or _HEX.match(text):
        return "secret"
    if _EMAIL.search(text):
        return "email"
    if not data_type.startswith(_TEXT_TYPES):
        return None  # numbers, dates and booleans are never phone numbers or tokens
    if _PHONE.match(text) and not _ISO_DATE.match(text) and sum(c.isdigit() for c in text) >= 7:
        return "phone"
    if (_BASE64ISH.match(text) and any(c.isdigit() for c in text) and any(c.isupper() for c in text)
            and any(c.islower() for c in text)):
        return "secret"
    return None


def mask_kind(column: str, values: Iterable[str], *, data_type: str = "text") -> MaskKind | None:
    """The kind of data a column's samples must be hidden as, or ``None`` to show them.

    The name decides first; otherwise one value that looks like a secret or personal data is
    enough to mask the whole column (its other samples are likely the same kind).
    """
    by_name = kind_by_name(column)
    if by_name is not None:
        return by_name
    for value in values:
        kind = kind_by_value(value, data_type=data_type)
        if kind is not None:
            return kind
    return None


def masked(kind: MaskKind) -> str:
    """The text shown in place of a masked value."""
    return f"<{kind}>"
