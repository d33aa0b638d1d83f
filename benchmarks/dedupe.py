"""Benchmark of the dedupe engine on a labelled, generated set of contacts.

    python benchmarks/dedupe.py --incoming 100000 --existing 100000 --strategy fuzzy

Existing people have first/last names (a varied list with accented names), email, phone and
often a company. Incoming records are: a ``--duplicate-fraction`` of noisy copies of existing
people (case changes, extra whitespace, one or two letter typos in names and emails, accents
dropped or decomposed, reformatted phones, swapped first/last names, now and then a missing
email or phone or a reworded company); a ``--within-fraction`` of noisy second copies of new
people in the same batch; and new people, some sharing a name or a company with others.

Timed: ``match_against(incoming, existing)`` plus ``find_duplicates_within(incoming)``.
``rows_per_s`` is (incoming + existing) / seconds. Precision and recall count both tasks: a
record flagged as a duplicate of the right entity is a true positive, of the wrong one (or when
it has none) a false positive; a record that has a duplicate partner but is not flagged
correctly is a false negative. Prints one JSON line (details on stderr with ``--verbose``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from import_pipelines.dedupe import DedupeRule, find_duplicates_within, match_against  # noqa: E402

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


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, generate, time, evaluate, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incoming", type=int, default=2000)
    parser.add_argument("--existing", type=int, default=2000)
    parser.add_argument("--strategy", choices=["fuzzy", "exact", "case_insensitive"], default="fuzzy")
    parser.add_argument("--duplicate-fraction", type=float, default=0.3)
    parser.add_argument("--within-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="timings and capped blocks on stderr")
    args = parser.parse_args(argv)
    if not (args.duplicate_fraction >= 0 and args.within_fraction >= 0
            and args.duplicate_fraction + args.within_fraction <= 1):
        parser.error("--duplicate-fraction and --within-fraction must be >= 0 and add up to at most 1")

    generated_at = time.perf_counter()
    incoming_df, existing_df = generate(incoming=args.incoming, existing=args.existing,
                                        duplicate_fraction=args.duplicate_fraction,
                                        within_fraction=args.within_fraction, seed=args.seed)
    generated_in = time.perf_counter() - generated_at
    rule = DedupeRule(strategy=args.strategy, primary=["email", "phone"],
                      secondary=["first_name", "last_name", "company"])
    features = ["id", "first_name", "last_name", "email", "phone", "company", "updated_at"]
    incoming_input = incoming_df[features]
    existing_input = existing_df[features[:-1]]

    started = time.perf_counter()
    matches = match_against(incoming_input, existing_input, rule, incoming_id="id", existing_id="id")
    matched_at = time.perf_counter()
    groups = find_duplicates_within(incoming_input, rule, id_column="id", updated_column="updated_at")
    seconds = time.perf_counter() - started

    quality = evaluate(incoming_df, existing_df, matches=matches, groups=groups)
    print(json.dumps({
        "strategy": args.strategy, "incoming": len(incoming_df), "existing": len(existing_df),
        "seconds": round(seconds, 3), "rows_per_s": round((len(incoming_df) + len(existing_df)) / seconds),
        "pairs_compared": matches.pairs_compared + groups.pairs_compared,
        "precision": quality["precision"], "recall": quality["recall"], "f1": quality["f1"],
        "duplicates_found": quality["duplicates_found"],
    }))
    if args.verbose:
        print(json.dumps({
            "generate_s": round(generated_in, 2), "match_against_s": round(matched_at - started, 3),
            "within_s": round(seconds - (matched_at - started), 3), "matches": len(matches),
            "within_duplicates": len(groups), "pairs_against": matches.pairs_compared,
            "pairs_within": groups.pairs_compared, "capped_against": len(matches.capped_blocks),
            "capped_within": len(groups.capped_blocks),
            "capped_examples": dict(list(matches.capped_blocks.items())[:5]),
        }), file=sys.stderr)


if __name__ == "__main__":
    main()
