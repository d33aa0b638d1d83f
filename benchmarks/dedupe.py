"""Benchmark of duplicate detection: quality on labelled sets, against Splink, and speed at scale.

    python benchmarks/dedupe.py --incoming 100000 --existing 100000

Every figure is for the FreeScout template's customer rule (email and phone, every address and
number of a customer; names as supporting evidence; threshold 98, review band from 60).

1. **Evaluation sets** (``import_pipelines_tests/dedupe``): the evaluation set the weights were
   chosen on (7,000 records) and the held-out set (6,000 records, another generator, never
   tuned on). Precision and recall of the built-in matcher and of a Splink model trained on the
   same records (DuckDB), against the target and within the batch; recall counts the duplicates
   a person could decide from the data (see ``quality.py``).
2. **Demo generator** (this file's own, labelled ``demo_generator``): ``--incoming`` and
   ``--existing`` contacts, precision and recall over every duplicate, and the time of the
   in-memory engine (``match_against`` plus ``find_duplicates_within``), median of ``--runs``.
3. **Streaming path** (``--staging``, the path imports run): the same contacts staged in a
   throw-away PostgreSQL database (``IMPORT_PIPELINES_PG_URL`` or the embedded server under
   ``.data/bench-postgres``) and ``apply_rule`` timed; its memory growth at that size and at a
   fifth of it shows whether memory stays flat in the table size.

Prints one JSON line (``rows_per_s`` is the demo generator's incoming + existing per second of
the in-memory engine); progress and details go to stderr.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import unicodedata
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from import_pipelines.dedupe import DedupeRule, find_duplicates_within, match_against  # noqa: E402
from import_pipelines.templates.loader import load_template  # noqa: E402

FIRST_NAMES = """
James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard Susan Joseph Jessica
Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa Matthew Betty Anthony Margaret Mark Sandra Donald Ashley
Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Dorothy Kevin Carol Brian Amanda George Melissa
Edward Deborah Ronald Stephanie Timothy Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy
Nicholas Shirley Eric Angela Jonathan Helen Stephen Anna Larry Brenda Justin Pamela Scott Nicole Brandon Emma
Benjamin Samantha Samuel Katherine Gregory Christine Frank Debra Alexander Rachel Raymond Catherine Patrick Carolyn
Jack Janet Dennis Ruth Jerry Maria Tyler Heather Aaron Diane Jose Virginia Adam Julie Henry Joyce Nathan Victoria
José María Zoë Chloé Renée André Søren Björn Jürgen Günter Émile Hélène François Inès Noël Raphaël Élodie Łukasz
Małgorzata Dóra Ágnes Ömer Çağla Şebnem İlkay Niño Íñigo Begoña Sebastián Lucía Mónica Ramón Joaquín Núria Jordi
Anaïs Thaïs Cécile Jérôme Benoît Gaëlle Siobhán Seán Áine Pádraig Oisín Eoghan Ngozi Chinedu Oluwaseun Adebayo
Wei Mei Hiroshi Yuki Haruto Sakura Ji-woo Min-jun Seo-yeon Arjun Priya Ananya Rohan Aarav Diya Vikram Ishaan
Mohammed Fatima Omar Aisha Yusuf Layla Hassan Zainab Ibrahim Amira Dmitri Olga Sergei Natalia Ivan Anastasia
Giulia Matteo Alessandro Francesca Lorenzo Chiara Leonardo Sofia Mateo Valentina Santiago Camila Thiago Isabela
""".split()

LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson
Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young
Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter
Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez
Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter Klein Wolf
Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann
Dubois Durand Lefèvre Leroy Moreau Simon Laurent Michel Garnier Rousseau Bonnet Dupont Lambert Fontaine Chevalier
Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti DeLuca Costa Giordano
García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez Ruíz Hernández Díaz Muñoz
Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez Ramos Gil Ramírez Serrano Blanco Suárez Molina
Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Woźniak Dąbrowski Kozłowski
Jensen Nielsen Hansen Pedersen Andersen Christensen Larsen Sørensen Rasmussen Jørgensen Petersen Madsen Kristensen
Johansson Andersson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Pettersson Jönsson
Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç Aslan Çetin Kara Koç Kurt
O'Brien O'Connor O'Sullivan McCarthy Walsh Byrne Ryan Doyle Kennedy Lynch Murray Quinn Moore McLaughlin Súilleabháin
Okafor Adeyemi Okonkwo Eze Balogun Mensah Owusu Boateng Acheampong Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou
Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Park Choi Jung Kang Cho Yoon Jang Lim
Sharma Singh Kumar Gupta Shah Mehta Reddy Iyer Nair Rao Khan Ahmed Ali Hussain Rahman Ivanov Smirnov Kuznetsov Popov
Silva Santos Oliveira Souza Pereira Lima Carvalho Ferreira Almeida Ribeiro Gonçalves Araújo Rocha Barbosa Cardoso
Vandenberg DeVries VanDijk Bakker Janssen Visser Smit Meijer DeBoer Mulder DeGroot Bos Vos Peters Hendriks
""".split()

COMPANY_WORDS = """
Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent Hooli Vandelay Pied Piper Dunder Mifflin
Nakatomi Oscorp Aperture Black Mesa Blue Sun Gringotts Monarch Northwind Contoso Fabrikam Tailspin Adventure Works
Litware Proseware Lucerne Margie Alpine Coho Fourth Coffee Graphic Design Humongous Trey Research Wide World Importers
Summit Harbor Pioneer Evergreen Redwood Silverline Bluewater Ironclad Brightpath Keystone Lighthouse Cornerstone
Northstar Riverbend Oakridge Maplewood Granite Falcon Beacon Meridian Horizon Sterling Crescent Apex Vertex Zenith
""".split()
COMPANY_SUFFIXES = ["Inc", "Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Group", "Corp", "Co", "AG", "BV", "Labs", "Partners"]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de", "web.de", "orange.fr",
             "libero.it", "proton.me", "aol.com", "mail.ru", "yandex.ru", "qq.com", "naver.com"]
PHONE_FORMATS = ["({a}) {e}-{l}", "{a}-{e}-{l}", "+1 {a} {e} {l}", "{a}.{e}.{l}", "1-{a}-{e}-{l}",
                 "+1 ({a}) {e}-{l}", "{a}{e}{l}", "+1{a}{e}{l}", "001 {a} {e} {l}"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def ascii_fold(text: str) -> str:
    """Drop accents (for email addresses, which rarely carry them)."""
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if not unicodedata.combining(c)).replace("ł", "l").replace("ø", "o")


def make_people(n: int, rng: np.random.Generator, *, used_emails: set[str], companies: list[str]) -> pd.DataFrame:
    """``n`` distinct people with a unique email and phone each."""
    first = rng.choice(FIRST_NAMES, n)
    last = rng.choice(LAST_NAMES, n)
    second_last = rng.random(n) < 0.05
    last = np.where(second_last, np.char.add(np.char.add(last, "-"), rng.choice(LAST_NAMES, n)), last)
    company_idx = rng.integers(0, len(companies), n)
    has_company = rng.random(n) < 0.7
    pattern = rng.integers(0, 5, n)
    free = rng.random(n) < 0.6
    suffix_digits = rng.random(n) < 0.4
    free_domain = rng.choice(FREE_MAIL, n)
    emails = []
    for k in range(n):
        f = ascii_fold(first[k]).lower().replace(" ", "").replace("'", "")
        l = ascii_fold(last[k]).lower().replace(" ", "").replace("'", "")
        local = [f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{l}.{f}"][pattern[k]]
        if suffix_digits[k]:
            local += str(rng.integers(1, 999))
        if free[k] or not has_company[k]:
            domain = free_domain[k]
        else:
            domain = "".join(ch for ch in ascii_fold(companies[company_idx[k]]).lower() if ch.isalnum())[:14] + ".com"
        email = f"{local}@{domain}"
        while email in used_emails:
            local += str(rng.integers(0, 10))
            email = f"{local}@{domain}"
        used_emails.add(email)
        emails.append(email)
    area = rng.integers(201, 990, n)
    exchange = rng.integers(200, 1000, n)
    line = rng.integers(0, 10000, n)
    phone_digits = [f"{a:03d}{e:03d}{l:04d}" for a, e, l in zip(area, exchange, line)]
    people = pd.DataFrame({
        "first_name": first, "last_name": last, "email": emails, "phone_digits": phone_digits,
        "company": np.where(has_company, np.array(companies, dtype=object)[company_idx], None),
    })
    # Phone numbers are random, so a rare collision is made unique here (one person, one line).
    people = people.drop_duplicates("phone_digits", ignore_index=True)
    return people


def format_phone(digits: str, rng: np.random.Generator) -> str:
    """One of the usual ways to write a NANP number."""
    return PHONE_FORMATS[rng.integers(len(PHONE_FORMATS))].format(a=digits[:3], e=digits[3:6], l=digits[6:])


def typo(text: str, rng: np.random.Generator) -> str:
    """One substitution, deletion, insertion or transposition at a random letter position."""
    if len(text) < 3:
        return text
    pos = int(rng.integers(1, len(text) - 1))
    kind = int(rng.integers(4))
    letter = LETTERS[rng.integers(26)]
    if kind == 0:
        return text[:pos] + letter + text[pos + 1:]
    if kind == 1:
        return text[:pos] + text[pos + 1:]
    if kind == 2:
        return text[:pos] + letter + text[pos:]
    return text[:pos - 1] + text[pos] + text[pos - 1] + text[pos + 1:]


def recase(text: str, rng: np.random.Generator) -> str:
    """Upper, lower or title case."""
    return [text.upper(), text.lower(), text.title()][rng.integers(3)]


def pad(text: str, rng: np.random.Generator) -> str:
    """Extra spaces around and inside."""
    return "  " + text.replace(" ", "   ") + " " if rng.random() < 0.5 else text + "  "


def noisy_copy(person: dict, rng: np.random.Generator) -> dict:
    """A realistic second record of the same person from another system."""
    first, last = person["first_name"], person["last_name"]
    email = person["email"]
    company = person["company"] if isinstance(person["company"], str) else None
    r = rng.random(12)
    if r[0] < 0.3:
        first, last = recase(first, rng), recase(last, rng)
    if r[1] < 0.35:
        if rng.random() < 0.5:
            first = typo(first, rng)
        else:
            last = typo(last, rng)
    if r[2] < 0.1:
        first, last = typo(first, rng), typo(last, rng)
    if r[3] < 0.2:
        first, last = ascii_fold(first), ascii_fold(last)
    elif r[3] < 0.3:
        first, last = unicodedata.normalize("NFD", first), unicodedata.normalize("NFD", last)
    if r[4] < 0.1:
        first, last = last, first
    if r[5] < 0.3:
        first, last = pad(first, rng), pad(last, rng)
    local, _, domain = email.partition("@")
    if r[6] < 0.3:
        local = typo(local, rng)
    elif r[6] < 0.4:
        local = typo(typo(local, rng), rng)
    email = f"{local}@{domain}"
    if r[7] < 0.3:
        email = recase(email, rng)
    if r[8] < 0.2:
        email = pad(email, rng)
    phone = format_phone(person["phone_digits"], rng)
    if r[9] < 0.05:
        email = None
    elif r[9] < 0.1:
        phone = None
    if company is not None and r[10] < 0.2:
        company = company.rsplit(" ", 1)[0] if rng.random() < 0.5 else company.upper()
    elif r[10] < 0.3:
        company = None
    return {"first_name": first, "last_name": last, "email": email, "phone": phone, "company": company}


def clean_copy(person: dict, rng: np.random.Generator) -> dict:
    """The record as the first system holds it."""
    return {"first_name": person["first_name"], "last_name": person["last_name"], "email": person["email"],
            "phone": format_phone(person["phone_digits"], rng), "company": person["company"]}


def generate(*, incoming: int, existing: int, duplicate_fraction: float, within_fraction: float,
             seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labelled incoming and existing frames; column ``entity`` is the ground truth."""
    rng = np.random.default_rng(seed)
    companies = sorted({f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
                        for _ in range(max(50, (incoming + existing) // 40))})
    n_dup = min(int(round(incoming * duplicate_fraction)), existing)
    n_within = int(round(incoming * within_fraction))
    n_new = incoming - n_dup - n_within
    used: set[str] = set()
    people = make_people(int((existing + n_new) * 1.02) + 10, rng, used_emails=used, companies=companies)
    people["entity"] = np.arange(len(people))
    existing_people = people.iloc[:existing]
    new_people = people.iloc[existing:existing + n_new]

    existing_rows = [clean_copy(p, rng) for p in existing_people.to_dict("records")]
    existing_df = pd.DataFrame(existing_rows)
    existing_df["entity"] = existing_people["entity"].to_numpy()
    existing_df["id"] = np.arange(1, len(existing_df) + 1)
    missing_email = rng.random(len(existing_df)) < 0.03
    existing_df.loc[missing_email, "email"] = None

    dup_people = existing_people.iloc[rng.choice(len(existing_people), n_dup, replace=False)]
    rows = [noisy_copy(p, rng) | {"entity": p["entity"]} for p in dup_people.to_dict("records")]
    rows += [clean_copy(p, rng) | {"entity": p["entity"]} for p in new_people.to_dict("records")]
    twins = new_people.iloc[rng.choice(len(new_people), n_within, replace=False)] if n_within else new_people.iloc[:0]
    rows += [noisy_copy(p, rng) | {"entity": p["entity"]} for p in twins.to_dict("records")]
    incoming_df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    incoming_df["id"] = np.arange(1, len(incoming_df) + 1)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    incoming_df["updated_at"] = start + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, len(incoming_df)), unit="s")
    return incoming_df, existing_df


def evaluate(incoming_df: pd.DataFrame, existing_df: pd.DataFrame, *, matches, groups) -> dict[str, float | int]:
    """Precision, recall and F1 over both tasks (see the module docstring)."""
    entity_in = dict(zip(incoming_df["id"], incoming_df["entity"]))
    entity_ex = dict(zip(existing_df["id"], existing_df["entity"]))
    existing_entities = set(existing_df["entity"])

    tp = fp = 0
    for match in matches.matches:
        if entity_in[match.record_id] == entity_ex[match.duplicate_of]:
            tp += 1
        else:
            fp += 1
    truth = int(incoming_df["entity"].isin(existing_entities).sum())

    for dup in groups.duplicates:
        if entity_in[dup.record_id] == entity_in[dup.duplicate_of]:
            tp += 1
        else:
            fp += 1
    counts = incoming_df["entity"].value_counts()
    truth += int((counts[counts > 1] - 1).sum())

    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / truth if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "duplicates_found": tp + fp}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def shipped_rule(strategy: str) -> DedupeRule:
    """The FreeScout template's customer rule, under ``strategy``."""
    return load_template("freescout").entities["customer_users"].dedupe.model_copy(update={"strategy": strategy})


def evaluation_sets(rule: DedupeRule, *, splink: bool) -> dict[str, dict]:
    """Built-in and Splink figures on the evaluation set and the held-out set."""
    from import_pipelines_tests.dedupe import evaluation_set, holdout_set
    from import_pipelines_tests.dedupe.quality import builtin_quality

    report = {}
    for name, generator in (("evaluation_set", evaluation_set), ("holdout_set", holdout_set)):
        data = generator.generate()
        entry: dict = {"records": len(data.existing) + len(data.incoming),
                       "builtin": {task: q.as_dict() for task, q in builtin_quality(data, rule).items()}}
        progress(f"{name}: built-in {entry['builtin']}")
        if splink:
            from import_pipelines_tests.dedupe.splink_model import splink_quality

            figures, seconds = splink_quality(data, threshold=rule.threshold)
            entry["splink"] = {task: q.as_dict() for task, q in figures.items()} | seconds
            progress(f"{name}: splink {entry['splink']}")
        report[name] = entry
    return report


def demo_timing(incoming_df: pd.DataFrame, existing_df: pd.DataFrame, rule: DedupeRule, *, runs: int) -> dict:
    """The in-memory engine on the demo generator's contacts: quality, and the median of ``runs`` timings."""
    from import_pipelines.dedupe.normalize import normalize_values

    features = ["id", "first_name", "last_name", "email", "phone", "updated_at"]
    incoming_input, existing_input = incoming_df[features], existing_df[features[:-1]]
    seconds, reference, found = [], [], None
    for run in range(runs):
        # the reference, timed beside each run: normalising the compared columns of both tables
        # once (what any matcher must do), so that a loaded machine shows in both figures
        started = time.perf_counter()
        for frame in (incoming_input, existing_input):
            for name in ("email", "phone", "first_name", "last_name"):
                normalize_values(frame[name], kind=rule.kind_of(name))
        reference.append(time.perf_counter() - started)
        started = time.perf_counter()
        matches = match_against(incoming_input, existing_input, rule, incoming_id="id", existing_id="id")
        groups = find_duplicates_within(incoming_input, rule, id_column="id", updated_column="updated_at")
        seconds.append(time.perf_counter() - started)
        progress(f"demo generator, run {run + 1} of {runs}: {seconds[-1]:.2f} s (normalising alone {reference[-1]:.2f} s)")
        found = (matches, groups)
    matches, groups = found
    quality = evaluate(incoming_df, existing_df, matches=matches, groups=groups)
    median = statistics.median(seconds)
    return {"incoming": len(incoming_df), "existing": len(existing_df), **quality,
            "pairs_compared": matches.pairs_compared + groups.pairs_compared,
            "review_pairs": len(matches.review) + len(groups.review), "seconds": round(median, 3),
            "seconds_runs": [round(x, 3) for x in seconds],
            "ratio_to_normalising": round(statistics.median(s / r for s, r in zip(seconds, reference)), 1),
            "rows_per_s": round((len(incoming_df) + len(existing_df)) / median), "peak_rss_mb": peak_rss_mb()}


class RssSampler:
    """The growth of the resident set while the ``with`` block runs, sampled every 20 ms (Linux)."""

    def __enter__(self) -> RssSampler:
        import threading

        self._page = resource.getpagesize()
        self._start = self._now()
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _now(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._now())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._now())

    @property
    def growth_mb(self) -> float:
        """Peak minus starting resident set, in MB."""
        return round((self._peak - self._start) / 2**20, 1)


def streaming(*, incoming: int, existing: int, duplicate_fraction: float, within_fraction: float, seed: int,
              strategy: str) -> dict:
    """``apply_rule`` over the demo contacts staged in PostgreSQL, in a process of its own.

    One process generates and loads the contacts; a fresh one runs the rule, so that the growth
    of its peak RSS is what the rule held, neither what an earlier measurement left behind nor
    less than that because the rule reused the memory the generated frames had freed.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from import_pipelines.db import drop_database
    from import_pipelines.settings import server_url

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        url, name = child.submit(_stage_demo, incoming=incoming, existing=existing,
                                 duplicate_fraction=duplicate_fraction, within_fraction=within_fraction,
                                 seed=seed).result()
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
            return {"rows": incoming + existing} | child.submit(_apply_demo_rule, url=url, strategy=strategy).result()
    finally:
        drop_database(server_url("bench-postgres"), name)


def _stage_demo(*, incoming: int, existing: int, duplicate_fraction: float, within_fraction: float,
                seed: int) -> tuple[str, str]:
    """Generate the contacts and load them (COPY) into a target table and a staging table of a fresh
    database; returns its URL and name."""
    from import_pipelines.db import connect, ensure_database
    from import_pipelines.settings import server_url

    incoming_df, existing_df = generate(incoming=incoming, existing=existing, duplicate_fraction=duplicate_fraction,
                                        within_fraction=within_fraction, seed=seed)
    name = f"bench_dedupe_{uuid.uuid4().hex[:10]}"
    url = ensure_database(server_url("bench-postgres"), name)
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE people (id bigint PRIMARY KEY, source_system text, external_id text,"
                     " email text, phone text, first_name text, last_name text)")
        conn.execute("CREATE UNLOGGED TABLE stg (_rn bigint GENERATED ALWAYS AS IDENTITY, sid text, email text,"
                     " phone text, first_name text, last_name text, updated_at timestamptz, _dup_of text,"
                     " _error text, _match_tid text, _confidence real, _match jsonb)")
        with conn.cursor().copy("COPY people FROM STDIN") as copy:
            for row in existing_df[["id", "email", "phone", "first_name", "last_name"]].itertuples(index=False):
                copy.write_row((row.id, "legacy", f"L{row.id}", row.email, row.phone, row.first_name,
                                row.last_name))
        with conn.cursor().copy("COPY stg (sid, email, phone, first_name, last_name, updated_at) FROM STDIN") as copy:
            for row in incoming_df.itertuples(index=False):
                copy.write_row((str(row.id), row.email, row.phone, row.first_name, row.last_name, row.updated_at))
        # as the dedupe step finds its staging table (engine.staging.index_staging): records are read by _rn
        conn.execute("CREATE INDEX ON stg (_rn)")
        conn.execute("ANALYZE people")
        conn.execute("ANALYZE stg")
    return url, name


def _apply_demo_rule(*, url: str, strategy: str) -> dict:
    """Run the rule as the dedupe step runs it, a second session streaming the rows; time, memory, findings."""
    import os

    from import_pipelines.db import connect, ident
    from import_pipelines.dedupe.staging import apply_rule
    from import_pipelines.settings import SERVER_URL_ENV

    rule = shipped_rule(strategy)
    with connect(url, autocommit=True) as conn, connect(url, read_only=True) as reader, conn.transaction():
        with RssSampler() as rss:
            started = time.perf_counter()
            outcome = apply_rule(conn, staging=ident("stg"), target=ident("people"), primary_key="id",
                                 natural_key=("source_system", "external_id"), source_system="bench",
                                 source_id="sid", rule=rule, survivor_updated="updated_at", reader=reader)
            seconds = time.perf_counter() - started
        digest = findings_digest(conn, outcome)
    return {"seconds": round(seconds, 2), "rss_growth_mb": rss.growth_mb, "within": outcome.within,
            "against_target": outcome.against_target, "review_pairs": len(outcome.review),
            "findings_sha256": digest, "server": "configured" if os.environ.get(SERVER_URL_ENV) else "embedded"}


def findings_digest(conn, outcome) -> str:
    """A sha256 over every finding written back to the staging table and every review pair, in order:
    two versions of the rule agree on the results when their digests are equal."""
    import hashlib

    digest = hashlib.sha256()
    for row in conn.execute("SELECT _rn, _dup_of, _match_tid, _confidence, _match::text FROM stg"
                            " WHERE _dup_of IS NOT NULL OR _match_tid IS NOT NULL ORDER BY _rn"):
        digest.update(repr(row).encode())
    for _, pair in outcome.review.read(conn):
        digest.update(repr((pair.source_id, pair.candidate_kind, pair.candidate, pair.confidence,
                            json.dumps(pair.fields, sort_keys=True))).encode())
    confidences = outcome.confidences
    digest.update(repr((outcome.within, outcome.against_target, outcome.of_loaded, outcome.pairs_compared,
                        confidences.count, round(confidences.total, 6), confidences.buckets)).encode())
    return digest.hexdigest()[:16]


def streaming_only(sizes: list[int], *, runs: int, **options: object) -> None:
    """``--streaming-sizes``: only the streaming path, at each size (incoming = existing), ``runs`` times
    each in a fresh process; one JSON line per run, then the medians."""
    for size in sizes:
        results = []
        for _ in range(runs):
            results.append(streaming(incoming=size, existing=size, **options))
            print(json.dumps({"size": size} | results[-1]), flush=True)
        print(json.dumps({"size": size, "median_seconds": statistics.median(r["seconds"] for r in results),
                          "median_rss_growth_mb": statistics.median(r["rss_growth_mb"] for r in results)}), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incoming", type=int, default=2000)
    parser.add_argument("--existing", type=int, default=2000)
    parser.add_argument("--strategy", choices=["fuzzy", "exact", "case_insensitive"], default="fuzzy")
    parser.add_argument("--duplicate-fraction", type=float, default=0.3)
    parser.add_argument("--within-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the in-memory engine (the median counts)")
    parser.add_argument("--no-splink", action="store_true", help="skip the Splink model")
    parser.add_argument("--no-staging", action="store_true", help="skip the streaming path (needs PostgreSQL)")
    parser.add_argument("--streaming-sizes", help="only the streaming path, at these sizes (incoming = existing),"
                        " e.g. 20000,100000,200000: its time, memory growth and a digest of its findings")
    parser.add_argument("--streaming-runs", type=int, default=1, help="runs per size with --streaming-sizes")
    args = parser.parse_args(argv)
    if not (args.duplicate_fraction >= 0 and args.within_fraction >= 0
            and args.duplicate_fraction + args.within_fraction <= 1):
        parser.error("--duplicate-fraction and --within-fraction must be >= 0 and add up to at most 1")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    if args.streaming_sizes:
        streaming_only([int(size) for size in args.streaming_sizes.split(",")], runs=args.streaming_runs,
                       duplicate_fraction=args.duplicate_fraction, within_fraction=args.within_fraction,
                       seed=args.seed, strategy=args.strategy)
        return
    rule = shipped_rule(args.strategy)
    report: dict = {"rule": {"template": "freescout", "entity": "customer_users", "strategy": rule.strategy,
                             "threshold": rule.threshold, "review_threshold": rule.review_from}}
    report |= evaluation_sets(rule, splink=not args.no_splink)

    incoming_df, existing_df = generate(incoming=args.incoming, existing=args.existing,
                                        duplicate_fraction=args.duplicate_fraction,
                                        within_fraction=args.within_fraction, seed=args.seed)
    report["demo_generator"] = demo_timing(incoming_df, existing_df, rule, runs=args.runs)
    progress(f"demo generator: {report['demo_generator']}")
    if not args.no_staging:
        sizes = {"duplicate_fraction": args.duplicate_fraction, "within_fraction": args.within_fraction,
                 "seed": args.seed, "strategy": args.strategy}
        small = streaming(incoming=max(1, args.incoming // 5), existing=max(1, args.existing // 5), **sizes)
        full = streaming(incoming=args.incoming, existing=args.existing, **sizes)
        report["streaming"] = full | {"rss_growth_mb_at_a_fifth": small["rss_growth_mb"],
                                      "seconds_at_a_fifth": small["seconds"]}
        progress(f"streaming: {report['streaming']}")
    report["rows_per_s"] = report["demo_generator"]["rows_per_s"]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
