"""A corpus of CSV files shaped like real exports, with the truth about each, for judging detectors.

Each shape imitates one product's or habit's export: the encoding it writes, its delimiter and
quoting, a report title or "Notes:" preamble, "Total" / "Grand Totals" footers, CRLF or bare CR
line ends, multi-line notes, decimal commas, a mostly empty Outlook-style table, a one-column
mailing list. ``corpus(rows)`` returns :class:`CsvCase` objects holding the encoded bytes and
what a reader must find: encoding, delimiter, quote character, the header's physical line, the
header names and the data rows (footers excluded).

Used by the CSV reader's tests and by ``benchmarks/sniff_csv.py`` (choosing the detectors).
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field

FIRST = ["José", "Zoë", "Björn", "François", "Íñigo", "Søren", "Łukasz", "Anaïs", "Mary", "John", "Chloé", "Jürgen",
         "Renée", "Noël", "Wei", "Aisha", "Dmitri", "Giulia", "Seán", "Ömer"]
LAST = ["Müller", "García", "O'Brien", "Dubois", "Nowak", "Sørensen", "Smith", "Rossi", "Fernández", "Schröder",
        "Lefèvre", "Yılmaz", "Kowalski", "Johnson", "Brown", "Çelik", "Núñez", "Weiß", "Åberg", "Ng"]
COMPANIES = ["Acme, Inc.", "Globex GmbH", "Initech", "Umbrella S.A.", "Stark Industries", "Wayne Enterprises",
             "Müller & Söhne KG", "Café Crème SARL", "Hooli", ""]
CITIES = ["Paris", "München", "Zürich", "São Paulo", "Kraków", "Málaga", "Springfield", "Köln", "Genève", "Oslo"]
LATIN1_SAFE = str.maketrans({"Ł": "L", "ł": "l", "ı": "i", "Ç": "C", "Ö": "O", "ğ": "g", "ş": "s"})


@dataclass
class CsvCase:
    """One file of the corpus and what a reader must find in it."""

    name: str
    data: bytes
    encoding: str  # the codec the file was written in
    delimiter: str
    quotechar: str
    header_line: int  # physical, 1-based
    header: list[str]
    rows: list[list[str]]
    footer_lines: int = 0
    bad_lines: list[int] = field(default_factory=list)  # rows that must come out as errors
    notes: str = ""
    extra: dict = field(default_factory=dict)


def people(count: int, *, seed: int = 7, ascii_only: bool = False, latin1: bool = False) -> list[dict[str, str]]:
    """Deterministic contacts with accented names, commas in companies and quotes in notes."""
    rng = random.Random(seed)
    out = []
    for number in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if latin1:
            first, last = first.translate(LATIN1_SAFE), last.translate(LATIN1_SAFE)
        if ascii_only:
            first, last = _ascii(first), _ascii(last)
        local = _ascii(f"{first}.{last}").lower().replace("'", "").replace(" ", "")
        note = rng.choice(["", "", "VIP", 'said "call me later"', "met at fair, booth 12", "prefers email"])
        out.append({
            "id": str(1000 + number), "first": first, "last": last, "email": f"{local}{number}@example.com",
            "phone": f"+1 (555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            "company": rng.choice(COMPANIES), "city": rng.choice(CITIES),
            "created": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "amount": f"{rng.randint(0, 9999)}.{rng.randint(0, 99):02d}", "note": note,
        })
    return out


def _ascii(text: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", text.translate(LATIN1_SAFE).replace("ø", "o").replace("ß", "ss"))
    return "".join(c for c in folded if not unicodedata.combining(c) and ord(c) < 128)


def _write(rows: list[list[str]], *, delimiter: str, quotechar: str = '"', quoting: int = csv.QUOTE_MINIMAL,
           lineterminator: str = "\r\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, quotechar=quotechar, quoting=quoting,
               lineterminator=lineterminator).writerows(rows)
    return buffer.getvalue()


def _case(name: str, *, header: list[str], rows: list[list[str]], encoding: str, delimiter: str,
          quotechar: str = '"', quoting: int = csv.QUOTE_MINIMAL, preamble: str = "", footer: str = "",
          lineterminator: str = "\r\n", bom: bool = False, notes: str = "") -> CsvCase:
    body = _write([header, *rows], delimiter=delimiter, quotechar=quotechar, quoting=quoting,
                  lineterminator=lineterminator)
    text = preamble + body + footer
    data = text.encode(encoding)
    if bom and encoding == "utf-8":
        data = b"\xef\xbb\xbf" + data
    header_line = preamble.count("\n") + preamble.count("\r") - preamble.count("\r\n") + 1
    footer_lines = sum(1 for line in footer.splitlines() if line.strip(delimiter + " "))
    return CsvCase(name=name, data=data, encoding="utf-8-sig" if bom else encoding, delimiter=delimiter,
                   quotechar=quotechar, header_line=header_line, header=header, rows=rows,
                   footer_lines=footer_lines, notes=notes)


def _standard(p: dict[str, str]) -> list[str]:
    return [p["first"], p["last"], p["email"], p["phone"], p["company"], p["city"], p["created"], p["note"]]


STANDARD_HEADER = ["First Name", "Last Name", "Email", "Phone", "Company", "City", "Created", "Notes"]


def hubspot(n: int) -> CsvCase:
    """UTF-8, every field quoted, multi-line notes."""
    rows = [_standard(p) for p in people(n)]
    for index in range(0, len(rows), 17):
        rows[index][7] = "first line\nsecond line, with comma"
    return _case("hubspot_all_quoted", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter=",",
                 quoting=csv.QUOTE_ALL)


def excel_de(n: int) -> CsvCase:
    """Excel "CSV (Trennzeichen-getrennt)" on a German Windows: cp1252, semicolons, decimal commas, € signs."""
    header = ["Vorname", "Nachname", "E-Mail", "Telefon", "Firma", "Ort", "Erstellt am", "Umsatz"]
    rows = [[p["first"].translate(LATIN1_SAFE), p["last"].translate(LATIN1_SAFE), p["email"], p["phone"],
             p["company"], p["city"], f"{p['created'][8:10]}.{p['created'][5:7]}.{p['created'][:4]}",
             p["amount"].replace(".", ",") + " €"] for p in people(n, seed=11)]
    return _case("excel_de_cp1252_semicolon", header=header, rows=rows, encoding="cp1252", delimiter=";")


def excel_fr_report(n: int) -> CsvCase:
    """A three-line report title, cp1252 with typographic quotes, semicolons, a Total footer."""
    header = ["Prénom", "Nom", "Courriel", "Téléphone", "Société", "Ville", "Montant"]
    rows = [[p["first"].translate(LATIN1_SAFE), p["last"].translate(LATIN1_SAFE), p["email"], p["phone"],
             p["company"], p["city"], p["amount"].replace(".", ",")] for p in people(n, seed=12)]
    rows[3][4] = "“Le Café” — Paris"
    preamble = "Rapport des contacts;;;;;;\r\nPériode : 01/01/2024 – 31/03/2024;;;;;;\r\n;;;;;;\r\n"
    footer = f"Total;;;;;;{sum(float(r[6].replace(',', '.')) for r in rows):.2f}\r\n".replace(".", ",")
    return _case("excel_fr_report_title_total", header=header, rows=rows, encoding="cp1252", delimiter=";",
                 preamble=preamble, footer=footer)


def outlook(n: int) -> CsvCase:
    """Outlook contacts export: dozens of columns, most of them empty, every field quoted."""
    header = ["Title", "First Name", "Middle Name", "Last Name", "Suffix", "Company", "Department", "Job Title",
              "Business Street", "Business Street 2", "Business City", "Business State", "Business Postal Code",
              "Business Country/Region", "Home Street", "Home City", "Home Postal Code", "Business Fax",
              "Business Phone", "Home Phone", "Mobile Phone", "Pager", "Anniversary", "Birthday", "Categories",
              "E-mail Address", "E-mail Type", "E-mail Display Name", "E-mail 2 Address", "Notes", "Web Page"]
    rows = []
    for p in people(n, seed=13):
        row = [""] * len(header)
        row[1], row[3], row[5], row[10] = p["first"], p["last"], p["company"], p["city"]
        row[18], row[25], row[26], row[27] = p["phone"], p["email"], "SMTP", f"{p['first']} {p['last']} ({p['email']})"
        row[23] = "0/0/00"
        rows.append(row)
    return _case("outlook_sparse_quoted", header=header, rows=rows, encoding="utf-8", delimiter=",",
                 quoting=csv.QUOTE_ALL)


def google_contacts(n: int) -> CsvCase:
    """Google Contacts: UTF-8 with a BOM, ' ::: ' lists inside cells, multi-line notes."""
    header = ["Name", "Given Name", "Family Name", "Group Membership", "E-mail 1 - Type", "E-mail 1 - Value",
              "Phone 1 - Type", "Phone 1 - Value", "Organization 1 - Name", "Notes"]
    rows = [[f"{p['first']} {p['last']}", p["first"], p["last"], "* myContacts ::: Friends", "* Work", p["email"],
             "Mobile", p["phone"], p["company"], p["note"] + ("\nline two" if i % 9 == 0 else "")]
            for i, p in enumerate(people(n, seed=14))]
    return _case("google_contacts_bom", header=header, rows=rows, encoding="utf-8", delimiter=",", bom=True,
                 lineterminator="\n")


def excel_unicode_text(n: int) -> CsvCase:
    """Excel "Unicode Text": UTF-16 LE with a BOM, tabs."""
    rows = [_standard(p) for p in people(n, seed=15)]
    return _case("excel_unicode_text_utf16le_tab", header=STANDARD_HEADER, rows=rows, encoding="utf-16",
                 delimiter="\t")


def utf16_be(n: int) -> CsvCase:
    """UTF-16 BE with a BOM, commas."""
    rows = [_standard(p) for p in people(n, seed=16)]
    case = _case("utf16be_bom_comma", header=STANDARD_HEADER, rows=rows, encoding="utf-16-be", delimiter=",")
    case.data = b"\xfe\xff" + case.data
    return case


def utf8_bom_semicolon(n: int) -> CsvCase:
    """UTF-8 with a BOM and semicolons (Excel "CSV UTF-8" in a European locale)."""
    rows = [_standard(p) for p in people(n, seed=17)]
    return _case("utf8_bom_semicolon", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter=";", bom=True)


def mailchimp(n: int) -> CsvCase:
    """Mailchimp audience export: UTF-8, commas, quoted where needed, many tag and date columns."""
    header = ["Email Address", "First Name", "Last Name", "Address", "Phone Number", "MEMBER_RATING", "OPTIN_TIME",
              "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE",
              "CC", "REGION", "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"]
    rows = [[p["email"], p["first"], p["last"], f"12 Main St  {p['city']}  US", p["phone"], str(i % 5 + 1),
             f"{p['created']} 10:12:00", "", f"{p['created']} 10:13:00", "203.0.113.9", "48.85", "2.35", "1", "2",
             "Europe/Paris", "FR", "IDF", f"{p['created']} 11:00:00", str(90000 + i), f"a{i:07x}", p["note"],
             '"Customer","2024"' if i % 4 == 0 else ""] for i, p in enumerate(people(n, seed=18))]
    return _case("mailchimp_audience", header=header, rows=rows, encoding="utf-8", delimiter=",")


def salesforce_report(n: int) -> CsvCase:
    """Salesforce report export: all quoted, footer of a blank line, Grand Totals, confidentiality and copyright."""
    header = ["Contact Owner", "First Name", "Last Name", "Title", "Account Name", "Email", "Phone", "Mailing City"]
    rows = [["Admin User", p["first"], p["last"], "Buyer", p["company"], p["email"], p["phone"], p["city"]]
            for p in people(n, seed=19)]
    footer = (f'\r\n"Grand Totals ({n} records)"\r\n\r\n"Confidential Information - Do Not Distribute"\r\n\r\n'
              '"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."\r\n')
    return _case("salesforce_report_footer", header=header, rows=rows, encoding="utf-8", delimiter=",",
                 quoting=csv.QUOTE_ALL, footer=footer)


def quickbooks(n: int) -> CsvCase:
    """QuickBooks report: company, report name and date range lines, a blank line, then the table."""
    header = ["Customer", "Phone Numbers", "Email", "Full Name", "Billing Address", "Shipping Address"]
    rows = [[p["company"] or f"{p['last']} household", f"Phone: {p['phone']}", p["email"], f"{p['first']} {p['last']}",
             f"12 Main St, {p['city']}", ""] for p in people(n, seed=20)]
    preamble = "Acme Bookkeeping LLC\r\nCustomer Contact List\r\nAll Dates\r\n\r\n"
    footer = "\r\n\r\nMonday, March 4, 2024 09:15 AM GMT-05:00\r\n"
    return _case("quickbooks_title_block", header=header, rows=rows, encoding="utf-8", delimiter=",",
                 preamble=preamble, footer=footer)


def legacy_pipe(n: int) -> CsvCase:
    """A legacy system's dump: latin-1, pipes, no quoting needed."""
    rows = [[p["id"], p["first"], p["last"], p["email"], p["phone"], p["city"]] for p in people(n, seed=21, latin1=True)]
    return _case("legacy_latin1_pipe", header=["ID", "FNAME", "LNAME", "EMAIL", "PHONE", "CITY"], rows=rows,
                 encoding="latin-1", delimiter="|", quoting=csv.QUOTE_NONE, lineterminator="\n")


def notes_preamble(n: int) -> CsvCase:
    """Two "Notes:" lines (with commas in them) before the header."""
    rows = [_standard(p) for p in people(n, seed=22)]
    preamble = "Notes: exported from the CRM on 2024-03-01, do not share\nNotes: phone numbers are unchecked\n"
    return _case("notes_preamble", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter=",",
                 preamble=preamble, lineterminator="\n")


def tab_utf8(n: int) -> CsvCase:
    """A TSV from a script: UTF-8, tabs, LF."""
    rows = [_standard(p) for p in people(n, seed=23)]
    return _case("tsv_utf8", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter="\t", lineterminator="\n")


def mailing_list(n: int) -> CsvCase:
    """One column of email addresses."""
    rows = [[p["email"]] for p in people(n, seed=24)]
    return _case("mailing_list_one_column", header=["Email"], rows=rows, encoding="utf-8", delimiter=",",
                 lineterminator="\n")


def few_rows(n: int) -> CsvCase:
    """Three records, semicolons."""
    rows = [[p["first"], p["email"]] for p in people(3, seed=25)]
    return _case("three_rows_semicolon", header=["Name", "Email"], rows=rows, encoding="utf-8", delimiter=";")


def addresses_semicolon(n: int) -> CsvCase:
    """Semicolons, with commas in every address (unquoted): a trap for comma-first sniffers."""
    rows = [[f"{p['first']} {p['last']}", f"{i} Rue de la Paix, 75002, {p['city']}", p["email"], p["phone"]]
            for i, p in enumerate(people(n, seed=26, latin1=True))]
    return _case("addresses_semicolon_cp1252", header=["Name", "Address", "Email", "Phone"], rows=rows,
                 encoding="cp1252", delimiter=";")


def single_quotes(n: int) -> CsvCase:
    """Single quotes as the quote character (a PHP export)."""
    rows = [[p["first"], p["last"], p["email"], p["company"], p["note"].replace('"', "")] for p in people(n, seed=27)]
    for row in rows[::5]:
        row[3] = "Smith, Jones & Co"
    return _case("single_quote_char", header=["first", "last", "email", "company", "note"], rows=rows,
                 encoding="utf-8", delimiter=",", quotechar="'", lineterminator="\n")


def pipe_quoted(n: int) -> CsvCase:
    """Pipes with quoted fields that contain pipes."""
    rows = [_standard(p) for p in people(n, seed=28)]
    for row in rows[::4]:
        row[7] = "a | b | c"
    return _case("pipe_quoted", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter="|")


def mac_cr(n: int) -> CsvCase:
    """Old Excel for Mac: bare CR line ends."""
    rows = [_standard(p) for p in people(n, seed=29, ascii_only=True)]
    return _case("mac_cr_line_ends", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter=",",
                 lineterminator="\r")


def excel_us_smart_quotes(n: int) -> CsvCase:
    """Excel US: cp1252 with typographic quotes and dashes (bytes 0x80-0x9F), commas, CRLF."""
    rows = [[p["first"].translate(LATIN1_SAFE), p["last"].translate(LATIN1_SAFE), p["email"], p["phone"],
             p["company"], p["city"], p["created"], "“Preferred” – calls after 5pm" if i % 3 == 0 else p["note"]]
            for i, p in enumerate(people(n, seed=30))]
    return _case("excel_us_cp1252_smart_quotes", header=STANDARD_HEADER, rows=rows, encoding="cp1252", delimiter=",")


def latin1_semicolon(n: int) -> CsvCase:
    """ISO-8859-1 with semicolons."""
    rows = [[p["first"], p["last"], p["email"], p["city"]] for p in people(n, seed=31, latin1=True)]
    return _case("latin1_semicolon", header=["Vorname", "Name", "Mail", "Stadt"], rows=rows, encoding="latin-1",
                 delimiter=";")


def eventbrite(n: int) -> CsvCase:
    """Eventbrite attendees: '#' and '/' in headers, money with currency, UTF-8."""
    header = ["Order #", "Order Date", "First Name", "Last Name", "Email", "Quantity", "Ticket Type", "Attendee #",
              "Job Title", "Company", "Total Paid", "Eventbrite Fees", "Attendee Status"]
    rows = [[str(700000 + i), f"{p['created']} 09:{i % 60:02d}", p["first"], p["last"], p["email"], "1",
             "General Admission", str(900000 + i), "Engineer", p["company"], f"${p['amount']}", "$2.50", "Attending"]
            for i, p in enumerate(people(n, seed=32))]
    return _case("eventbrite_attendees", header=header, rows=rows, encoding="utf-8", delimiter=",")


def numbers_semicolon(n: int) -> CsvCase:
    """Semicolons with decimal commas and thousands dots in most fields."""
    header = ["Kundennr", "Name", "Umsatz 2023", "Umsatz 2024", "Rabatt", "Email"]
    rows = [[p["id"], p["last"], f"{i * 13 % 9000 + 1000:,}".replace(",", ".") + ",50", f"{i * 7 % 900},25",
             f"{i % 30},0", p["email"]] for i, p in enumerate(people(n, seed=33, latin1=True))]
    return _case("numbers_decimal_commas", header=header, rows=rows, encoding="utf-8", delimiter=";")


def report_title_commas(n: int) -> CsvCase:
    """A title with commas, a date line and a blank line before the header, trailing blank lines."""
    rows = [_standard(p) for p in people(n, seed=34)]
    preamble = "Contacts, all regions, Q1 2024\nPrinted: 2024-04-01 08:00\n\n"
    footer = "\n\n\n"
    return _case("report_title_with_commas", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter=",",
                 preamble=preamble, footer=footer, lineterminator="\n")


def key_value_preamble(n: int) -> CsvCase:
    """Eight "Key,Value" metadata lines before the header (a two-column preamble)."""
    rows = [_standard(p) for p in people(n, seed=35)]
    preamble = "".join(f"{k},{v}\r\n" for k, v in [
        ("Report", "Contacts"), ("Owner", "Sales Ops"), ("Filter", "Active = true"), ("Region", "EMEA"),
        ("Run at", "2024-03-01 10:00"), ("Rows", str(n)), ("Format", "CSV"), ("Version", "3")])
    return _case("key_value_preamble", header=STANDARD_HEADER, rows=rows, encoding="utf-8", delimiter=",",
                 preamble=preamble)


def utf16le_no_bom(n: int) -> CsvCase:
    """UTF-16 LE without a BOM (some database tools), tabs."""
    rows = [_standard(p) for p in people(n, seed=36)]
    return _case("utf16le_no_bom_tab", header=STANDARD_HEADER, rows=rows, encoding="utf-16-le", delimiter="\t")


def ascii_head_cp1252_tail(n: int) -> CsvCase:
    """cp1252 whose first thousands of rows are plain ASCII: accents appear only near the end."""
    rows = [_standard(p) for p in people(max(n, 1500), seed=37, ascii_only=True)]
    for row in rows[-20:]:
        row[0], row[7] = "Chloé", "“late” accents"
    return _case("ascii_head_cp1252_tail", header=STANDARD_HEADER, rows=rows, encoding="cp1252", delimiter=",")


def polish_cp1250(n: int) -> CsvCase:
    """A Polish Excel export: cp1250 (Central European Windows), semicolons."""
    first = ["Łukasz", "Małgorzata", "Paweł", "Agnieszka", "Wojciech", "Żaneta", "Grzegorz", "Jadwiga"]
    last = ["Wiśniewski", "Wójcik", "Kowalczyk", "Kamińska", "Lewandowski", "Zieliński", "Szymańska", "Dąbrowski"]
    cities = ["Kraków", "Łódź", "Wrocław", "Gdańsk", "Poznań", "Bydgoszcz", "Białystok", "Częstochowa"]
    rows = [[first[i % 8], last[(i * 3) % 8], f"klient{i}@example.pl", cities[(i * 5) % 8], "Zażółć gęślą jaźń"]
            for i in range(n)]
    return _case("polish_cp1250_semicolon", header=["Imię", "Nazwisko", "E-mail", "Miasto", "Uwagi"], rows=rows,
                 encoding="cp1250", delimiter=";")


def dirty_export(n: int) -> CsvCase:
    """A hand-edited export: quoted notes with commas, one quote that never closes, one ragged row."""
    rows = [_standard(p) for p in people(n, seed=38)]
    case = _case("dirty_unterminated_quote_ragged", header=STANDARD_HEADER, rows=rows, encoding="utf-8",
                 delimiter=",", lineterminator="\n")
    lines = case.data.decode("utf-8").splitlines(keepends=True)
    unterminated, ragged = n // 3, 2 * n // 3  # indexes into lines: header is 0, row k is line k + 1
    lines[unterminated] = '"Ann,Lee,ann@example.com,never closed\n'
    lines[ragged] = lines[ragged].rstrip("\n") + ",one too many\n"
    case.data = "".join(lines).encode("utf-8")
    case.rows = [row for index, row in enumerate(rows, start=1) if index not in (unterminated, ragged)]
    case.bad_lines = [unterminated + 1, ragged + 1]
    return case


SHAPES: list[Callable[[int], CsvCase]] = [
    hubspot, excel_de, excel_fr_report, outlook, google_contacts, excel_unicode_text, utf16_be, utf8_bom_semicolon,
    mailchimp, salesforce_report, quickbooks, legacy_pipe, notes_preamble, tab_utf8, mailing_list, few_rows,
    addresses_semicolon, single_quotes, pipe_quoted, mac_cr, excel_us_smart_quotes, latin1_semicolon, eventbrite,
    numbers_semicolon, report_title_commas, key_value_preamble, utf16le_no_bom, ascii_head_cp1252_tail, polish_cp1250,
    dirty_export,
]


def corpus(rows: int = 300) -> list[CsvCase]:
    """Every shape with ``rows`` records (a few shapes fix their own size)."""
    return [shape(rows) for shape in SHAPES]
