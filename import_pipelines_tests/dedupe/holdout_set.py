"""A held-out evaluation set for customer deduplication: another population, another dirt model.

The scoring model's weights were chosen while looking at :mod:`.evaluation_set`; this set was
written apart from it and is never used to choose them. It shares only the output layout. What
differs:

- the people: Spanish-, Vietnamese-, Dutch-, Indian-, English- and Arabic-named, with their own
  name frequencies (a few Nguyens make up a large share of the Vietnamese names), two family
  names for many Spanish speakers, Dutch family names with particles (``van den Berg``);
- the addresses: other providers, other mailbox patterns (a birth year, the family name first,
  an initial at the end), numbered second accounts where the wanted name is taken, family
  mailboxes (``garciafamily@``) and office role mailboxes (``info@``, ``office@``);
- the phones: mobile numbers of several countries, written internationally (``+34 612 ...``,
  ``0034 ...``) or nationally (``0612 ...``, ``07700 ...``);
- the dirt, with its own rates: case, a title or a middle initial added, the family name first
  (``García, José`` in one field), the second family name dropped, accents dropped, short forms
  of given names (``Alex``, ``Javi``, ``Piet``), a slip of the keyboard anywhere in a name or a
  mailbox name, a ``+tag`` or a dot in a Gmail address, a new work address, fields left empty;
- the look-alikes: relatives sharing a family mailbox or a landline, a son with his father's
  name and ``Jr.``, colleagues sharing the office line or ``info@``, namesakes with the same
  mailbox name at another provider, second accounts (``name2@``).

A duplicate is labelled ``decidable`` when a person could tell from the two records: an
address of the person's own is on both (up to case, spaces, a ``+tag``, Gmail's dots or one
slip of the keyboard), or a phone of their own is (in whatever format). Names of one person
never contradict each other here; shared addresses and lines decide nothing.

``generate(seed=...)`` is deterministic: 3,500 existing and 2,500 incoming records by default.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from import_pipelines_tests.dedupe.evaluation_set import EvaluationSet

# group -> (share of people, given names, family names); earlier names are more common
GROUPS = {
    "es": (0.25, ["María", "José", "Juan", "Carmen", "Luis", "Ana", "Carlos", "Lucía", "Javier", "Elena", "Miguel",
                  "Isabel", "Pablo", "Rosa", "Andrés", "Pilar", "Fernando", "Beatriz", "Ignacio", "Nuria"],
           ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Díaz", "Romero", "Navarro",
            "Torres", "Ruiz", "Ortega", "Castillo", "Iglesias", "Vidal"]),
    "vi": (0.15, ["Anh", "Minh", "Linh", "Huong", "Tuan", "Thao", "Duc", "Lan", "Hoa", "Nam", "Quang", "Trang"],
           ["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do", "Ngo"]),
    "nl": (0.15, ["Jan", "Pieter", "Sanne", "Femke", "Daan", "Lotte", "Bram", "Anouk", "Joost", "Maaike", "Thijs",
                  "Roos", "Sven", "Eline"],
           ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit", "Meijer",
            "de Boer", "Mulder", "Bos", "Vos", "Dekker"]),
    "in": (0.15, ["Rahul", "Priya", "Amit", "Neha", "Sanjay", "Pooja", "Vikram", "Anjali", "Ravi", "Sunita", "Arjun",
                  "Kavya", "Rohit", "Deepa"],
           ["Sharma", "Patel", "Gupta", "Singh", "Kumar", "Reddy", "Iyer", "Nair", "Mehta", "Joshi", "Desai",
            "Chopra"]),
    "en": (0.20, ["Oliver", "Amelia", "Harry", "Olivia", "George", "Isla", "Jack", "Ava", "Noah", "Grace",
                  "Alexander", "Samantha", "Frederick", "Victoria", "Benjamin", "Charlotte"],
           ["Taylor", "Evans", "Roberts", "Wright", "Walker", "Hughes", "Edwards", "Green", "Hall", "Wood",
            "Clarke", "Turner", "Harrison", "Cooper"]),
    "ar": (0.10, ["Mohammed", "Fatima", "Ahmed", "Aisha", "Omar", "Mariam", "Youssef", "Layla", "Khalid", "Nour"],
           ["Haddad", "Khalil", "Saleh", "Nasser", "Hamdan", "Aziz", "Mansour", "Karim", "Suleiman"]),
}
# short forms people use for themselves (some are not in any English nickname list)
SHORT = {"Alexander": ["Alex", "Xander"], "Samantha": ["Sam", "Sammie"], "Frederick": ["Fred", "Freddie"],
         "Victoria": ["Vicky", "Tori"], "Benjamin": ["Ben", "Benji"], "Charlotte": ["Lottie", "Charlie"],
         "Javier": ["Javi"], "Ignacio": ["Nacho"], "José": ["Pepe"], "Pieter": ["Piet"], "Mohammed": ["Mohamed",
         "Muhammad"], "Oliver": ["Ollie"], "Harry": ["Harold"], "Beatriz": ["Bea"], "Fernando": ["Nando"]}
COUNTRY = {"es": ("34", "6", 8), "vi": ("84", "9", 8), "nl": ("31", "6", 8), "in": ("91", "9", 9),
           "en": ("44", "7", 9), "ar": ("971", "5", 8)}
PROVIDERS = ["gmail.com", "hotmail.es", "yahoo.co.uk", "outlook.com", "t-online.de", "ziggo.nl", "kpnmail.nl",
             "rediffmail.com", "libero.it", "orange.fr", "gmx.de", "icloud.com", "zoho.com"]
COMPANIES = [f"{a}{b}" for a in ["alba", "brisa", "cedro", "dunas", "faro", "lumen", "norte", "oasis", "prisma",
                                  "terra"] for b in ["tech", "logistica", "media", "salud", "legal"]]
ROLES = ["info", "office", "contact", "sales"]
TITLES = ["Dr. ", "Mrs. ", "Mr. ", "Ms. "]
# the key to the right on a QWERTY keyboard (to the left at the end of a row)
NEIGHBOUR = {row[k]: row[k + 1] if k + 1 < len(row) else row[k - 1]
             for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm") for k in range(len(row))}


@dataclass
class _Person:
    entity: int
    group: str
    given: str
    family: str
    emails: list[str]
    phones: list[str]  # digits with the country code
    own_emails: set[str]
    own_phones: set[str]
    company: str | None = None
    household: set[str] | None = None  # the given names of everybody at the person's address


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _slug(text: str) -> str:
    return "".join(c for c in _plain(text).lower() if c.isalnum())


def _zipf(rng: np.random.Generator, items: list[str], steep: float = 1.2) -> str:
    weights = 1 / (np.arange(len(items)) + 2) ** steep
    return items[rng.choice(len(items), p=weights / weights.sum())]


class _World:
    """People, their addresses and lines; every address is one mailbox, held once."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.taken: set[str] = set()
        self.count = 0
        self.office_line = {c: self.phone("es") for c in COMPANIES}
        self.staff: dict[str, set[tuple[str, str]]] = {}  # names of the people on a company's office line

    def phone(self, group: str) -> str:
        code, first, length = COUNTRY[group]
        return code + first + "".join(str(d) for d in self.rng.integers(0, 10, length))

    def address(self, local: str, domain: str) -> str:
        """``local@domain``, or with the smallest free number (how providers hand out second accounts)."""
        candidate, number = f"{local}@{domain}", 2
        while self._key(candidate) in self.taken:
            candidate, number = f"{local}{number}@{domain}", number + 1
        self.taken.add(self._key(candidate))
        return candidate

    @staticmethod
    def _key(address: str) -> str:
        local, _, domain = address.partition("@")
        return f"{local.replace('.', '')}@{domain}" if domain == "gmail.com" else address

    def name(self, group: str) -> tuple[str, str]:
        _, given, family = GROUPS[group]
        last = _zipf(self.rng, family, 1.6 if group == "vi" else 1.1)
        if group == "es" and self.rng.random() < 0.6:
            last = f"{last} {_zipf(self.rng, family, 1.1)}"
        return _zipf(self.rng, given), last

    def mailbox(self, given: str, family: str) -> str:
        f, l = _slug(given), _slug(family.split()[0] if " " in family and not family[0].islower() else family)
        year = int(self.rng.integers(1950, 2005))
        pattern = int(self.rng.integers(7))
        return [f"{f}.{l}", f"{f}{l}{year % 100:02d}", f"{f[0]}{l}", f"{l}{f[0]}", f"{f}_{l[:3]}", f"{f}.{l}.{year}",
                f"{l}.{f}"][pattern]

    def person(self, *, group: str | None = None, given: str | None = None, family: str | None = None) -> _Person:
        group = group or list(GROUPS)[self.rng.choice(len(GROUPS), p=[g[0] for g in GROUPS.values()])]
        name = self.name(group)
        given, family = given or name[0], family or name[1]
        self.count += 1
        email = self.address(self.mailbox(given, family), PROVIDERS[self.rng.integers(len(PROVIDERS))])
        phones = [self.phone(group)] if self.rng.random() < 0.7 else []
        person = _Person(self.count, group, given, family, [email], phones, {email}, set(phones))
        if self.rng.random() < 0.35:
            person.company = COMPANIES[self.rng.integers(len(COMPANIES))]
            if self.rng.random() < 0.5:
                work = self.address(f"{_slug(given)}.{_slug(family)[:8]}", f"{person.company}.example")
                person.emails.append(work)
                person.own_emails.add(work)
            if self.rng.random() < 0.4:
                person.phones.append(self.office_line[person.company])
        return person

    def relative(self, head: _Person, *, junior: bool = False) -> _Person:
        """Someone of ``head``'s household: the family mailbox or the head's address, the landline."""
        household = head.household or {head.given}
        if junior and f"{head.given} Jr." not in household and not head.family.endswith(" Jr."):
            person = self.person(group=head.group, given=head.given, family=f"{head.family} Jr.")
            household.add(f"{head.given} Jr.")
        else:
            # a relative's given name is one a reader tells apart from everybody's in the home
            person = self.person(group=head.group, family=head.family.removesuffix(" Jr."))
            while any(_slug(person.given)[:3] == _slug(name)[:3] or person.given in SHORT.get(name, [])
                      or name in SHORT.get(person.given, []) for name in head.household or {head.given}):
                person.given = self.name(head.group)[0]
        head.household = household
        household.add(person.given)
        person.household = head.household
        shared = head.emails[0] if self.rng.random() < 0.5 else self.address(
            f"{_slug(head.family.split()[0])}family", PROVIDERS[self.rng.integers(len(PROVIDERS))])
        if shared not in head.emails:
            head.emails.append(shared)
        head.own_emails.discard(shared)
        person.emails = [shared] + person.emails[1:]
        person.own_emails = set(person.emails[1:])
        if head.phones:
            person.phones = [head.phones[0]] + person.phones[1:]
            head.own_phones.discard(head.phones[0])
            person.own_phones.discard(head.phones[0])
        return person


def _slip(text: str, rng: np.random.Generator) -> str:
    """One slip of the keyboard at any letter: a neighbouring key, a doubled or a lost letter, two swapped."""
    letters = [k for k, c in enumerate(text) if c.isalpha()]
    if len(letters) < 3:
        return text
    k = letters[rng.integers(len(letters))]
    kind = rng.integers(4)
    if kind == 0:
        return text[:k] + NEIGHBOUR.get(text[k].lower(), text[k]) + text[k + 1:]
    if kind == 1:
        return text[:k] + text[k] + text[k:]
    if kind == 2:
        return text[:k] + text[k + 1:]
    j = k + 1 if k + 1 < len(text) and text[k + 1].isalpha() else k - 1
    lo, hi = min(j, k), max(j, k)
    return text[:lo] + text[hi] + text[lo] + text[hi + 1:]


def _written(digits: str, group: str, rng: np.random.Generator) -> str:
    """A phone number the way somebody typed it: international, with 00, or national with a trunk 0.

    ``group`` is the writer's; the number keeps its own country code (an office line is Spanish
    whoever dials it).
    """
    code = next(c for c, first, _ in COUNTRY.values() if digits.startswith(c + first))
    national = digits[len(code):]
    style = rng.integers(4)
    if style == 0:
        return f"+{code} {national[:3]} {national[3:6]} {national[6:]}"
    if style == 1:
        return f"00{code}{national}"
    if style == 2:
        return f"+{code}-{national}"
    return f"0{national[:4]} {national[4:]}"


def _clean(person: _Person, rng: np.random.Generator, *, every_address: bool) -> dict:
    """The record a system holds of ``person``: the first address and line, or (``every_address``,
    as the incoming source has them) all of them."""
    emails = person.emails if every_address else person.emails[:1]
    phones = person.phones if every_address else person.phones[:1]
    return {"entity": person.entity, "first_name": person.given, "last_name": person.family,
            "email": person.emails[0], "phone": _written(person.phones[0], person.group, rng) if person.phones else None,
            "company": person.company, "all_emails": list(person.emails),
            "all_phones": [_written(p, person.group, rng) for p in person.phones] or None,
            "_emails": set(emails) & person.own_emails, "_phones": set(phones) & person.own_phones}


def _dirty(person: _Person, world: _World, rng: np.random.Generator) -> dict:
    """Another system's record of ``person``, and the true addresses and lines it shows."""
    given, family = person.given, person.family
    roll = rng.random()
    if roll < 0.10 and given in SHORT:
        given = SHORT[given][rng.integers(len(SHORT[given]))]
    elif roll < 0.22:
        if rng.random() < 0.5:
            given = _slip(given, rng)
        else:
            # a slip in the name, never in a "Jr." (which tells two people apart)
            core, junior = (family[:-4], family[-4:]) if family.endswith(" Jr.") else (family, "")
            family = _slip(core, rng) + junior
    elif roll < 0.30 and " " in family and person.group == "es":
        family = " ".join([family.split()[0]] + (["Jr."] if family.endswith(" Jr.") else []))
    elif roll < 0.36:
        given = f"{given} {'ABCDEFGHJKLMNPRST'[rng.integers(17)]}."
    elif roll < 0.40:
        given = TITLES[rng.integers(len(TITLES))] + given
    if rng.random() < 0.3:
        given, family = _plain(given), _plain(family)
    case = rng.random()
    if case < 0.12:
        given, family = given.upper(), family.upper()
    elif case < 0.2:
        given, family = given.lower(), family.lower()
    if rng.random() < 0.08:
        given, family = f"{family}, {given}", None

    shown: list[str] = []
    for k, address in enumerate(person.emails):
        if k > 0 and rng.random() < 0.5:
            continue
        local, _, domain = address.partition("@")
        roll = rng.random()
        if roll < 0.08:
            slipped = f"{_slip(local, rng)}@{domain}"
            address = address if world._key(slipped) in world.taken else slipped
        elif roll < 0.13 and domain == "gmail.com":
            address = f"{local}+{['shop', 'news', 'work'][rng.integers(3)]}@{domain}"
        elif roll < 0.20:
            address = address.upper() if rng.random() < 0.5 else f"  {address} "
        shown.append(address)
    roll = rng.random()
    if roll < 0.12:  # a new work address in front
        shown.insert(0, world.address(f"{_slug(person.given)[:1]}{_slug(person.family)[:10]}",
                                      f"{COMPANIES[rng.integers(len(COMPANIES))]}.example"))
    elif roll < 0.22:
        shown = shown[1:]
    phones = [p for p in person.phones if rng.random() < 0.65]
    linked_emails = {e for e in person.own_emails if any(_same_address(e, s) for s in shown)}
    return {"entity": person.entity, "first_name": given, "last_name": family, "email": shown[0] if shown else None,
            "phone": _written(phones[0], person.group, rng) if phones else None,
            "company": person.company if rng.random() < 0.6 else None, "all_emails": shown or None,
            "all_phones": [_written(p, person.group, rng) for p in phones] or None,
            "_emails": linked_emails, "_phones": set(phones) & person.own_phones}


def _same_address(true: str, shown: str) -> bool:
    """Whether a person reading ``shown`` sees ``true`` in it: case, spaces, a +tag, Gmail dots, one slip."""
    shown = "".join(shown.split()).lower()
    local, _, domain = shown.partition("@")
    t_local, _, t_domain = true.partition("@")
    if domain != t_domain:
        return False
    local = local.partition("+")[0]
    if domain == "gmail.com":
        local, t_local = local.replace(".", ""), t_local.replace(".", "")
    if local == t_local:
        return True
    if abs(len(local) - len(t_local)) > 1:
        return False
    # one substitution, insertion, deletion or swap
    if len(local) == len(t_local):
        diff = [k for k in range(len(local)) if local[k] != t_local[k]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and local[diff[0]] == t_local[diff[1]] and local[diff[1]] == t_local[diff[0]])
    short, long = sorted((local, t_local), key=len)
    return any(long[:k] + long[k + 1:] == short for k in range(len(long)))


def generate(*, seed: int = 770077, existing: int = 3500, incoming: int = 2500) -> EvaluationSet:
    """The held-out set (see the module docstring); the same for the same arguments."""
    rng = np.random.default_rng(seed)
    world = _World(rng)
    people: list[_Person] = []
    while len(people) < existing:
        if people and rng.random() < 0.08:
            head = people[rng.integers(len(people))]
            people.append(world.relative(head, junior=rng.random() < 0.2))
        else:
            people.append(world.person())
    existing_rows = [_clean(p, rng, every_address=False) for p in people]

    rows: list[dict] = []
    n_dup, n_pairs, n_look = int(incoming * 0.25), int(incoming * 0.05), int(incoming * 0.15)
    # look-alikes first: a relative joining a household makes its address a family one, which
    # then no longer tells the head's own copy apart
    for _ in range(n_look):
        rows.append(_lookalike(world, people, rng) | {"kind": "lookalike", "decidable": False})
    for k in rng.choice(len(people), n_dup, replace=False):
        record = _dirty(people[k], world, rng)
        known = existing_rows[k] | {"_emails": existing_rows[k]["_emails"] & people[k].own_emails,
                                    "_phones": existing_rows[k]["_phones"] & people[k].own_phones}
        rows.append(record | {"kind": "duplicate", "decidable": _decidable(record, known)})
    fresh = [world.person() for _ in range(incoming - len(rows) - n_pairs)]
    for person in fresh:
        rows.append(_clean(person, rng, every_address=True) | {"kind": "new", "decidable": False})
    for person in fresh[:n_pairs]:
        copy = _dirty(person, world, rng)
        clean = _clean(person, rng, every_address=True)
        rows.append(copy | {"kind": "batch_duplicate", "decidable": _decidable(copy, clean)})

    columns = ["entity", "email", "first_name", "last_name", "phone", "company"]
    existing_df = pd.DataFrame(existing_rows)[columns]
    existing_df.insert(0, "id", np.arange(1, len(existing_df) + 1))
    order = rng.permutation(len(rows))
    incoming_df = pd.DataFrame([rows[k] for k in order])[columns + ["all_emails", "all_phones", "kind", "decidable"]]
    incoming_df.insert(0, "id", np.arange(500_001, 500_001 + len(incoming_df)))
    return EvaluationSet(existing=existing_df.reset_index(drop=True), incoming=incoming_df.reset_index(drop=True))


def _decidable(record: dict, clean: dict) -> bool:
    """An own address or an own line of the person on both records."""
    return bool(record["_emails"] & clean["_emails"]) or bool(record["_phones"] & clean["_phones"])


def _lookalike(world: _World, people: list[_Person], rng: np.random.Generator) -> dict:
    """Somebody else who shares something with an existing customer."""
    other = people[rng.integers(len(people))]
    roll = rng.random()
    if roll < 0.25:
        person = world.relative(other)
    elif roll < 0.35:
        person = world.relative(other, junior=True)
    elif roll < 0.55:
        # a second account: the same name, the wanted mailbox taken, so a number
        person = world.person(group=other.group, given=other.given, family=other.family)
        local, _, domain = other.emails[0].partition("@")
        person.emails[0] = world.address(local.rstrip("0123456789").rstrip("._"), domain)
        person.own_emails = set(person.emails)
    elif roll < 0.75 and other.company:
        # a colleague: never one with the name of somebody else on the office line, who would
        # then be the same record (the same name, the office line, maybe info@) as that person
        person = world.person(group=list(GROUPS)[rng.integers(len(GROUPS))])
        colleagues = world.staff.setdefault(other.company, {(other.given, other.family)})
        while (person.given, person.family) in colleagues:
            person.given, person.family = world.name(person.group)
        colleagues.add((person.given, person.family))
        person.company = other.company
        person.phones = [world.office_line[other.company]]
        if rng.random() < 0.5:
            person.emails = [f"{ROLES[rng.integers(len(ROLES))]}@{other.company}.example"]
    else:
        # a namesake: the same name, the same mailbox name at another provider
        person = world.person(group=other.group, given=other.given, family=other.family)
        local = other.emails[0].partition("@")[0]
        domain = other.emails[0].partition("@")[2]
        person.emails[0] = world.address(local, [p for p in PROVIDERS if p != domain][rng.integers(len(PROVIDERS) - 1)])
        person.own_emails = set(person.emails)
    return _clean(person, rng, every_address=True)
