"""A deterministic generator of a demo FreeScout 1.8 database in PostgreSQL.

The tables keep the column names, types and constant values of FreeScout's own Laravel
migrations and models (``App\\Customer``, ``App\\Email``, ``App\\User``, ``App\\Conversation``,
``App\\Thread``; ids are bigint where Laravel's ``increments()`` gives integer) plus the Time
Tracking module's ``timelogs`` table, and the data carries the dirt
a real help desk accumulates: near-duplicate customers, customers without or with only a home
address, missing and non-Latin names, inconsistently spelled companies, dangling references,
drafts, spam, running timers. Every kind of dirt is a module constant below, so tests and demos
can state what to expect.

Speed and determinism: all rows are built with set-based ``INSERT ... SELECT`` over
``generate_series``, and every pseudo-random choice is a hash of (row number, seed, purpose)
(``hashtextextended``), never ``random()``. Ids are explicit and timestamps count from a fixed
epoch, so the same ``(customers, seed)`` gives byte-identical tables whatever plan the server picks.

Proportions for ``customers = C`` (see :func:`customers_for_rows` for the import arithmetic):
3 mailboxes, ``max(5, C // 200)`` users, about 1.4·C emails, 2·C conversations, about 3 threads
per conversation and C timelogs (0.5 per conversation).
"""

from __future__ import annotations

import logging
import math
import time

import psycopg
from psycopg import ClientCursor, sql

from import_pipelines.db import connect, ident

log = logging.getLogger(__name__)

# --- FreeScout constants (app/*.php; checked against the public repository) ----------------------
EMAIL_TYPE_WORK, EMAIL_TYPE_HOME, EMAIL_TYPE_OTHER = 1, 2, 3  # App\Email::TYPE_*
PHONE_TYPE_WORK, PHONE_TYPE_HOME, PHONE_TYPE_OTHER, PHONE_TYPE_MOBILE = 1, 2, 3, 4  # App\Customer::PHONE_TYPE_*
PHONE_TYPE_FAX, PHONE_TYPE_PAGER = 5, 6
SOCIAL_TYPE_LINKEDIN = 3  # App\Customer::SOCIAL_TYPE_LINKEDIN
USER_ROLE_USER, USER_ROLE_ADMIN = 1, 2  # App\User::ROLE_*
USER_TYPE_USER, USER_TYPE_ROBOT = 1, 2  # App\User::TYPE_*
USER_STATUS_ACTIVE, USER_STATUS_DISABLED, USER_STATUS_DELETED = 1, 2, 3  # App\User::STATUS_*
USER_INVITE_ACTIVATED, USER_INVITE_SENT, USER_INVITE_NOT_INVITED = 1, 2, 3  # App\User::INVITE_STATE_*
USER_TIME_FORMAT_24 = 2  # App\User::TIME_FORMAT_24
CONV_TYPE_EMAIL, CONV_TYPE_PHONE, CONV_TYPE_CHAT = 1, 2, 3  # App\Conversation::TYPE_*
STATUS_ACTIVE, STATUS_PENDING, STATUS_CLOSED, STATUS_SPAM = 1, 2, 3, 4  # Conversation/Thread::STATUS_*
STATUS_NOCHANGE = 6  # App\Thread::STATUS_NOCHANGE
CONV_STATE_DRAFT, CONV_STATE_PUBLISHED, CONV_STATE_DELETED = 1, 2, 3  # App\Conversation::STATE_*
THREAD_STATE_DRAFT, THREAD_STATE_PUBLISHED = 1, 2  # App\Thread::STATE_*
PERSON_CUSTOMER, PERSON_USER = 1, 2  # source_via / last_reply_from (Conversation/Thread::PERSON_*)
SOURCE_TYPE_EMAIL, SOURCE_TYPE_WEB = 1, 2  # Conversation/Thread::SOURCE_TYPE_*
THREAD_TYPE_CUSTOMER, THREAD_TYPE_MESSAGE, THREAD_TYPE_NOTE = 1, 2, 3  # App\Thread::TYPE_*
THREAD_SUBTYPE_PHONE = 2  # App\Thread::SUBTYPE_PHONE

# --- Shape -----------------------------------------------------------------------------------------
EPOCH = "2019-01-01 00:00:00"  # customers and conversations are spread over SPAN_SECONDS from here
SPAN_SECONDS = 5 * 365 * 86_400
MAILBOXES = (("Support", "support@helpdesk.example"), ("Billing", "billing@helpdesk.example"),
             ("Sales", "sales@helpdesk.example"))
CONVERSATIONS_PER_CUSTOMER = 2
TIMELOGS_PER_CONVERSATION = 0.5
MAX_THREADS_PER_CONVERSATION = 5  # uniform 1..5, so about 3 per conversation
MIN_USERS, CUSTOMERS_PER_USER = 5, 200  # users = max(5, C // 200); the last one is a robot
MIN_COMPANIES, CUSTOMERS_PER_COMPANY = 20, 20  # company names = max(20, C // 20)
CUSTOMER_ID_HOLE_EVERY = 50  # after every 50 customers one id is missing (a deleted customer)
DUPLICATE_GAP_DIVISOR = 200  # a duplicate is created C // 200 customers after its original

# --- Dirt: customers (fractions of all customers unless said otherwise) ------------------------------
DUPLICATE_FRACTION = 0.04  # near-duplicates of an earlier customer (name and email); they fall in
#                            alternate blocks of C // 200 indexes, so an original is never a duplicate
DUPLICATE_CASE_SHARE = 0.40  # ...of duplicates: other case ("JOHN SMITH", "John.Smith12@Acme.Example")
DUPLICATE_SPACE_SHARE = 0.30  # ...surrounding / inner whitespace in name and email
#                              the rest (0.30): a one-letter typo (a dropped letter in the name,
#                              a wrong letter in the email's first-name part)
NO_EMAIL_FRACTION = 0.05  # no email at all
HOME_ONLY_FRACTION = 0.10  # only a home email (type 2)
HOME_AND_WORK_FRACTION = 0.30  # home and work email, the home one with the lower id
WORK_AND_OTHER_FRACTION = 0.08  # work and "other" (type 3) email
THREE_EMAILS_FRACTION = 0.05  # work, home, other (work first); the rest has one work email
LAST_NAME_NULL_FRACTION = 0.03  # last_name NULL
LAST_NAME_EMPTY_FRACTION = 0.02  # last_name ''
ACCENTED_NAME_FRACTION = 0.04  # José García, Zoë Dubois, Łukasz Wiśniewski ...
NON_LATIN_NAME_FRACTION = 0.02  # 李娜, Иван, محمد ...
COMPANY_FRACTION = 0.60  # customers with a company
COMPANY_SKEW = 1.5  # slot = floor(K * u^1.5): a few big customers, a long tail of small ones
COMPANY_VARIANT_FRACTION = 0.15  # ...of those: the company spelled " acme corp ", "ACME CORP", "Acme  Corp"
PHONES_NULL_FRACTION = 0.35  # phones NULL
PHONES_EMPTY_FRACTION = 0.05  # phones '[]'
PHONES_MULTI_FRACTION = 0.10  # two or three numbers; the rest has one
WEBSITE_FRACTION = 0.15
SOCIAL_PROFILE_FRACTION = 0.05
JOB_TITLE_FRACTION = 0.40
ADDRESS_FRACTION = 0.40
NOTES_FRACTION = 0.05

# --- Dirt: conversations, threads, timelogs (fractions of conversations / timelogs) -----------------
DRAFT_FRACTION = 0.02  # state 1 (draft)
DELETED_FRACTION = 0.02  # state 3 (deleted)
SPAM_FRACTION = 0.03  # status 4 (spam), published
USER_STARTED_FRACTION = 0.06  # ...of the other conversations: started by an agent, no customer thread
CONV_CUSTOMER_NULL_FRACTION = 0.01  # customer_id NULL
CONV_CUSTOMER_MISSING_FRACTION = 0.01  # customer_id points at a deleted customer (an id hole)
ASSIGNEE_NULL_FRACTION = 0.15  # user_id NULL (unassigned)
ASSIGNEE_MISSING_FRACTION = 0.01  # user_id points at a user that does not exist
NOTE_FRACTION = 0.15  # conversations with two or more threads whose last thread is a note
TIMELOG_RUNNING_FRACTION = 0.05  # finished false (half of them paused)
TIMELOG_MISSING_CONVERSATION_FRACTION = 0.01  # conversation_id points at no conversation
TIMELOG_WHOLE_MINUTES_FRACTION = 0.30  # manual entries in whole minutes; timer entries are any second

# Importable conversations: not draft, not deleted, not spam (the three buckets are disjoint).
IMPORTABLE_CONVERSATION_FRACTION = 1 - DRAFT_FRACTION - DELETED_FRACTION - SPAM_FRACTION

TABLES = ("mailboxes", "users", "customers", "emails", "conversations", "threads", "timelogs")

# --- Vocabularies ----------------------------------------------------------------------------------
FIRST_NAMES = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra",
    "Paul", "Ashley", "Steven", "Emily", "Andrew", "Donna", "Kenneth", "Michelle", "Joshua", "Carol",
    "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca",
    "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Kathleen", "Mary Ann", "Anne-Marie",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "O'Brien", "van der Berg", "McDonald", "Schmidt", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
]
# (first, last, ASCII first, ASCII last): the ASCII spelling is what such people use in addresses.
ACCENTED_NAMES = [
    ("José", "García", "jose", "garcia"), ("Zoë", "Dubois", "zoe", "dubois"),
    ("Łukasz", "Wiśniewski", "lukasz", "wisniewski"), ("François", "Lefèvre", "francois", "lefevre"),
    ("Søren", "Kierkegård", "soren", "kierkegard"), ("Björn", "Ångström", "bjorn", "angstrom"),
    ("Chloé", "Müller", "chloe", "muller"), ("Ana", "Núñez", "ana", "nunez"),
    ("Renée", "Jönsson", "renee", "jonsson"), ("Małgorzata", "Wójcik", "malgorzata", "wojcik"),
    ("Jürgen", "Groß", "jurgen", "gross"), ("Antonín", "Dvořák", "antonin", "dvorak"),
]
NON_LATIN_NAMES = [
    ("李娜", "王", "lina", "wang"), ("伟", "张", "wei", "zhang"), ("Иван", "Петров", "ivan", "petrov"),
    ("Ольга", "Смирнова", "olga", "smirnova"), ("محمد", "حسن", "mohammed", "hassan"),
    ("فاطمة", "علي", "fatima", "ali"), ("さくら", "佐藤", "sakura", "sato"),
    ("Γιώργος", "Παπαδόπουλος", "giorgos", "papadopoulos"), ("민준", "김", "minjun", "kim"),
    ("יעל", "כהן", "yael", "cohen"), ("芳", "刘", "fang", "liu"), ("Дмитрий", "Иванов", "dmitry", "ivanov"),
    ("أحمد", "يوسف", "ahmed", "youssef"), ("हर्ष", "शर्मा", "harsh", "sharma"), ("ひろし", "鈴木", "hiroshi", "suzuki"),
    ("Ελένη", "Νικολάου", "eleni", "nikolaou"),
]
COMPANY_WORDS = [
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne", "Soylent",
    "Hooli", "Vandelay", "Pied Piper", "Dunder Mifflin", "Massive Dynamic", "Oscorp", "Monarch", "Aperture",
    "Black Mesa", "Northwind", "Contoso", "Fabrikam", "Litware", "Proseware", "Adventure Works", "Tailspin",
    "Woodgrove", "Fourth Coffee", "Blue Yonder", "Wide World",
]
COMPANY_KINDS = [
    "Corp", "Inc", "Ltd", "GmbH", "LLC", "Group", "Labs", "Systems", "Solutions", "Holdings",
    "Industries", "Logistics", "Consulting", "Software", "Partners", "Media", "Foods", "Energy", "Health", "Bank",
]
COMPANY_REGIONS = ["Europe", "Asia", "Americas", "Nordic", "UK", "DACH", "Iberia", "Benelux", "APAC", "MEA"]
PERSONAL_DOMAINS = ["example.com", "example.net", "example.org", "mail.example", "inbox.example"]
JOB_TITLES = ["CEO", "CTO", "Office Manager", "Accountant", "Developer", "Head of Support", "Buyer",
              "Marketing Lead", "Operations", "Founder", "IT Admin", "Sales Manager"]
STREETS = ["Main Street", "High Street", "Oak Avenue", "Hauptstraße", "Rue de la Paix", "Calle Mayor",
           "ul. Długa", "Station Road", "Park Lane", "Elm Street"]
# (country, city, state): parallel lists keep a city in its own country.
LOCATIONS = [
    ("US", "New York", "NY"), ("US", "Austin", "TX"), ("US", "Seattle", "WA"), ("GB", "London", None),
    ("DE", "Berlin", None), ("FR", "Paris", None), ("ES", "Madrid", None), ("PL", "Kraków", None),
    ("CN", "Shanghai", None), ("RU", "Moscow", None), ("EG", "Cairo", None), ("CA", "Toronto", "ON"),
    ("AU", "Sydney", "NSW"), ("BR", "São Paulo", "SP"), ("JP", "Tokyo", None), ("SE", "Malmö", None),
]
NOTES = ["VIP customer, answer within the hour.", "Prefers phone calls.", "Reseller - see contract 2021.",
         "Do not send marketing emails.", "Migrated from the old help desk."]
SUBJECTS = [
    "Password reset not working", "Question about my invoice", "Refund request", "Shipping delay",
    "Feature request: dark mode", "Cannot connect to the API", "Billing address change",
    "Order arrived damaged", "How do I export my data?", "Account locked", "Upgrade to the annual plan",
    "Wrong item delivered", "Two-factor authentication problem", "Cancel my subscription",
    "Re: Your support ticket", "Fwd: Payment failed", "Urgent!!! site down", "Invoice copy needed",
    "Change of contact person", "Thank you!",
]
SPAM_SUBJECTS = ["You have WON a prize", "Cheap meds online", "SEO services for your website",
                 "Crypto investment opportunity"]
CUSTOMER_LINES = [
    "Hi, I cannot log in since this morning, the page just reloads.",
    "Hello, could you send me a copy of my last invoice?",
    "The parcel still has not arrived, the tracking has not changed for a week.",
    "Please cancel my subscription at the end of the month.",
    "Your API returns 502 for every request since yesterday.",
    "Is it possible to change the billing address on my account?",
    "I was charged twice for the same order, please refund one payment.",
    "Thanks a lot, that solved it!",
    "The export to CSV is missing the last column.",
    "Can you add my colleague to our account?",
]
AGENT_LINES = [
    "Thanks for reaching out! I have reset your password, please try again.",
    "I have attached a copy of the invoice to this reply.",
    "Sorry for the delay, the carrier confirmed delivery for tomorrow.",
    "Your subscription will end on the last day of this month.",
    "We found the cause and deployed a fix, could you check again?",
    "I have updated the billing address on your account.",
    "The duplicate payment has been refunded, it can take 3-5 business days.",
    "Glad to hear it! I will close this ticket now.",
]
NOTE_LINES = ["Escalated to engineering.", "Customer called, waiting for logs.", "Refund approved by finance.",
              "Possible duplicate of an older ticket."]
PHONE_LINES = ["Phone call: customer asked about renewal pricing.", "Phone call: walked through the setup.",
               "Phone call: left a voicemail."]
SPAM_LINES = ["Congratulations!!! Claim your reward now.", "Best prices on pills, no prescription needed.",
              "We can put your site on the first page of Google."]
TIMEZONES = ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
             "Asia/Shanghai", "Europe/Warsaw"]
LOCALES = ["en", "de", "fr", "es", "pl", "ru", "zh-CN"]


# --- Public API ------------------------------------------------------------------------------------
def create_freescout_schema(conn: psycopg.Connection) -> None:
    """Drop and create the FreeScout tables (with their indexes) in the transaction of ``conn``.

    The caller commits. Foreign keys are deliberately not declared: FreeScout on MySQL usually has
    none, and the generated dirt (dangling customer, user and conversation ids) would violate them.
    """
    _drop_tables(conn)
    _create_tables(conn)
    _create_indexes(conn)


def generate_freescout(url: str, *, customers: int, seed: int = 7) -> dict[str, int]:
    """Build the FreeScout schema and ``customers`` customers' worth of data in database ``url``.

    Replaces existing FreeScout tables, commits, runs VACUUM (ANALYZE) and returns the row count per table.
    The same ``(customers, seed)`` always gives identical table contents.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    started = time.perf_counter()
    params = _parameters(customers)
    counts: dict[str, int] = {}
    with connect(url) as conn:
        # Loading before indexing and with a larger sort memory is what keeps C=250,000 fast.
        conn.execute("SET LOCAL work_mem = '128MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute("SET LOCAL synchronous_commit = off")
        _drop_tables(conn)
        _create_tables(conn)
        _create_hash_functions(conn, seed=seed)
        cur = ClientCursor(conn)  # client-side binding: CREATE TABLE AS cannot take server parameters
        for table, statement in _LOAD_STEPS:
            cur.execute(statement, params)
            if table:
                counts[table] = cur.rowcount
        _create_indexes(conn)
        for table in TABLES:  # ids were explicit, so the sequences must be moved past them
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({t}, 'id'), coalesce(max(id), 0) + 1, false)"
                                 " FROM {table}").format(t=sql.Literal(table), table=ident(table)))
        conn.commit()
        # a settled database, as a live FreeScout is: hint bits set, visibility maps and statistics
        # made now, not by autovacuum in the middle of the first import that reads these tables
        conn.autocommit = True
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(", ").join(ident(t) for t in TABLES)))
    log.info("generated FreeScout demo data (%s customers, seed %s) in %.1f s: %s", customers, seed,
             time.perf_counter() - started, counts)
    return {table: counts[table] for table in TABLES}


def customers_for_rows(rows: int) -> int:
    """Return the number of customers whose generated database gives about ``rows`` imported rows.

    The import reads customers, users, importable conversations (not draft, deleted or spam),
    finished timelogs and distinct companies, so for C customers it reads about::

        C + max(5, C // 200)                          customers, users
          + 2·C · (1 - 0.02 - 0.02 - 0.03)            conversations   = 1.86·C
          + C · (1 - 0.05)                            finished timelogs = 0.95·C
          + used company names ≈ max(20, C // 20)     distinct companies (case/space-normalised)
        ≈ 3.865·C                                      (C = 250,000 -> about 966,000 rows)

    The count is increasing in C, so the result is the C whose expected count is closest.
    """
    if rows <= 0:
        return 1
    low, high = 1, max(2, rows)
    while low < high:  # smallest C whose expected row count reaches ``rows``
        middle = (low + high) // 2
        if _expected_import_rows(middle) < rows:
            low = middle + 1
        else:
            high = middle
    if low > 1 and rows - _expected_import_rows(low - 1) < _expected_import_rows(low) - rows:
        return low - 1
    return low


def change_customers(url: str, customer_ids: list[int], *, suffix: str = " (changed)") -> None:
    """Append ``suffix`` to these customers' last names and move their ``updated_at`` forward.

    ``updated_at`` becomes one second after the newest ``updated_at`` in the table (not now()), so
    the change is visible to an incremental import and the result stays deterministic. Raises
    ``ValueError`` naming the ids that do not exist.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return
    with connect(url) as conn:
        changed = conn.execute(
            "WITH newest AS (SELECT max(updated_at) AS at FROM customers) "
            "UPDATE customers SET last_name = coalesce(last_name, '') || %s, "
            "updated_at = (SELECT at FROM newest) + interval '1 second' "
            "WHERE id = ANY(%s) RETURNING id", (suffix, ids)).fetchall()
        missing = sorted(set(ids) - {row[0] for row in changed})
        if missing:
            conn.rollback()
            raise ValueError(f"no customers with ids {missing}")
        conn.commit()


def add_customers(url: str, count: int) -> list[int]:
    """Append ``count`` new clean customers, each with one work email, and return their ids.

    Names come from the same pools as the generated customers, picked by a hash of the new id;
    emails are ``first.last<id>@signup.example``, a domain the generator never uses, so they
    cannot collide with existing addresses. Timestamps follow the newest ``updated_at``.
    """
    if count <= 0:
        return []
    with connect(url) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, %s)",
            (count,)).fetchall()]
        conn.execute(
            """
            WITH newest AS (SELECT coalesce(max(updated_at), %(epoch)s::timestamp) AS at FROM customers),
            hashed AS (
                SELECT id, hashtextextended(id::text || ':added:first', 0) & 9223372036854775807 AS h_first,
                       hashtextextended(id::text || ':added:last', 0) & 9223372036854775807 AS h_last
                FROM unnest(%(ids)s::bigint[]) AS id
            ), picked AS (
                SELECT id, (%(first)s::text[])[1 + mod(h_first, cardinality(%(first)s::text[]))] AS first_name,
                       (%(last)s::text[])[1 + mod(h_last, cardinality(%(last)s::text[]))] AS last_name
                FROM hashed
            ), inserted AS (
                INSERT INTO customers (id, first_name, last_name, created_at, updated_at)
                SELECT id, first_name, last_name, (SELECT at FROM newest) + interval '1 second',
                       (SELECT at FROM newest) + interval '1 second'
                FROM picked
                RETURNING id
            )
            INSERT INTO emails (customer_id, email, type)
            SELECT p.id,
                   regexp_replace(lower(p.first_name), '[^a-z]', '', 'g') || '.'
                   || regexp_replace(lower(p.last_name), '[^a-z]', '', 'g') || p.id || '@signup.example',
                   %(work)s
            FROM picked p JOIN inserted i ON i.id = p.id
            ORDER BY p.id
            """,
            {"epoch": EPOCH, "first": FIRST_NAMES, "last": LAST_NAMES, "ids": ids, "work": EMAIL_TYPE_WORK})
        conn.commit()
    return ids


# --- Sizes and the import arithmetic ---------------------------------------------------------------
def _user_count(customers: int) -> int:
    return max(MIN_USERS, customers // CUSTOMERS_PER_USER)


def _company_count(customers: int) -> int:
    return max(MIN_COMPANIES, customers // CUSTOMERS_PER_COMPANY)


def _duplicate_gap(customers: int) -> int:
    return max(1, customers // DUPLICATE_GAP_DIVISOR)


def _expected_companies(customers: int) -> float:
    """Expected number of company names in use.

    Slot k of K is drawn with P(k) = ((k+1)/K)^(1/s) - (k/K)^(1/s) (s = COMPANY_SKEW), so among n
    draws it is used with probability about 1 - exp(-n·P(k)).
    """
    slots = _company_count(customers)
    # Duplicates copy their original's company instead of drawing one.
    draws = customers * COMPANY_FRACTION * (1 - DUPLICATE_FRACTION)
    power = 1 / COMPANY_SKEW
    if slots <= 5_000:
        return sum(1 - math.exp(-draws * (((k + 1) / slots) ** power - (k / slots) ** power))
                   for k in range(slots))
    # For many slots the sum is K times an integral over x = k/K (midpoint rule), P ≈ power·x^(power-1)/K.
    steps, per_slot = 5_000, draws / slots
    return slots * sum(1 - math.exp(-per_slot * power * ((j + 0.5) / steps) ** (power - 1))
                       for j in range(steps)) / steps


def _expected_import_rows(customers: int) -> float:
    """Rows the import reads for ``customers`` (see :func:`customers_for_rows`)."""
    conversations = CONVERSATIONS_PER_CUSTOMER * customers
    timelogs = round(TIMELOGS_PER_CONVERSATION * conversations)
    return (customers + _user_count(customers) + conversations * IMPORTABLE_CONVERSATION_FRACTION
            + timelogs * (1 - TIMELOG_RUNNING_FRACTION) + _expected_companies(customers))


def _parameters(customers: int) -> dict[str, object]:
    """Everything the load statements bind: sizes, fractions, constants and vocabularies."""
    users = _user_count(customers)
    conversations = CONVERSATIONS_PER_CUSTOMER * customers
    return {
        "customers": customers, "users": users, "agents": users - 1, "conversations": conversations,
        "timelogs": round(TIMELOGS_PER_CONVERSATION * conversations), "companies": _company_count(customers),
        "gap": _duplicate_gap(customers), "hole": CUSTOMER_ID_HOLE_EVERY,
        "holes": (customers - 1) // CUSTOMER_ID_HOLE_EVERY, "epoch": EPOCH, "span": SPAN_SECONDS,
        "max_threads": MAX_THREADS_PER_CONVERSATION,
        # fractions
        "dup": DUPLICATE_FRACTION, "dup_case": DUPLICATE_CASE_SHARE, "dup_space": DUPLICATE_SPACE_SHARE,
        "no_email": NO_EMAIL_FRACTION, "home_only": HOME_ONLY_FRACTION, "home_work": HOME_AND_WORK_FRACTION,
        "work_other": WORK_AND_OTHER_FRACTION, "three": THREE_EMAILS_FRACTION,
        "last_null": LAST_NAME_NULL_FRACTION, "last_empty": LAST_NAME_EMPTY_FRACTION,
        "accented": ACCENTED_NAME_FRACTION, "non_latin": NON_LATIN_NAME_FRACTION,
        "company": COMPANY_FRACTION, "company_skew": COMPANY_SKEW, "company_variant": COMPANY_VARIANT_FRACTION,
        "phones_null": PHONES_NULL_FRACTION, "phones_empty": PHONES_EMPTY_FRACTION,
        "phones_multi": PHONES_MULTI_FRACTION, "website": WEBSITE_FRACTION, "social": SOCIAL_PROFILE_FRACTION,
        "job_title": JOB_TITLE_FRACTION, "address": ADDRESS_FRACTION, "notes_f": NOTES_FRACTION,
        "draft": DRAFT_FRACTION, "deleted": DELETED_FRACTION, "spam": SPAM_FRACTION,
        "user_started": USER_STARTED_FRACTION, "cust_null": CONV_CUSTOMER_NULL_FRACTION,
        "cust_missing": CONV_CUSTOMER_MISSING_FRACTION, "asg_null": ASSIGNEE_NULL_FRACTION,
        "asg_missing": ASSIGNEE_MISSING_FRACTION, "note": NOTE_FRACTION, "running": TIMELOG_RUNNING_FRACTION,
        "tl_missing": TIMELOG_MISSING_CONVERSATION_FRACTION, "whole_minutes": TIMELOG_WHOLE_MINUTES_FRACTION,
        # FreeScout constants
        "t_work": EMAIL_TYPE_WORK, "t_home": EMAIL_TYPE_HOME, "t_other": EMAIL_TYPE_OTHER,
        "role_admin": USER_ROLE_ADMIN, "role_user": USER_ROLE_USER,
        "type_user": USER_TYPE_USER, "type_robot": USER_TYPE_ROBOT, "st_active": USER_STATUS_ACTIVE,
        "st_disabled": USER_STATUS_DISABLED, "st_deleted": USER_STATUS_DELETED,
        "inv_activated": USER_INVITE_ACTIVATED, "inv_sent": USER_INVITE_SENT, "tf24": USER_TIME_FORMAT_24,
        "c_email": CONV_TYPE_EMAIL, "c_phone": CONV_TYPE_PHONE, "c_chat": CONV_TYPE_CHAT,
        "s_active": STATUS_ACTIVE, "s_pending": STATUS_PENDING, "s_closed": STATUS_CLOSED, "s_spam": STATUS_SPAM,
        "s_nochange": STATUS_NOCHANGE, "draft_state": CONV_STATE_DRAFT, "published": CONV_STATE_PUBLISHED,
        "deleted_state": CONV_STATE_DELETED, "th_draft": THREAD_STATE_DRAFT, "th_published": THREAD_STATE_PUBLISHED,
        "p_customer": PERSON_CUSTOMER, "p_user": PERSON_USER, "src_email": SOURCE_TYPE_EMAIL,
        "src_web": SOURCE_TYPE_WEB, "th_customer": THREAD_TYPE_CUSTOMER, "th_message": THREAD_TYPE_MESSAGE,
        "th_note": THREAD_TYPE_NOTE, "sub_phone": THREAD_SUBTYPE_PHONE, "social_linkedin": SOCIAL_TYPE_LINKEDIN,
        # vocabularies
        "first_names": FIRST_NAMES, "last_names": LAST_NAMES,
        "acc_first": [n[0] for n in ACCENTED_NAMES], "acc_last": [n[1] for n in ACCENTED_NAMES],
        "acc_fa": [n[2] for n in ACCENTED_NAMES], "acc_la": [n[3] for n in ACCENTED_NAMES],
        "nl_first": [n[0] for n in NON_LATIN_NAMES], "nl_last": [n[1] for n in NON_LATIN_NAMES],
        "nl_fa": [n[2] for n in NON_LATIN_NAMES], "nl_la": [n[3] for n in NON_LATIN_NAMES],
        "company_words": COMPANY_WORDS, "company_kinds": COMPANY_KINDS, "company_regions": COMPANY_REGIONS,
        "n_words": len(COMPANY_WORDS), "n_kinds": len(COMPANY_KINDS), "n_regions": len(COMPANY_REGIONS),
        "n_pairs": len(COMPANY_WORDS) * len(COMPANY_KINDS),
        "personal_domains": PERSONAL_DOMAINS, "job_titles": JOB_TITLES, "streets": STREETS,
        "countries": [loc[0] for loc in LOCATIONS], "cities": [loc[1] for loc in LOCATIONS],
        "states": [loc[2] for loc in LOCATIONS], "notes": NOTES, "subjects": SUBJECTS,
        "spam_subjects": SPAM_SUBJECTS, "customer_lines": CUSTOMER_LINES, "agent_lines": AGENT_LINES,
        "note_lines": NOTE_LINES, "phone_lines": PHONE_LINES, "spam_lines": SPAM_LINES,
        "timezones": TIMEZONES, "locales": LOCALES,
        "mailbox_names": [m[0] for m in MAILBOXES], "mailbox_emails": [m[1] for m in MAILBOXES],
    }


# --- DDL -------------------------------------------------------------------------------------------
def _drop_tables(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.SQL(", ").join(ident(t) for t in TABLES)))


def _create_tables(conn: psycopg.Connection) -> None:
    # Laravel's increments()/integer() become bigserial/bigint here; timestamps() is timestamp(0).
    conn.execute(_TABLES_DDL)


def _create_indexes(conn: psycopg.Connection) -> None:
    # Built after the load: one sort per index is much cheaper than maintaining it row by row.
    conn.execute(_INDEXES_DDL)


def _create_hash_functions(conn: psycopg.Connection, *, seed: int) -> None:
    """Session-local (pg_temp) helpers: every pseudo-random value is a hash of (row, seed, purpose).

    They are single-SELECT SQL functions, which the planner inlines, so they cost no call overhead.
    Inlining needs every operation in the body to be immutable: hence the seed is spliced in as a
    text literal (``text || int`` is only STABLE, which silently makes each call cost microseconds).
    """
    conn.execute(sql.SQL(
        """
        CREATE OR REPLACE FUNCTION pg_temp.fs_h(k bigint, purpose text) RETURNS bigint
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT hashtextextended(k::text || ':' || {seed} || ':' || purpose, 0) $$;
        -- uniform in [0, 1): the top 53 bits of the hash, which a double holds exactly
        CREATE OR REPLACE FUNCTION pg_temp.fs_u(k bigint, purpose text) RETURNS double precision
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT ((pg_temp.fs_h(k, purpose) >> 11) & 9007199254740991)::double precision
                         / 9007199254740992.0 $$;
        -- uniform integer in [0, n)
        CREATE OR REPLACE FUNCTION pg_temp.fs_idx(n bigint, k bigint, purpose text) RETURNS bigint
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT floor(pg_temp.fs_u(k, purpose) * n)::bigint $$;
        CREATE OR REPLACE FUNCTION pg_temp.fs_pick(arr text[], k bigint, purpose text) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT arr[1 + pg_temp.fs_idx(cardinality(arr), k, purpose)] $$;
        -- customer index -> id: after every CUSTOMER_ID_HOLE_EVERY customers one id stays unused
        CREATE OR REPLACE FUNCTION pg_temp.fs_cid(i bigint) RETURNS bigint
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT i + (i - 1) / {hole} $$;
        CREATE OR REPLACE FUNCTION pg_temp.fs_at(seconds bigint) RETURNS timestamp(0)
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT {epoch}::timestamp + seconds * interval '1 second' $$;
        """).format(seed=sql.Literal(str(seed)), hole=sql.Literal(CUSTOMER_ID_HOLE_EVERY), epoch=sql.Literal(EPOCH)))


_TABLES_DDL = """
CREATE TABLE mailboxes (
    id bigserial PRIMARY KEY,
    name varchar(40) NOT NULL,
    email varchar(128) NOT NULL,
    aliases varchar(255),
    created_at timestamp(0),
    updated_at timestamp(0)
);
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    first_name varchar(20) NOT NULL,
    last_name varchar(30) NOT NULL,
    email varchar(100) NOT NULL,
    password varchar(255) NOT NULL,
    role smallint NOT NULL DEFAULT 1,
    timezone varchar(255) NOT NULL DEFAULT 'UTC',
    photo_url varchar(255),
    type smallint NOT NULL DEFAULT 1,
    status smallint NOT NULL DEFAULT 1,
    invite_state smallint NOT NULL DEFAULT 3,
    invite_hash varchar(100),
    emails text,
    job_title varchar(100),
    phone varchar(60),
    time_format smallint NOT NULL DEFAULT 2,
    enable_kb_shortcuts boolean NOT NULL DEFAULT true,
    locked boolean NOT NULL DEFAULT false,
    remember_token varchar(100),
    locale varchar(191),
    created_at timestamp(0),
    updated_at timestamp(0)
);
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    first_name varchar(255),
    last_name varchar(255),
    company varchar(255),
    job_title varchar(255),
    photo_url varchar(255),
    phones text,
    websites text,
    social_profiles text,
    chats text,
    notes text,
    address text,
    city varchar(255),
    state varchar(255),
    zip varchar(12),
    country varchar(2),
    created_at timestamp(0),
    updated_at timestamp(0)
);
CREATE TABLE emails (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    email varchar(191) NOT NULL,
    type smallint NOT NULL DEFAULT 1
);
CREATE TABLE conversations (
    id bigserial PRIMARY KEY,
    number integer NOT NULL,
    threads_count integer NOT NULL DEFAULT 0,
    type smallint NOT NULL,
    folder_id bigint NOT NULL,
    status smallint NOT NULL DEFAULT 1,
    state smallint NOT NULL DEFAULT 1,
    subject varchar(998),
    customer_email varchar(191),
    cc text,
    bcc text,
    preview varchar(255) NOT NULL DEFAULT '',
    imported boolean NOT NULL DEFAULT false,
    has_attachments boolean NOT NULL DEFAULT false,
    mailbox_id bigint NOT NULL,
    user_id bigint,
    customer_id bigint,
    created_by_user_id bigint,
    created_by_customer_id bigint,
    source_via smallint NOT NULL,
    source_type smallint NOT NULL,
    closed_by_user_id bigint,
    closed_at timestamp(0),
    user_updated_at timestamp(0),
    last_reply_at timestamp(0),
    last_reply_from smallint,
    read_by_user boolean NOT NULL DEFAULT false,
    created_at timestamp(0),
    updated_at timestamp(0)
);
CREATE TABLE threads (
    id bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL,
    user_id bigint,
    type smallint NOT NULL,
    subtype smallint,
    status smallint NOT NULL DEFAULT 1,
    state smallint NOT NULL DEFAULT 1,
    action_type smallint,
    action_text varchar(255),
    body text,
    body_original text,
    "to" text,
    cc text,
    bcc text,
    message_id varchar(998),
    source_via smallint NOT NULL,
    source_type smallint NOT NULL,
    customer_id bigint,
    created_by_user_id bigint,
    created_by_customer_id bigint,
    saved_reply_id bigint,
    imported boolean NOT NULL DEFAULT false,
    meta text,
    opened_at timestamp(0),
    created_at timestamp(0),
    updated_at timestamp(0)
);
CREATE TABLE timelogs (
    id bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL,
    user_id bigint NOT NULL,
    conversation_status smallint,
    time_spent integer NOT NULL DEFAULT 0,
    paused boolean NOT NULL DEFAULT false,
    finished boolean NOT NULL DEFAULT false,
    created_at timestamp(0),
    updated_at timestamp(0)
);
"""

_INDEXES_DDL = """
CREATE UNIQUE INDEX mailboxes_email_unique ON mailboxes (email);
CREATE UNIQUE INDEX users_email_unique ON users (email);
CREATE INDEX users_role_index ON users (role);
CREATE INDEX users_status_index ON users (status);
CREATE UNIQUE INDEX emails_email_unique ON emails (email);
CREATE INDEX emails_customer_id_index ON emails (customer_id);
CREATE INDEX conversations_folder_id_status_index ON conversations (folder_id, status);
CREATE INDEX conversations_mailbox_id_customer_id_index ON conversations (mailbox_id, customer_id);
CREATE INDEX conversations_customer_id_index ON conversations (customer_id);
CREATE INDEX conversations_user_id_index ON conversations (user_id);
CREATE INDEX threads_conversation_id_index ON threads (conversation_id);
CREATE INDEX threads_customer_id_index ON threads (customer_id);
CREATE INDEX threads_user_id_index ON threads (user_id);
CREATE INDEX timelogs_conversation_id_index ON timelogs (conversation_id);
CREATE INDEX timelogs_user_id_index ON timelogs (user_id);
"""

# --- Load statements (bound client-side with _parameters(); '%%' is a literal percent) -------------
# Canonical company names: slot k -> "<word> <kind>" for the first words x kinds slots, then with a
# region, then with a number, so every slot has its own name; the domain is the name as a slug.
_COMPANIES = """
CREATE TEMP TABLE fs_company ON COMMIT DROP AS
SELECT k, name, rtrim(regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g'), '-') || '.example' AS domain
FROM (
    SELECT k,
           (%(company_words)s::text[])[1 + mod(k, %(n_words)s)] || ' '
           || (%(company_kinds)s::text[])[1 + mod(k / %(n_words)s, %(n_kinds)s)]
           || CASE WHEN k >= %(n_pairs)s
                   THEN ' ' || (%(company_regions)s::text[])[1 + mod(k / %(n_pairs)s - 1, %(n_regions)s)] ELSE '' END
           || CASE WHEN k >= %(n_pairs)s * (%(n_regions)s + 1)
                   THEN ' ' || ((k / %(n_pairs)s - 1) / %(n_regions)s + 1)::text ELSE '' END AS name
    FROM generate_series(0, %(companies)s - 1) AS k
) AS named
"""

# One row per customer index with its canonical attributes; duplicates are rewritten below.
# "OFFSET 0" keeps each CTE a separate step: flattened, a column used five times is hashed five times.
_PEOPLE = """
CREATE TEMP TABLE fs_person ON COMMIT DROP AS
WITH b AS (
    SELECT i, pg_temp.fs_cid(i) AS id,
           pg_temp.fs_u(i, 'name') AS u_name, pg_temp.fs_u(i, 'lastname') AS u_last,
           pg_temp.fs_u(i, 'mail') AS u_mail, pg_temp.fs_u(i, 'dup') AS u_dup,
           pg_temp.fs_u(i, 'company') AS u_co, pg_temp.fs_u(i, 'phones') AS u_ph,
           pg_temp.fs_u(i, 'location') AS u_loc,
           1 + pg_temp.fs_idx(cardinality(%(acc_first)s::text[]), i, 'pair') AS acc_f,
           1 + pg_temp.fs_idx(cardinality(%(acc_last)s::text[]), i, 'pair_last') AS acc_l,
           1 + pg_temp.fs_idx(cardinality(%(nl_first)s::text[]), i, 'pair') AS nl,
           pg_temp.fs_pick(%(first_names)s, i, 'first') AS latin_first,
           pg_temp.fs_pick(%(last_names)s, i, 'last') AS latin_last,
           1 + pg_temp.fs_idx(cardinality(%(cities)s::text[]), i, 'loc') AS loc
    FROM generate_series(1, %(customers)s::bigint) AS i OFFSET 0
), named AS (
    SELECT b.*,
           CASE WHEN u_name < %(accented)s THEN (%(acc_first)s::text[])[acc_f]
                WHEN u_name < %(accented)s + %(non_latin)s THEN (%(nl_first)s::text[])[nl]
                ELSE latin_first END AS first_name,
           CASE WHEN u_name < %(accented)s THEN (%(acc_last)s::text[])[acc_l]
                WHEN u_name < %(accented)s + %(non_latin)s THEN (%(nl_last)s::text[])[nl]
                ELSE latin_last END AS full_last,
           -- the ASCII spelling people with such names use in their addresses
           CASE WHEN u_name < %(accented)s THEN (%(acc_fa)s::text[])[acc_f]
                WHEN u_name < %(accented)s + %(non_latin)s THEN (%(nl_fa)s::text[])[nl]
                ELSE regexp_replace(lower(latin_first), '[^a-z]', '', 'g') END AS fa,
           CASE WHEN u_name < %(accented)s THEN (%(acc_la)s::text[])[acc_l]
                WHEN u_name < %(accented)s + %(non_latin)s THEN (%(nl_la)s::text[])[nl]
                ELSE regexp_replace(lower(latin_last), '[^a-z]', '', 'g') END AS full_la,
           CASE WHEN u_co < %(company)s
                THEN floor(%(companies)s * pg_temp.fs_u(i, 'slot') ^ %(company_skew)s)::bigint END AS slot,
           CASE WHEN u_mail < %(no_email)s THEN 'none'
                WHEN u_mail < %(no_email)s + %(home_only)s THEN 'home_only'
                WHEN u_mail < %(no_email)s + %(home_only)s + %(home_work)s THEN 'home_work'
                WHEN u_mail < %(no_email)s + %(home_only)s + %(home_work)s + %(work_other)s THEN 'work_other'
                WHEN u_mail < %(no_email)s + %(home_only)s + %(home_work)s + %(work_other)s + %(three)s THEN 'three'
                ELSE 'work_only' END AS mail_kind
    FROM b OFFSET 0
), addressed AS (
    SELECT n.*,
           CASE WHEN u_last < %(last_null)s THEN NULL
                WHEN u_last < %(last_null)s + %(last_empty)s THEN ''
                ELSE full_last END AS last_name,
           CASE WHEN u_last < %(last_null)s + %(last_empty)s THEN '' ELSE full_la END AS la,
           c.name AS company_name, c.domain AS company_domain
    FROM named n LEFT JOIN fs_company c ON c.k = n.slot OFFSET 0
), mailed AS (
    SELECT a.*,
           fa || id || '@' || pg_temp.fs_pick(%(personal_domains)s, i, 'home') AS home_email,
           fa || '.' || la || id || '@'
               || coalesce(company_domain, pg_temp.fs_pick(%(personal_domains)s, i, 'work')) AS work_email,
           fa || '_' || la || id || '@' || pg_temp.fs_pick(%(personal_domains)s, i, 'other') AS other_email
    FROM addressed a OFFSET 0
)
SELECT i, id,
       mod((i - 1) / %(gap)s, 2) = 1 AND u_dup < 2 * %(dup)s AS is_dup,
       CASE WHEN pg_temp.fs_u(i, 'dupkind') < %(dup_case)s THEN 'case'
            WHEN pg_temp.fs_u(i, 'dupkind') < %(dup_case)s + %(dup_space)s THEN 'space'
            ELSE 'typo' END AS dup_kind,
       first_name, last_name, fa, la, mail_kind,
       CASE WHEN company_name IS NULL THEN NULL
            WHEN pg_temp.fs_u(i, 'cvar') >= %(company_variant)s THEN company_name
            ELSE CASE pg_temp.fs_idx(4, i, 'cvarkind')
                     WHEN 0 THEN ' ' || lower(company_name) || ' '
                     WHEN 1 THEN upper(company_name)
                     WHEN 2 THEN replace(company_name, ' ', '  ')
                     ELSE company_name || ' ' END END AS company,
       CASE mail_kind WHEN 'home_only' THEN home_email WHEN 'home_work' THEN home_email
                      WHEN 'none' THEN NULL ELSE work_email END AS email1,
       CASE mail_kind WHEN 'home_only' THEN %(t_home)s WHEN 'home_work' THEN %(t_home)s
                      WHEN 'none' THEN NULL ELSE %(t_work)s END AS type1,
       CASE mail_kind WHEN 'home_work' THEN work_email WHEN 'work_other' THEN other_email
                      WHEN 'three' THEN home_email END AS email2,
       CASE mail_kind WHEN 'home_work' THEN %(t_work)s WHEN 'work_other' THEN %(t_other)s
                      WHEN 'three' THEN %(t_home)s END AS type2,
       CASE WHEN mail_kind = 'three' THEN other_email END AS email3,
       CASE WHEN mail_kind = 'three' THEN %(t_other)s END AS type3,
       -- the address a duplicate copies: the first one, or the work one the customer never gave
       CASE WHEN mail_kind IN ('home_only', 'home_work') THEN home_email ELSE work_email END AS primary_email,
       CASE WHEN mail_kind IN ('home_only', 'home_work') THEN %(t_home)s ELSE %(t_work)s END AS primary_type,
       CASE WHEN u_ph < %(phones_null)s THEN NULL
            WHEN u_ph < %(phones_null)s + %(phones_empty)s THEN '[]'
            ELSE '[' || pg_temp_phone_1 ||
                 CASE WHEN u_ph >= %(phones_null)s + %(phones_empty)s + %(phones_multi)s THEN ''
                      WHEN pg_temp.fs_u(i, 'phones3') < 0.5 THEN ',' || pg_temp_phone_2
                      ELSE ',' || pg_temp_phone_2 || ',' || pg_temp_phone_3 END || ']' END AS phones,
       CASE WHEN pg_temp.fs_u(i, 'website') < %(website)s
            THEN '["https:\\/\\/' || coalesce(company_domain, fa || la || '.example') || '"]' END AS websites,
       CASE WHEN pg_temp.fs_u(i, 'social') < %(social)s
            THEN '[{"value":"https:\\/\\/www.linkedin.com\\/in\\/' || fa || '-' || la || id || '","type":'
                 || %(social_linkedin)s || '}]' END AS social_profiles,
       CASE WHEN pg_temp.fs_u(i, 'job') < %(job_title)s
            THEN pg_temp.fs_pick(%(job_titles)s, i, 'jobt') END AS job_title,
       CASE WHEN u_loc < %(address)s
            THEN (1 + pg_temp.fs_idx(250, i, 'houseno'))::text || ' ' || pg_temp.fs_pick(%(streets)s, i, 'street')
            END AS address,
       CASE WHEN u_loc < %(address)s THEN (%(cities)s::text[])[loc] END AS city,
       CASE WHEN u_loc < %(address)s THEN (%(states)s::text[])[loc] END AS state,
       CASE WHEN u_loc < %(address)s THEN lpad(pg_temp.fs_idx(100000, i, 'zip')::text, 5, '0') END AS zip,
       CASE WHEN u_loc < %(address)s THEN (%(countries)s::text[])[loc] END AS country,
       CASE WHEN pg_temp.fs_u(i, 'notes') < %(notes_f)s THEN pg_temp.fs_pick(%(notes)s, i, 'notetext') END AS notes,
       -- customers arrive in id order over the span; about half are edited later
       pg_temp.fs_at(floor(((i - 1) + pg_temp.fs_u(i, 'created')) * %(span)s / %(customers)s)::bigint) AS created_at,
       pg_temp.fs_at(floor(((i - 1) + pg_temp.fs_u(i, 'created')) * %(span)s / %(customers)s)::bigint
                     + CASE WHEN pg_temp.fs_u(i, 'edited') < 0.5 THEN 0
                            ELSE floor(pg_temp.fs_u(i, 'edit_by') ^ 3 * 400 * 86400)::bigint END) AS updated_at
FROM mailed
"""

# A phone number as FreeScout stores it: {"value": as typed, "type": PHONE_TYPE_*, "n": digits}.
_PHONE = """('{"value":"' || v || '","type":' || t || ',"n":"' || regexp_replace(v, '[^0-9]', '', 'g') || '"}')"""


def _phone_expression(slot: int) -> str:
    """SQL for the ``slot``-th phone of customer ``i``, in one of several real-world spellings."""
    purpose = f"phone{slot}"
    area = f"(ARRAY['212', '415', '512', '206', '617'])[1 + pg_temp.fs_idx(5, i, '{purpose}area')]"
    value = (f"CASE pg_temp.fs_idx(4, i, '{purpose}fmt') "
             f"WHEN 0 THEN '+1 (' || {area} || ') 555-01' || lpad(pg_temp.fs_idx(100, i, '{purpose}a')::text, 2, '0') "
             f"WHEN 1 THEN {area} || '.555.01' || lpad(pg_temp.fs_idx(100, i, '{purpose}a')::text, 2, '0') "
             f"WHEN 2 THEN '+44 20 7946 0' || lpad(pg_temp.fs_idx(1000, i, '{purpose}a')::text, 3, '0') "
             f"ELSE '0049 30 ' || lpad(pg_temp.fs_idx(10000000, i, '{purpose}b')::text, 7, '0') END")
    kind = f"(ARRAY[1, 2, 3, 4, 4, 5])[1 + pg_temp.fs_idx(6, i, '{purpose}type')]"
    return f"(SELECT {_PHONE} FROM (SELECT {value} AS v, {kind} AS t) AS ph)"


def _with_phones(statement: str) -> str:
    """Fill the ``pg_temp_phone_<n>`` placeholders of ``statement`` with phone expressions."""
    for slot in (1, 2, 3):
        statement = statement.replace(f"pg_temp_phone_{slot}", _phone_expression(slot))
    return statement


_PEOPLE = _with_phones(_PEOPLE)

# Duplicates: rewrite the name and first email of each duplicate from its original (i - gap), which
# is never a duplicate itself (duplicates only occur in odd blocks of ``gap`` indexes).
_DUPLICATES = """
UPDATE fs_person p SET
    first_name = CASE p.dup_kind
        WHEN 'case' THEN CASE WHEN d.flip THEN upper(s.first_name) ELSE lower(s.first_name) END
        WHEN 'space' THEN CASE WHEN d.flip THEN '  ' || s.first_name ELSE s.first_name || ' ' END
        WHEN 'typo' THEN CASE WHEN coalesce(length(s.last_name), 0) < 3 AND length(s.first_name) >= 3
                              THEN overlay(s.first_name PLACING '' FROM d.first_drop FOR 1)
                              ELSE s.first_name END END,
    last_name = CASE p.dup_kind
        WHEN 'case' THEN CASE WHEN d.flip THEN upper(s.last_name) ELSE lower(s.last_name) END
        WHEN 'space' THEN CASE WHEN d.flip THEN s.last_name || ' ' ELSE ' ' || s.last_name END
        WHEN 'typo' THEN CASE WHEN length(s.last_name) >= 3
                              THEN overlay(s.last_name PLACING '' FROM d.last_drop FOR 1)
                              ELSE s.last_name END END,
    email1 = CASE p.dup_kind
        WHEN 'case' THEN CASE WHEN d.flip THEN upper(s.primary_email) ELSE initcap(s.primary_email) END
        WHEN 'space' THEN CASE WHEN d.flip THEN ' ' || s.primary_email ELSE s.primary_email || '  ' END
        -- a wrong letter inside the first-name part, which keeps the address unique
        WHEN 'typo' THEN overlay(s.primary_email PLACING
                                 chr(97 + mod(ascii(substr(s.primary_email, s.typo_at, 1)) - 97 + d.shift, 26))
                                 FROM s.typo_at FOR 1) END,
    type1 = s.primary_type,
    email2 = NULL, type2 = NULL, email3 = NULL, type3 = NULL,
    company = s.company, phones = NULL, websites = NULL, social_profiles = NULL, notes = NULL
FROM (SELECT i, first_name, last_name, primary_email, primary_type, company,
             CASE WHEN length(fa) >= 2 THEN 2 + pg_temp.fs_idx(length(fa) - 1, i, 'typoat')::int ELSE 1 END AS typo_at
      FROM fs_person) AS s,
     -- the duplicate's own choices, keyed by its index (the UPDATE target cannot be referenced here)
     LATERAL (SELECT pg_temp.fs_u(s.i + %(gap)s, 'dupflip') < 0.5 AS flip,
                     1 + pg_temp.fs_idx(25, s.i + %(gap)s, 'typochar')::int AS shift,
                     (2 + pg_temp.fs_idx(length(s.first_name) - 1, s.i + %(gap)s, 'typo'))::int AS first_drop,
                     (2 + pg_temp.fs_idx(length(s.last_name) - 1, s.i + %(gap)s, 'typo'))::int AS last_drop) AS d
WHERE p.is_dup AND s.i = p.i - %(gap)s
"""

_MAILBOXES = """
INSERT INTO mailboxes (id, name, email, aliases, created_at, updated_at)
SELECT m, (%(mailbox_names)s::text[])[m], (%(mailbox_emails)s::text[])[m],
       CASE WHEN m = 1 THEN 'help@helpdesk.example' END,
       pg_temp.fs_at(-90 * 86400 + m * 3600), pg_temp.fs_at(-90 * 86400 + m * 3600)
FROM generate_series(1, cardinality(%(mailbox_names)s::text[])) AS m
"""

# Agents: ids 1 .. users-1 (user 1 is an admin); the last user is FreeScout's robot placeholder.
_USERS = """
INSERT INTO users (id, first_name, last_name, email, password, role, timezone, type, status, invite_state,
                   job_title, phone, time_format, locale, created_at, updated_at)
SELECT u, first_name, last_name,
       CASE WHEN robot THEN 'fs' || u || '@example.org' ELSE fa || '.' || la || u || '@helpdesk.example' END,
       -- a bcrypt-shaped placeholder, never a usable password
       '$2y$10$' || substr(md5(u || ':pw1') || md5(u || ':pw2'), 1, 53),
       CASE WHEN u = 1 OR (NOT robot AND pg_temp.fs_u(u, 'role') < 0.15) THEN %(role_admin)s ELSE %(role_user)s END,
       CASE WHEN robot THEN 'UTC' ELSE pg_temp.fs_pick(%(timezones)s, u, 'tz') END,
       CASE WHEN robot THEN %(type_robot)s ELSE %(type_user)s END,
       CASE WHEN robot THEN %(st_deleted)s WHEN u = 1 THEN %(st_active)s
            WHEN pg_temp.fs_u(u, 'ustatus') < 0.08 THEN %(st_disabled)s
            WHEN pg_temp.fs_u(u, 'ustatus') < 0.12 THEN %(st_deleted)s ELSE %(st_active)s END,
       CASE WHEN pg_temp.fs_u(u, 'invite') < 0.1 THEN %(inv_sent)s ELSE %(inv_activated)s END,
       CASE WHEN robot THEN NULL ELSE 'Support Agent' END,
       CASE WHEN NOT robot AND pg_temp.fs_u(u, 'uphone') < 0.5
            THEN '+1 212 555 01' || lpad(pg_temp.fs_idx(100, u, 'uphn')::text, 2, '0') END,
       %(tf24)s,
       CASE WHEN robot OR pg_temp.fs_u(u, 'ulocale') < 0.3 THEN NULL ELSE pg_temp.fs_pick(%(locales)s, u, 'loc') END,
       pg_temp.fs_at(-60 * 86400 + u * 3600),
       pg_temp.fs_at(-60 * 86400 + u * 3600 + pg_temp.fs_idx(86400 * 30, u, 'uupd'))
FROM (
    SELECT u, robot,
           CASE WHEN robot THEN 'Workflow' WHEN intl THEN (%(acc_first)s::text[])[pair]
                ELSE latin_first END AS first_name,
           CASE WHEN robot THEN 'Robot' WHEN intl THEN (%(acc_last)s::text[])[pair] ELSE latin_last END AS last_name,
           CASE WHEN intl THEN (%(acc_fa)s::text[])[pair]
                ELSE regexp_replace(lower(latin_first), '[^a-z]', '', 'g') END AS fa,
           CASE WHEN intl THEN (%(acc_la)s::text[])[pair]
                ELSE regexp_replace(lower(latin_last), '[^a-z]', '', 'g') END AS la
    FROM (SELECT u, u = %(users)s AS robot, pg_temp.fs_u(u, 'uintl') < 0.1 AS intl,
                 1 + pg_temp.fs_idx(cardinality(%(acc_first)s::text[]), u, 'upair') AS pair,
                 pg_temp.fs_pick(%(first_names)s, u, 'ufirst') AS latin_first,
                 pg_temp.fs_pick(%(last_names)s, u, 'ulast') AS latin_last
          FROM generate_series(1, %(users)s::bigint) AS u OFFSET 0) AS picked
) AS named
"""

_CUSTOMERS = """
INSERT INTO customers (id, first_name, last_name, company, job_title, phones, websites, social_profiles, notes,
                       address, city, state, zip, country, created_at, updated_at)
SELECT id, first_name, last_name, company, job_title, phones, websites, social_profiles, notes,
       address, city, state, zip, country, created_at, updated_at
FROM fs_person ORDER BY id
"""

# Dense email ids in (customer, slot) order: the first address of a customer has the lowest id.
_EMAILS = """
INSERT INTO emails (id, customer_id, email, type)
SELECT row_number() OVER (ORDER BY p.id, v.slot), p.id, v.email, v.type
FROM fs_person p
CROSS JOIN LATERAL (VALUES (1, p.email1, p.type1), (2, p.email2, p.type2), (3, p.email3, p.type3))
    AS v(slot, email, type)
WHERE v.email IS NOT NULL
"""

# One plan row per conversation; conversations, threads and timelogs are all read from it.
_CONVERSATION_PLAN = """
CREATE TEMP TABLE fs_conv ON COMMIT DROP AS
WITH b AS (
    SELECT n, pg_temp.fs_u(n, 'cstate') AS u_state, pg_temp.fs_u(n, 'cstatus') AS u_status,
           pg_temp.fs_u(n, 'via') AS u_via, pg_temp.fs_u(n, 'ctype') AS u_type,
           pg_temp.fs_u(n, 'mailbox') AS u_mb, pg_temp.fs_u(n, 'cref') AS u_cref,
           pg_temp.fs_u(n, 'assignee') AS u_asg
    FROM generate_series(1, %(conversations)s::bigint) AS n OFFSET 0
), k AS (
    SELECT n,
           CASE WHEN u_state < %(draft)s THEN %(draft_state)s
                WHEN u_state < %(draft)s + %(deleted)s THEN %(deleted_state)s
                ELSE %(published)s END AS state,
           u_state >= %(draft)s + %(deleted)s AND u_state < %(draft)s + %(deleted)s + %(spam)s AS spam,
           u_state < %(draft)s AS draft,
           u_status, u_type, u_mb, u_cref, u_asg, u_via
    FROM b OFFSET 0
), c AS (
    SELECT n, state, spam, draft,
           CASE WHEN draft THEN %(s_active)s WHEN spam THEN %(s_spam)s
                WHEN u_status < 0.2 THEN %(s_active)s WHEN u_status < 0.4 THEN %(s_pending)s
                ELSE %(s_closed)s END AS status,
           draft OR (NOT spam AND u_via < %(user_started)s) AS by_user,
           CASE WHEN u_mb < 0.6 THEN 1 WHEN u_mb < 0.85 THEN 2 ELSE 3 END AS mailbox_id,
           CASE WHEN u_cref < %(cust_null)s THEN NULL
                WHEN u_cref < %(cust_null)s + %(cust_missing)s
                THEN CASE WHEN %(holes)s > 0 THEN (%(hole)s + 1) * (1 + pg_temp.fs_idx(%(holes)s, n, 'hole'))
                          ELSE pg_temp.fs_cid(%(customers)s) + 1000000 + n END
                -- only customers who already exist when the conversation starts
                ELSE pg_temp.fs_cid(1 + pg_temp.fs_idx(greatest(1, (n - 1) / 2), n, 'customer')) END AS customer_id,
           CASE WHEN u_asg < %(asg_null)s THEN NULL
                WHEN u_asg < %(asg_null)s + %(asg_missing)s THEN %(users)s + 1 + pg_temp.fs_idx(3, n, 'gone')
                ELSE 1 + pg_temp.fs_idx(%(agents)s, n, 'agent') END AS user_id,
           1 + pg_temp.fs_idx(%(agents)s, n, 'creator') AS fallback_agent,
           u_type,
           CASE WHEN draft THEN 1 ELSE 1 + pg_temp.fs_idx(%(max_threads)s, n, 'threads') END AS t,
           1800 + pg_temp.fs_idx(43200, n, 'step') AS step,
           floor(((n - 1) + pg_temp.fs_u(n, 'ctime')) * %(span)s / %(conversations)s)::bigint
               + %(span)s / %(customers)s AS t0
    FROM k OFFSET 0
), d AS (
    SELECT c.*,
           CASE WHEN by_user AND NOT draft AND u_type < 0.5 THEN %(c_phone)s
                WHEN NOT by_user AND u_type < 0.05 THEN %(c_chat)s ELSE %(c_email)s END AS type,
           CASE WHEN user_id <= %(agents)s THEN user_id ELSE fallback_agent END AS agent,
           t >= 2 AND pg_temp.fs_u(n, 'note') < %(note)s AS has_note
    FROM c OFFSET 0
), e AS (
    SELECT d.*,
           by_user AND type = %(c_phone)s AS phone_note,
           t - has_note::int AS last_reply_seq
    FROM d OFFSET 0
)
SELECT n, state, status, spam, draft, by_user, type, mailbox_id, customer_id, user_id, agent, t, step,
       has_note, phone_note,
       (sum(t) OVER (ORDER BY n) - t)::bigint AS first_thread_id,
       CASE WHEN draft THEN 0 ELSE t - has_note::int - phone_note::int END AS threads_count,
       pg_temp.fs_at(t0) AS created_at,
       pg_temp.fs_at(t0 + (t - 1) * step) AS last_at,
       CASE WHEN draft OR (phone_note AND last_reply_seq = 1) THEN NULL
            ELSE pg_temp.fs_at(t0 + (last_reply_seq - 1) * step) END AS last_reply_at,
       CASE WHEN draft OR (phone_note AND last_reply_seq = 1) THEN NULL
            WHEN NOT by_user AND mod(last_reply_seq, 2) = 1 THEN %(p_customer)s ELSE %(p_user)s END AS last_reply_from,
       CASE WHEN status = %(s_closed)s AND NOT draft
            THEN pg_temp.fs_at(t0 + (t - 1) * step + 60 + pg_temp.fs_idx(3600, n, 'closed')) END AS closed_at
FROM e
"""

# A CASE of picks rather than a pick over a CASE: fs_pick uses its array twice, and PostgreSQL
# only inlines it when that argument is a constant.
_THREAD_LINE = """CASE
        WHEN {type} = %(th_customer)s AND c.spam THEN pg_temp.fs_pick(%(spam_lines)s, c.n * 8 + {seq}, 'body')
        WHEN {type} = %(th_customer)s THEN pg_temp.fs_pick(%(customer_lines)s, c.n * 8 + {seq}, 'body')
        WHEN {type} = %(th_note)s AND c.phone_note AND {seq} = 1
             THEN pg_temp.fs_pick(%(phone_lines)s, c.n * 8 + {seq}, 'body')
        WHEN {type} = %(th_note)s THEN pg_temp.fs_pick(%(note_lines)s, c.n * 8 + {seq}, 'body')
        ELSE pg_temp.fs_pick(%(agent_lines)s, c.n * 8 + {seq}, 'body') END"""

_THREAD_TYPE = """CASE WHEN c.has_note AND {seq} = c.t THEN %(th_note)s
             WHEN c.phone_note AND {seq} = 1 THEN %(th_note)s
             WHEN c.by_user THEN %(th_message)s
             WHEN mod({seq}, 2) = 1 THEN %(th_customer)s
             ELSE %(th_message)s END"""

_CONVERSATIONS = """
INSERT INTO conversations (id, number, threads_count, type, folder_id, status, state, subject, customer_email,
                           preview, has_attachments, mailbox_id, user_id, customer_id, created_by_user_id,
                           created_by_customer_id, source_via, source_type, closed_by_user_id, closed_at,
                           user_updated_at, last_reply_at, last_reply_from, read_by_user, created_at, updated_at)
SELECT c.n, c.n, c.threads_count, c.type,
       -- FreeScout keeps one folder per mailbox and kind; the ids here stand for those folders
       (c.mailbox_id - 1) * 10 + CASE WHEN c.draft THEN 3 WHEN c.state = %(deleted_state)s THEN 7 WHEN c.spam THEN 8
                                      WHEN c.status = %(s_closed)s THEN 6 WHEN c.user_id IS NULL THEN 1 ELSE 4 END,
       c.status, c.state,
       CASE WHEN c.draft AND pg_temp.fs_u(c.n, 'nosubject') < 0.5 THEN NULL
            WHEN c.spam THEN pg_temp.fs_pick(%(spam_subjects)s, c.n, 'subject')
            WHEN c.type = %(c_chat)s THEN 'Chat with ' || coalesce(e.email, 'visitor')
            ELSE pg_temp.fs_pick(%(subjects)s, c.n, 'subject') END,
       lower(btrim(e.email)),
       left({line1}, 255),
       pg_temp.fs_u(c.n, 'attach') < 0.1,
       c.mailbox_id, c.user_id, c.customer_id,
       CASE WHEN c.by_user THEN c.agent END,
       CASE WHEN NOT c.by_user THEN c.customer_id END,
       CASE WHEN c.by_user THEN %(p_user)s ELSE %(p_customer)s END,
       CASE WHEN c.by_user OR c.type = %(c_chat)s THEN %(src_web)s ELSE %(src_email)s END,
       CASE WHEN c.closed_at IS NOT NULL THEN c.agent END,
       c.closed_at,
       CASE WHEN c.by_user OR c.t >= 2 THEN c.last_at END,
       c.last_reply_at, c.last_reply_from,
       NOT c.spam,
       c.created_at, coalesce(c.closed_at, c.last_at)
FROM fs_conv c
LEFT JOIN (SELECT DISTINCT ON (customer_id) customer_id, email FROM emails ORDER BY customer_id, id) AS e
       ON e.customer_id = c.customer_id
ORDER BY c.n
""".replace("{line1}", _THREAD_LINE.format(type=_THREAD_TYPE.format(seq="1"), seq="1"))

_THREADS = """
INSERT INTO threads (id, conversation_id, user_id, type, subtype, status, state, body, message_id, source_via,
                     source_type, customer_id, created_by_user_id, created_by_customer_id, created_at, updated_at)
SELECT c.first_thread_id + x.s, c.n, c.user_id, x.type,
       CASE WHEN c.phone_note AND x.s = 1 THEN %(sub_phone)s END,
       CASE WHEN x.s = c.t THEN c.status WHEN x.type = %(th_customer)s THEN %(s_active)s
            WHEN x.type = %(th_note)s THEN %(s_nochange)s ELSE %(s_pending)s END,
       CASE WHEN c.draft THEN %(th_draft)s ELSE %(th_published)s END,
       '<div>' || {line} || '</div>',
       CASE WHEN x.type = %(th_customer)s
            THEN '<' || to_hex(pg_temp.fs_h(c.n * 8 + x.s, 'msgid')) || '.' || c.n || '@mail.example>' END,
       CASE WHEN x.type = %(th_customer)s THEN %(p_customer)s ELSE %(p_user)s END,
       CASE WHEN c.type = %(c_chat)s THEN %(src_web)s ELSE %(src_email)s END,
       c.customer_id,
       CASE WHEN x.type <> %(th_customer)s THEN c.agent END,
       CASE WHEN x.type = %(th_customer)s THEN c.customer_id END,
       c.created_at + (x.s - 1) * c.step * interval '1 second',
       c.created_at + (x.s - 1) * c.step * interval '1 second'
FROM fs_conv c
-- OFFSET 0: the thread type is computed once per thread, not at each of its uses
CROSS JOIN LATERAL (SELECT s, {type} AS type FROM generate_series(1, c.t) AS s OFFSET 0) AS x
""".replace("{line}", _THREAD_LINE.format(type="x.type", seq="x.s")).replace("{type}", _THREAD_TYPE.format(seq="s"))

_TIMELOGS = """
INSERT INTO timelogs (id, conversation_id, user_id, conversation_status, time_spent, paused, finished,
                      created_at, updated_at)
SELECT m,
       CASE WHEN missing THEN %(conversations)s + 1 + pg_temp.fs_idx(1000, m, 'tlgone') ELSE c.n END,
       coalesce(c.agent, 1 + pg_temp.fs_idx(%(agents)s, m, 'tluser')),
       coalesce(c.status, %(s_closed)s),
       spent,
       NOT finished AND pg_temp.fs_u(m, 'tlpaused') < 0.5,
       finished,
       started,
       started + spent * interval '1 second'
FROM (
    SELECT m, pg_temp.fs_u(m, 'tlmissing') < %(tl_missing)s AS missing,
           1 + pg_temp.fs_idx(%(conversations)s, m, 'tlconv') AS n,
           pg_temp.fs_u(m, 'tlrunning') >= %(running)s AS finished,
           -- the timer counts seconds; manual entries are whole minutes
           CASE WHEN pg_temp.fs_u(m, 'tlmanual') < %(whole_minutes)s THEN 60 * (1 + pg_temp.fs_idx(120, m, 'tlmin'))
                ELSE 5 + pg_temp.fs_idx(7200, m, 'tlsec') END::int AS spent
    FROM generate_series(1, %(timelogs)s::bigint) AS m
) AS t
LEFT JOIN fs_conv c ON NOT t.missing AND c.n = t.n
CROSS JOIN LATERAL (
    SELECT coalesce(c.created_at + pg_temp.fs_idx((c.t - 1) * c.step + 600, m, 'tlstart') * interval '1 second',
                    pg_temp.fs_at(pg_temp.fs_idx(%(span)s, m, 'tlat'))) AS started
) AS st
ORDER BY m
"""

# (table whose row count the step yields or None, statement)
_LOAD_STEPS: tuple[tuple[str | None, str], ...] = (
    ("mailboxes", _MAILBOXES),
    ("users", _USERS),
    (None, _COMPANIES),
    (None, _PEOPLE),
    (None, _DUPLICATES),
    ("customers", _CUSTOMERS),
    ("emails", _EMAILS),
    (None, _CONVERSATION_PLAN),
    ("conversations", _CONVERSATIONS),
    ("threads", _THREADS),
    ("timelogs", _TIMELOGS),
)
