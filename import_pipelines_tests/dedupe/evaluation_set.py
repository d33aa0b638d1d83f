"""A labelled evaluation set for customer deduplication, independent of the demo generator.

People live in households and offices, have one to three addresses and up to two phones, and
come from many countries. Help-desk customer records are made of them the way they pile up in
real systems, then an import batch arrives:

- copies of existing customers, dirtied: case and whitespace, a transposed or dropped letter in
  a name or a mailbox name, fields left empty, a nickname, a name in its native script or
  without its accents or with German umlauts spelled out, given and family name swapped, the
  whole name in the first-name field, another of the person's addresses as the preferred one,
  phone numbers written differently, a new job address;
- copies of new customers inside the batch, dirtied the same way;
- people who are *not* duplicates but look like one: a relative sharing the household address
  or phone, a colleague sharing the office phone or the team mailbox, a second person whose
  mailbox is someone else's name with a number (``first.last2@``), namesakes with common names;
- new customers.

Every incoming record carries the entity it belongs to; a duplicate also says whether a person
could decide it from the data (``decidable``): some address or phone links the two records
(exactly, or up to an obvious typo or formatting) and the names do not contradict it, or a rare
full name appears with the same mailbox name at another domain. A copy that kept only a common
name is a duplicate nobody could confirm from the data, and is labelled so.

``generate(seed=...)`` is deterministic; the default size is 4,000 existing and 3,000 incoming
records.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

# given names with rough frequencies (common ones dominate, as they do in customer tables)
COMMON_FIRST = ["James", "Mary", "John", "Jennifer", "Michael", "Linda", "Robert", "Patricia", "William", "Elizabeth",
                "David", "Susan", "Thomas", "Jessica", "Richard", "Sarah", "Joseph", "Karen", "Charles", "Nancy",
                "Christopher", "Margaret", "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Sandra", "Andrew",
                "Katherine", "Edward", "Deborah", "Jonathan", "Rebecca", "Nicholas", "Laura", "Samuel", "Emily"]
RARE_FIRST = ["Siobhán", "Ångström", "Eoghan", "Niamh", "Bartholomew", "Xiomara", "Thaddeus", "Ignatius",
              "Wilhelmina", "Perpetua", "Zebulon", "Ottoline", "Leopoldine", "Radomír", "Bożena", "Gróa", "Þórunn",
              "Ximena", "Anselm", "Cosimo", "Evander", "Ferdinanda", "Hyacinth", "Isidora", "Jarosław"]
COMMON_LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
               "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
               "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green"]
RARE_LAST = ["Ångström", "Østergaard", "Przybylski", "Wojciechowska", "Featherstonehaugh", "Quackenbush",
             "Szczepańska", "Vanderbilt-Osei", "Oyelaran", "Nakashima-Fox", "Brzęczyszczykiewicz", "Ólafsdóttir",
             "Thistlethwaite", "Kowalczyk-Bauer", "Abernathy", "Zaragoza-Ruiz", "Mbeki-Larsen", "Ekwueme",
             "Grünewald", "Schönberger", "Straßmann", "Weißkopf", "Müllerová", "Dvořák", "Čapek"]
# (native script, Latin spellings): names people write both ways
SCRIPTS = [("Дмитрий", "Иванов", ["Dmitry", "Dmitri", "Dmitriy"], ["Ivanov"]),
           ("Наталья", "Смирнова", ["Natalya", "Natalia"], ["Smirnova"]),
           ("Сергей", "Кузнецов", ["Sergey", "Sergei"], ["Kuznetsov"]),
           ("Γιώργος", "Παπαδόπουλος", ["Giorgos", "Yiorgos"], ["Papadopoulos"]),
           ("Ελένη", "Νικολάου", ["Eleni"], ["Nikolaou"]),
           ("王", "伟", ["Wang"], ["Wei"]),
           ("李", "娜", ["Li"], ["Na"]),
           ("Олена", "Шевченко", ["Olena", "Elena"], ["Shevchenko"])]
# nicknames as people use them (not every one is in a dictionary)
NICKNAMES = {"Robert": ["Bob", "Rob", "Bobby"], "William": ["Bill", "Will", "Billy", "Liam"],
             "Elizabeth": ["Liz", "Beth", "Betty", "Eliza", "Lisa"], "Katherine": ["Kate", "Katie", "Kathy"],
             "Margaret": ["Maggie", "Peggy", "Meg"], "Richard": ["Rick", "Rich", "Dick"], "James": ["Jim", "Jimmy"],
             "Michael": ["Mike", "Mikey"], "Jennifer": ["Jen", "Jenny"], "Christopher": ["Chris", "Kit"],
             "Daniel": ["Dan", "Danny"], "Thomas": ["Tom", "Tommy"], "Joseph": ["Joe", "Joey"],
             "Anthony": ["Tony"], "Patricia": ["Pat", "Patty", "Trish"], "Susan": ["Sue", "Susie"],
             "Deborah": ["Deb", "Debbie"], "Jonathan": ["Jon", "Johnny", "John"], "Nicholas": ["Nick", "Nicky"],
             "Samuel": ["Sam", "Sammy"], "Matthew": ["Matt"], "Andrew": ["Andy", "Drew"],
             "Edward": ["Ed", "Eddie", "Ted"], "Charles": ["Charlie", "Chuck"], "Rebecca": ["Becky", "Becca"],
             "Dmitry": ["Dima"], "Sergey": ["Seryozha"]}
PROVIDERS = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "gmx.net", "proton.me",
             "fastmail.com", "yandex.ru", "web.de"]
COMPANY_STEMS = ["Northwind", "Bluefin", "Copperleaf", "Driftwood", "Emberline", "Foxglove", "Granary", "Hollowell",
                 "Ironbark", "Juniper", "Kestrel", "Lanternfish", "Marrowby", "Nettlefield", "Oakhurst", "Pinecrest",
                 "Quillon", "Rookwood", "Saltmarsh", "Thornbury"]
COMPANY_TAILS = ["Logistics", "Dental", "Analytics", "Bakery", "Legal", "Studios", "Robotics", "Farms", "Clinic",
                 "Consulting"]
# a few names are far more common than the rest, the most common about 6 % of people
_FIRST_WEIGHTS = 1 / (np.arange(len(COMMON_FIRST)) + 10) / (1 / (np.arange(len(COMMON_FIRST)) + 10)).sum()
_LAST_WEIGHTS = 1 / (np.arange(len(COMMON_LAST)) + 10) / (1 / (np.arange(len(COMMON_LAST)) + 10)).sum()
KEYBOARD = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", "wqertyuiosadfghjklkzxcvbnm")}


@dataclass(frozen=True)
class EvaluationSet:
    """Existing (target) and incoming (batch) records, labelled.

    Both frames have ``id``, ``entity``, ``email``, ``first_name``, ``last_name``, ``phone``,
    ``company``; incoming records also ``all_emails``, ``all_phones`` (every address and number
    the source knows, the preferred ones included), ``kind`` (``duplicate``, ``batch_duplicate``,
    ``lookalike``, ``new``) and ``decidable``.
    """

    existing: pd.DataFrame
    incoming: pd.DataFrame


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _slug(text: str) -> str:
    return "".join(c for c in _ascii(text).lower() if c.isalnum())


class _People:
    """Makes people with households, offices, addresses and phones; keeps mailboxes unique."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.taken: set[str] = set()
        self.companies = [f"{s} {t}" for s in COMPANY_STEMS for t in COMPANY_TAILS]
        self.office_phone = {c: self.phone() for c in self.companies}
        self.next_entity = 0
        self.rare_names: set[tuple[str, str]] = set()

    def phone(self) -> str:
        area, exchange, line = self.rng.integers(201, 990), self.rng.integers(200, 1000), self.rng.integers(0, 10000)
        return f"{area:03d}{exchange:03d}{line:04d}"

    def mailbox(self, local: str, domain: str) -> str:
        """A free mailbox: the wanted name, else the name with the smallest free number (as providers do).

        Gmail ignores dots, so ``mary.lee@`` and ``marylee@`` are one mailbox there.
        """
        address = f"{local}@{domain}"
        number = 2
        while self._key(address) in self.taken:
            address = f"{local}{number}@{domain}"
            number += 1
        self.taken.add(self._key(address))
        return address

    def is_taken(self, address: str) -> bool:
        """Whether somebody holds ``address``."""
        return self._key(address) in self.taken

    @staticmethod
    def _key(address: str) -> str:
        local, _, domain = address.partition("@")
        return f"{local.replace('.', '')}@{domain}" if domain == "gmail.com" else address

    def name(self) -> tuple[str, str, list[str], list[str], bool]:
        """Given and family name, Latin alternatives (for native-script names), and whether it is rare."""
        roll = self.rng.random()
        if roll < 0.04:
            first, last, latin_first, latin_last = SCRIPTS[self.rng.integers(len(SCRIPTS))]
            return first, last, latin_first, latin_last, False
        # Zipf-like: the first names of the list are far more common than the last ones
        rare = roll > 0.92
        while rare:
            first = RARE_FIRST[self.rng.integers(len(RARE_FIRST))] if self.rng.random() < 0.5 else \
                COMMON_FIRST[self.rng.integers(len(COMMON_FIRST))]
            last = RARE_LAST[self.rng.integers(len(RARE_LAST))]
            if (first, last) not in self.rare_names:  # a rare name is one person's
                self.rare_names.add((first, last))
                return first, last, [], [], True
        first = COMMON_FIRST[self.rng.choice(len(COMMON_FIRST), p=_FIRST_WEIGHTS)]
        last = COMMON_LAST[self.rng.choice(len(COMMON_LAST), p=_LAST_WEIGHTS)]
        return first, last, [], [], False

    def person(self, *, first: str | None = None, last: str | None = None, household: dict | None = None,
               company: str | None = None) -> dict:
        """One person; ``household`` shares its address and phone, ``company`` its office phone."""
        given, family, latin_first, latin_last, rare = self.name()
        if household:
            # a relative has a given name of their own, not a nickname of another's in the home:
            # "Elizabeth" and "Lisa" at one address and phone are one person to anybody reading them
            while _same_given_name(given, household["given_names"]):
                given, *_ = self.name()
        if first or last:  # another person's name: its Latin spellings and rarity are not this one's
            latin_first, latin_last, rare = [], [], False
        first, last = first or given, last or family
        latin = (latin_first[0] if latin_first else first, latin_last[0] if latin_last else last)
        f, l = _slug(latin[0]), _slug(latin[1])
        pattern = self.rng.integers(6)
        local = [f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{f}.{l}{self.rng.integers(60, 100)}",
                 f"{l}.{f}"][pattern]
        emails = [household["emails"][0]] if household else [self.mailbox(local, PROVIDERS[self.rng.integers(10)])]
        company = company if company is not None else (
            self.companies[self.rng.integers(len(self.companies))] if self.rng.random() < 0.5 else None)
        if company and self.rng.random() < 0.6:
            emails.append(self.mailbox(f"{f[0]}.{l}" if self.rng.random() < 0.5 else f,
                                       _slug(company)[:12] + ".example"))
        phones = [household["phones"][0]] if household and household["phones"] else (
            [self.phone()] if self.rng.random() < 0.75 else [])
        shared: set[str] = set()
        if household and household["phones"]:
            shared.add(household["phones"][0])  # the household's line reaches everyone in it
            household["shared_phones"].add(household["phones"][0])
        if company and self.rng.random() < 0.3:
            phones.append(self.office_phone[company])
            shared.add(self.office_phone[company])
        self.next_entity += 1
        given_names = household["given_names"] if household else set()
        given_names.add(first)
        return {"entity": self.next_entity, "first": first, "last": last, "latin": latin,
                "latin_first": latin_first, "latin_last": latin_last, "rare": rare, "emails": emails,
                "phones": phones, "company": company, "shared_phones": shared, "given_names": given_names}


def _same_given_name(given: str, taken: set[str]) -> bool:
    """Whether a reader would take ``given`` for one of ``taken``: the same name, a nickname of
    it (or it of ``given``), or a name beginning with the same three letters (Jon, John, Jonathan)."""
    forms = {given, *NICKNAMES.get(given, [])}
    return any(name in forms or given in NICKNAMES.get(name, []) or _ascii(name)[:3].lower() == _ascii(given)[:3].lower()
               for name in taken)


def _format_phone(digits: str, rng: np.random.Generator) -> str:
    a, e, l = digits[:3], digits[3:6], digits[6:]
    return [f"({a}) {e}-{l}", f"{a}-{e}-{l}", f"+1 {a} {e} {l}", f"{a}.{e}.{l}", f"+1{a}{e}{l}", f"1 {a} {e}{l}",
            f"{a}{e}{l}"][rng.integers(7)]


def _typo(text: str, rng: np.random.Generator, *, digits: bool = False) -> str:
    """A transposed, dropped, doubled or neighbouring letter (never a digit unless ``digits``)."""
    positions = [k for k in range(1, len(text)) if text[k].isalpha() and (digits or not text[k - 1].isdigit())]
    if not positions:
        return text
    k = positions[rng.integers(len(positions))]
    kind = rng.integers(4)
    if kind == 0 and text[k - 1].isalpha():
        return text[:k - 1] + text[k] + text[k - 1] + text[k + 1:]
    if kind == 1:
        return text[:k] + text[k + 1:]
    if kind == 2:
        return text[:k] + text[k] + text[k:]
    return text[:k] + KEYBOARD.get(text[k].lower(), text[k]) + text[k + 1:]


def _record(person: dict) -> dict:
    """The clean record a system holds: the name, the first address and phone."""
    return {"entity": person["entity"], "first_name": person["first"], "last_name": person["last"],
            "email": person["emails"][0], "phone": person["phones"][0] if person["phones"] else None,
            "company": person["company"], "all_emails": list(person["emails"]), "all_phones": list(person["phones"]),
            "_emails": {person["emails"][0]: "exact"},
            "_phones": set(person["phones"][:1]) - person["shared_phones"], "_rare": person["rare"]}


def _dirty_copy(person: dict, rng: np.random.Generator, maker: _People) -> dict:
    """Another system's record of ``person``, with what links it to the person's true data."""
    first, last = person["first"], person["last"]
    emails, phones = list(person["emails"]), list(person["phones"])
    roll = rng.random()
    if person["latin_first"] and roll < 0.7:  # written in Latin letters by the other system
        first = person["latin_first"][rng.integers(len(person["latin_first"]))]
        last = person["latin_last"][rng.integers(len(person["latin_last"]))]
    elif first in NICKNAMES and roll < 0.25:
        first = NICKNAMES[first][rng.integers(len(NICKNAMES[first]))]
    elif roll < 0.4:
        if rng.random() < 0.5:
            first = _typo(first, rng)
        else:
            last = _typo(last, rng)
    elif roll < 0.5:
        first, last = _ascii(first), _ascii(last).replace("ß", "ss")
        if rng.random() < 0.5:
            last = last.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")
    elif roll < 0.55:
        first, last = last, first
    elif roll < 0.62:
        first, last = f"{first} {last}", None
    elif roll < 0.66:
        first = first[0] + "."
    case = rng.random()
    if case < 0.15:
        first, last = (first or "").upper() or None, (last or "").upper() or None
    elif case < 0.25:
        first, last = (first or "").lower() or None, (last or "").lower() or None
    if rng.random() < 0.15 and first:
        first = "  " + first + " "

    links: dict[str, str] = {}  # the person's true addresses this record shows, and how
    roll = rng.random()
    if roll < 0.72 and len(emails) > 1 and rng.random() < 0.25:
        emails = emails[1:] + emails[:1]  # another of the person's addresses is the preferred one here
    preferred: str | None = emails[0]
    if roll < 0.5:
        links[emails[0]] = "exact"
    elif roll < 0.62:
        local, _, domain = preferred.partition("@")
        typo = f"{_typo(local, rng)}@{domain}"
        if not maker.is_taken(typo):  # a slip that lands on another person's address is that address
            preferred = typo
        links[emails[0]] = "typo" if preferred != emails[0] else "exact"
    elif roll < 0.72:
        links[emails[0]] = "exact"
    elif roll < 0.82:
        local, _, domain = preferred.partition("@")
        moved = f"{local}@{[p for p in PROVIDERS if p != domain][rng.integers(len(PROVIDERS) - 1)]}"
        if maker.is_taken(moved):  # the name is someone else's there
            links[emails[0]] = "exact"
        else:
            maker.mailbox(local, moved.partition("@")[2])
            preferred = moved
            links[emails[0]] = "other_domain"
    elif rng.random() < 0.5:
        latin = person["latin"]
        preferred = maker.mailbox(f"{_slug(latin[0])[:1]}{_slug(latin[1])}", f"newjob{rng.integers(999)}.example")
    else:
        preferred = None
    extra = emails[1:] if rng.random() < 0.5 else []
    for address in extra:
        links.setdefault(address, "exact")
    shown = preferred
    if rng.random() < 0.2 and shown:
        shown = shown.upper() if rng.random() < 0.5 else " " + shown + "  "
    all_emails = ([shown] if shown else []) + [e for e in extra if e != preferred]

    shown_phones = [p for p in phones if rng.random() < 0.7]
    phone = _format_phone(shown_phones[0], rng) if shown_phones else None
    company = person["company"] if rng.random() < 0.7 else None
    return {"entity": person["entity"], "first_name": first, "last_name": last, "email": shown, "phone": phone,
            "company": company, "all_emails": all_emails or None,
            "all_phones": [_format_phone(p, rng) for p in shown_phones] or None,
            "_emails": links, "_phones": set(shown_phones) - person["shared_phones"], "_rare": person["rare"]}


def decidable(a: dict, b: dict) -> bool:
    """Whether a person could tell from the two records that they are one person.

    Some true address appears in both, exactly on at least one side (an obvious typo on the
    other is still readable), or a phone of the person's own; or the name is rare and one
    address shows the same mailbox name at another domain.
    """
    for address, how in a["_emails"].items():
        other = b["_emails"].get(address)
        if other is None:
            continue
        if "exact" in (how, other) and {how, other} <= {"exact", "typo"}:
            return True
        if a["_rare"] and {how, other} <= {"exact", "other_domain"}:
            return True
    return bool(a["_phones"] & b["_phones"])


def generate(*, seed: int = 20240611, existing: int = 4000, incoming: int = 3000) -> EvaluationSet:
    """The evaluation set (see the module docstring); the same for the same arguments."""
    rng = np.random.default_rng(seed)
    maker = _People(rng)
    people: list[dict] = []
    for _ in range(existing):
        if people and rng.random() < 0.06:  # a relative: the household's address and phone
            head = people[rng.integers(len(people))]
            people.append(maker.person(last=head["last"], household=head))
        else:
            people.append(maker.person())
    existing_rows = [_record(p) for p in people]

    rows: list[dict] = []
    n_dup, n_batch, n_look = int(incoming * 0.3), int(incoming * 0.08), int(incoming * 0.12)
    for k in rng.choice(len(people), n_dup, replace=False):
        record = _dirty_copy(people[k], rng, maker)
        rows.append(record | {"kind": "duplicate", "decidable": decidable(record, existing_rows[k])})
    new_people = [maker.person() for _ in range(incoming - n_dup - 2 * n_batch - n_look)]
    for person in new_people:
        rows.append(_record(person) | {"kind": "new", "decidable": False})
    for person in new_people[:n_batch]:
        first, second = _dirty_copy(person, rng, maker), _dirty_copy(person, rng, maker)
        # the clean record of the person is in the batch too: each copy is decided against the cluster
        clean = _record(person)
        for record in (first, second):
            rows.append(record | {"kind": "batch_duplicate",
                                  "decidable": decidable(record, clean) or decidable(record, first if record is second
                                                                                       else second)})
    for _ in range(n_look):
        rows.append(_lookalike(maker, people, rng) | {"kind": "lookalike", "decidable": False})

    columns = ["entity", "email", "first_name", "last_name", "phone", "company"]
    existing_df = pd.DataFrame(existing_rows)[columns]
    existing_df.insert(0, "id", np.arange(1, len(existing_df) + 1))
    existing_df["phone"] = [_format_phone(p, rng) if isinstance(p, str) else None for p in existing_df["phone"]]
    order = rng.permutation(len(rows))
    incoming_df = pd.DataFrame([rows[k] for k in order])[columns + ["all_emails", "all_phones", "kind", "decidable"]]
    incoming_df.insert(0, "id", np.arange(100_001, 100_001 + len(incoming_df)))
    new = incoming_df["kind"].isin(["new", "lookalike"])
    incoming_df.loc[new, "phone"] = [_format_phone(p, rng) if isinstance(p, str) else None
                                     for p in incoming_df.loc[new, "phone"]]
    incoming_df["all_phones"] = [[_format_phone(p, rng) if p.isdigit() else p for p in phones] if phones else None
                                 for phones in incoming_df["all_phones"]]
    return EvaluationSet(existing=existing_df.reset_index(drop=True), incoming=incoming_df.reset_index(drop=True))


def _lookalike(maker: _People, people: list[dict], rng: np.random.Generator) -> dict:
    """A different person who shares something with an existing customer."""
    other = people[rng.integers(len(people))]
    roll = rng.random()
    while other["rare"] or other["latin_first"]:  # a rare name belongs to one person
        other = people[rng.integers(len(people))]
    if roll < 0.35:
        # the second account: the same common name, the mailbox name with a number
        local, _, domain = other["emails"][0].partition("@")
        person = maker.person(first=other["first"], last=other["last"])
        person["emails"][0] = maker.mailbox(local.rstrip("0123456789"), domain)
        person["phones"] = [maker.phone()] if rng.random() < 0.3 else []
    elif roll < 0.6:
        # a relative writing from the household's address
        person = maker.person(last=other["last"], household=other)
    elif roll < 0.8 and other["company"]:
        # a colleague: the office phone, sometimes the team mailbox
        person = maker.person(company=other["company"])
        person["phones"] = [maker.office_phone[other["company"]]]
        person["shared_phones"].add(person["phones"][0])
        if rng.random() < 0.5:
            team = f"support@{_slug(other['company'])[:12]}.example"
            person["emails"] = [team]
    else:
        # a namesake: a common name, nothing else shared
        person = maker.person(first=other["first"], last=other["last"])
    record = _record(person)
    record["email"] = person["emails"][0] if person["emails"] else None
    return record
