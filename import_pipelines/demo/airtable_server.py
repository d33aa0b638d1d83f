"""A local fake of Airtable's REST API, for tests, benchmarks and the README example.

It serves what a reader of Airtable uses, shaped as Airtable shapes it:

- ``GET /v0/{base}/{table}`` (table name or id) and ``POST .../listRecords``: pages of at most 100
  records, an opaque ``offset`` to the next page (kept per listing, so pages stay consistent while
  records change), ``pageSize``, ``maxRecords``, ``fields[]``, ``sort[i][field|direction]``,
  ``view`` (accepted, not applied: views exist here only by name) and ``filterByFormula`` for the
  forms the readers generate (``AND``, ``OR``, ``NOT``, ``IS_AFTER``, ``IS_BEFORE``,
  ``LAST_MODIFIED_TIME()``, ``CREATED_TIME()``, ``DATETIME_PARSE('...')``, ``{Field} = 'text'``);
  another formula is answered 422 ``INVALID_FILTER_BY_FORMULA`` as Airtable would;
- ``GET /v0/meta/bases/{base}/tables``: the schema (field names, types, options);
- empty fields left out of a record, as Airtable does (a checkbox is only ever sent as ``true``).

Requests are counted per base; the base class (:class:`~import_pipelines.demo.fake_http.FakeHttpServer`)
measures the rate and misbehaves on request. A test changes, adds and deletes records between
reads through :meth:`FakeAirtable.change`, :meth:`FakeAirtable.add_cases`, :meth:`FakeAirtable.delete`.

:func:`cases_table` generates an enforcement-cases table with one field of every type a reader
must map (each case names its offender through a linked record and its name and postcode
lookups); :func:`notices_table` the notices those cases link to. ``python -m
import_pipelines.demo.airtable_server --records N [--port P]`` serves both and prints its URL
(the benchmark runs it so in a separate process; the README example on port 8765).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import signal
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from import_pipelines.demo.fake_http import Answer, FakeHttpServer, Request

DEMO_BASE = "appDemoEnforce001"
CASES_TABLE_ID = "tblCases00000001"
CASES_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # record i is created i minutes after this
MODIFIED_AFTER_CREATED = timedelta(seconds=30)
OFFENDERS = 997  # distinct offenders the generated cases link to

CASES_FIELDS: list[dict[str, Any]] = [
    {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
    {"id": "fldRegId000000001", "name": "Regulator ID", "type": "singleLineText"},
    {"id": "fldStatus00000001", "name": "Status", "type": "singleSelect",
     "options": {"choices": [{"id": "selOpen", "name": "Open"}, {"id": "selRev", "name": "Under review"},
                             {"id": "selClosed", "name": "Closed"}]}},
    {"id": "fldTags0000000001", "name": "Tags", "type": "multipleSelects",
     "options": {"choices": [{"id": "selA", "name": "Noise"}, {"id": "selB", "name": "Waste"},
                             {"id": "selC", "name": "Licensing"}, {"id": "selD", "name": "Repeat"}]}},
    {"id": "fldOffender000001", "name": "Offender", "type": "multipleRecordLinks",
     "options": {"linkedTableId": "tblOffenders00001", "prefersSingleRecordLink": True}},
    {"id": "fldOffName0000001", "name": "Offender Name", "type": "multipleLookupValues",
     "options": {"isValid": True, "recordLinkFieldId": "fldOffender000001", "fieldIdInLinkedTable": "fldOffNm",
                 "result": {"type": "singleLineText"}}},
    {"id": "fldOffPost0000001", "name": "Offender Postcode", "type": "multipleLookupValues",
     "options": {"isValid": True, "recordLinkFieldId": "fldOffender000001", "fieldIdInLinkedTable": "fldOffPc",
                 "result": {"type": "singleLineText"}}},
    {"id": "fldNotices0000001", "name": "Notices", "type": "multipleRecordLinks",
     "options": {"linkedTableId": "tblNotices0000001", "inverseLinkFieldId": "fldNtcCase0000001"}},
    {"id": "fldFine0000000001", "name": "Fine", "type": "currency", "options": {"precision": 2, "symbol": "£"}},
    {"id": "fldPoints00000001", "name": "Penalty Points", "type": "number", "options": {"precision": 0}},
    {"id": "fldPaid0000000001", "name": "Paid", "type": "checkbox", "options": {"color": "greenBright",
                                                                              "icon": "check"}},
    {"id": "fldOpened00000001", "name": "Opened", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
    {"id": "fldHearing0000001", "name": "Hearing", "type": "dateTime",
     "options": {"timeZone": "Europe/London", "dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"}}},
    {"id": "fldNotes000000001", "name": "Notes", "type": "richText"},
    {"id": "fldDocs0000000001", "name": "Documents", "type": "multipleAttachments", "options": {"isReversed": False}},
    {"id": "fldNoticeCount001", "name": "Notice Count", "type": "count",
     "options": {"isValid": True, "recordLinkFieldId": "fldNotices"}},
    {"id": "fldTotalFines0001", "name": "Total Fines", "type": "rollup",
     "options": {"isValid": True, "recordLinkFieldId": "fldNotices", "result": {"type": "currency"}}},
    {"id": "fldLastMod0000001", "name": "Last Modified", "type": "lastModifiedTime",
     "options": {"isValid": True, "result": {"type": "dateTime", "options": {"timeZone": "utc"}}}},
]


NOTICES_TABLE_ID = "tblNotices0000001"
NOTICE_AMOUNT = 125.5  # every generated notice; a case's "Total Fines" rollup is their sum
NOTICE_KINDS = ("Warning", "Fixed penalty", "Prohibition")

NOTICES_FIELDS: list[dict[str, Any]] = [
    {"id": "fldNtcNo000000001", "name": "Notice No", "type": "singleLineText"},
    {"id": "fldNtcCase0000001", "name": "Case", "type": "multipleRecordLinks",
     "options": {"linkedTableId": CASES_TABLE_ID, "inverseLinkFieldId": "fldNotices0000001",
                 "prefersSingleRecordLink": True}},
    {"id": "fldNtcCaseReg0001", "name": "Case Regulator ID", "type": "multipleLookupValues",
     "options": {"isValid": True, "recordLinkFieldId": "fldNtcCase0000001", "fieldIdInLinkedTable": "fldRegId000000001",
                 "result": {"type": "singleLineText"}}},
    {"id": "fldNtcKind0000001", "name": "Kind", "type": "singleSelect",
     "options": {"choices": [{"id": f"selK{i}", "name": kind} for i, kind in enumerate(NOTICE_KINDS)]}},
    {"id": "fldNtcIssued00001", "name": "Issued", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
    {"id": "fldNtcServed00001", "name": "Served At", "type": "dateTime",
     "options": {"timeZone": "utc", "dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"}}},
    {"id": "fldNtcAmount00001", "name": "Amount", "type": "currency", "options": {"precision": 2, "symbol": "£"}},
    {"id": "fldNtcWithdrn0001", "name": "Withdrawn", "type": "checkbox", "options": {"color": "redBright",
                                                                                   "icon": "check"}},
    {"id": "fldNtcLastMod0001", "name": "Last Modified", "type": "lastModifiedTime",
     "options": {"isValid": True, "result": {"type": "dateTime", "options": {"timeZone": "utc"}}}},
]


@dataclass
class FakeRecord:
    """One stored record: its id, times and non-empty fields."""

    id: str
    created: datetime
    modified: datetime
    fields: dict[str, Any]


@dataclass
class FakeTable:
    """One table of the fake: schema fields (metadata API form) and records in creation order."""

    id: str
    name: str
    fields: list[dict[str, Any]]
    records: dict[str, FakeRecord] = field(default_factory=dict)
    modified_field: str | None = None  # a lastModifiedTime field the fake keeps up to date

    def put(self, record: FakeRecord) -> None:
        """Store (or replace) a record, keeping the "Last modified time" field equal to its modified time."""
        if self.modified_field:
            record.fields[self.modified_field] = _stamp(record.modified)
        self.records[record.id] = record


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def case_fields(number: int, *, seed: int = 7) -> dict[str, Any]:
    """The fields of generated case ``number`` (1-based), empty ones left out as Airtable does."""
    rnd = random.Random(seed * 1_000_003 + number)
    fields: dict[str, Any] = {"Name": f"Case {number:06d}", "Regulator ID": f"REG-{number:07d}",
                              "Status": rnd.choice(["Open", "Under review", "Closed"])}
    tags = [tag for tag in ("Noise", "Waste", "Licensing", "Repeat") if rnd.random() < 0.3]
    if tags:
        fields["Tags"] = tags
    offender = number % OFFENDERS
    fields["Offender"] = [f"recOff{offender:011d}"]
    fields["Offender Name"] = [f"Offender {offender}"]
    fields["Offender Postcode"] = [offender_postcode(offender)]
    if rnd.random() < 0.9:
        fields["Fine"] = round(rnd.uniform(50, 5000), 2)
    fields["Penalty Points"] = rnd.randint(0, 12)
    if number % 3 == 0:
        fields["Paid"] = True
    fields["Opened"] = (CASES_EPOCH.date() - timedelta(days=rnd.randint(0, 900))).isoformat()
    if rnd.random() < 0.7:
        fields["Hearing"] = _stamp(CASES_EPOCH + timedelta(days=rnd.randint(1, 300), hours=rnd.randint(8, 16)))
    if rnd.random() < 0.6:
        fields["Notes"] = f"**Case {number}**: complaint logged\n\n- visit _pending_\n"
    if number % 5 == 0:
        fields["Documents"] = [{"id": f"att{number:014d}", "url": f"https://dl.airtable.test/cases/{number}/notice.pdf",
                                "filename": "notice.pdf", "size": 1024 + number, "type": "application/pdf"}]
    notices = rnd.randint(0, 3)
    if notices:
        fields["Notice Count"] = notices
        fields["Total Fines"] = round(notices * NOTICE_AMOUNT, 2)
        fields["Notices"] = [notice_id(number, k) for k in range(1, notices + 1)]
    else:
        fields["Notice Count"] = 0
    return fields


def case_id(number: int) -> str:
    """The record id of generated case ``number``: ``rec`` and 14 characters, as Airtable's."""
    return f"recCase{number:010d}"


def offender_postcode(offender: int) -> str:
    """A UK-shaped postcode for generated offender ``offender``."""
    letters = "ABCDEFGHJKLMNPRSTUWXYZ"
    return (f"{letters[offender % 22]}{letters[(offender // 22) % 22]}{offender % 9 + 1}"
            f" {offender % 10}{letters[(offender * 7) % 22]}{letters[(offender * 13) % 22]}")


def notice_id(case: int, k: int) -> str:
    """The record id of the ``k``-th notice (1-based) of generated case ``case``."""
    return f"recNtc{case:09d}{k}"


def notices_table(cases: int | range | list[int], *, seed: int = 7) -> FakeTable:
    """A "Notices" table: each generated case's notices (its "Notice Count" of them), linked to the case.

    ``cases`` is a count (cases 1..n) or the case numbers whose notices the table holds. Notice
    k of case i is created k hours after the case.
    """
    table = FakeTable(id=NOTICES_TABLE_ID, name="Notices", fields=[dict(f) for f in NOTICES_FIELDS],
                      modified_field="Last Modified")
    for number in (range(1, cases + 1) if isinstance(cases, int) else cases):
        case = case_fields(number, seed=seed)
        for k in range(1, case["Notice Count"] + 1):
            created = CASES_EPOCH + timedelta(minutes=number, hours=k)
            fields: dict[str, Any] = {
                "Notice No": f"N-{number:07d}-{k}", "Case": [case_id(number)],
                "Case Regulator ID": [case["Regulator ID"]], "Kind": NOTICE_KINDS[(number + k) % 3],
                "Issued": created.date().isoformat(), "Amount": NOTICE_AMOUNT}
            if k % 2:
                fields["Served At"] = _stamp(created + timedelta(days=2))
            if (number + k) % 11 == 0:
                fields["Withdrawn"] = True
            table.put(FakeRecord(id=notice_id(number, k), created=created, modified=created + MODIFIED_AFTER_CREATED,
                                 fields=fields))
    return table


def cases_table(records: int, *, seed: int = 7) -> FakeTable:
    """A "Cases" table of ``records`` generated cases; case i created i minutes after :data:`CASES_EPOCH`."""
    table = FakeTable(id=CASES_TABLE_ID, name="Cases", fields=[dict(f) for f in CASES_FIELDS],
                      modified_field="Last Modified")
    for number in range(1, records + 1):
        created = CASES_EPOCH + timedelta(minutes=number)
        table.put(FakeRecord(id=case_id(number), created=created, modified=created + MODIFIED_AFTER_CREATED,
                             fields=case_fields(number, seed=seed)))
    return table


class FormulaError(ValueError):
    """A filterByFormula this fake does not understand."""


class FakeAirtable(FakeHttpServer):
    """The fake Airtable server: ``tables`` per base id; see the module docstring."""

    def __init__(self, tables: dict[str, list[FakeTable]], *, token: str | None = "patFAKE.token",
                 clock: Any = None, **misbehaviour: Any) -> None:
        super().__init__(token=token, **misbehaviour)
        self.bases = tables
        self.clock = clock or (lambda: datetime.now(UTC))
        self.records_served: Counter[str] = Counter()  # per base
        self.served_ids: Counter[str] = Counter()  # how often each record id was served
        self._listings: dict[str, list[str]] = {}
        self._listing_numbers = itertools.count(1)
        self._data_lock = threading.Lock()

    # --- changing the data between reads -------------------------------------------------------------
    def table(self, base: str, table: str) -> FakeTable:
        """A table by name or id."""
        for candidate in self.bases.get(base, []):
            if table in (candidate.id, candidate.name):
                return candidate
        raise KeyError(f"no table {table!r} in base {base!r}")

    def change(self, base: str, table: str, record_ids: list[str], updates: dict[str, Any]) -> None:
        """Set fields of records (None empties one) and stamp them modified now."""
        with self._data_lock:
            target = self.table(base, table)
            now = self.clock()
            for record_id in record_ids:
                record = target.records[record_id]
                for name, value in updates.items():
                    if value is None:
                        record.fields.pop(name, None)
                    else:
                        record.fields[name] = value
                record.modified = now
                target.put(record)

    def add_cases(self, base: str, table: str, count: int) -> list[str]:
        """Add ``count`` generated cases, created and modified now; return their ids."""
        with self._data_lock:
            target = self.table(base, table)
            now = self.clock()
            start = len(target.records) + 1
            while case_id(start) in target.records:
                start += 1
            added = []
            for number in range(start, start + count):
                target.put(FakeRecord(id=case_id(number), created=now, modified=now, fields=case_fields(number)))
                added.append(case_id(number))
            return added

    def delete(self, base: str, table: str, record_ids: list[str]) -> None:
        """Delete records."""
        with self._data_lock:
            target = self.table(base, table)
            for record_id in record_ids:
                del target.records[record_id]

    def reset_counts(self) -> None:
        """Forget request and record counts."""
        super().reset_counts()
        with self._lock:
            self.records_served.clear()
            self.served_ids.clear()

    # --- serving ----------------------------------------------------------------------------------
    def scope_of(self, request: Request) -> str:
        """Requests count per base, as Airtable's limit does."""
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["v0", "meta", "bases"] and len(parts) > 3:
            return parts[3]
        return parts[1] if len(parts) > 1 else ""

    def answer(self, request: Request) -> Answer:
        """Route to the metadata or the list-records endpoint."""
        parts = [p for p in request.path.strip("/").split("/") if p]
        if len(parts) == 5 and parts[:3] == ["v0", "meta", "bases"] and parts[4] == "tables":
            return self._schema(parts[3])
        if parts[:1] == ["v0"] and len(parts) in (3, 4) and (len(parts) == 3 or parts[3] == "listRecords"):
            from urllib.parse import unquote

            if len(parts) == 4 and request.method == "POST":
                options = json.loads(request.body or b"{}")
                params = _post_options(options)
            else:
                params = request.query
            return self._list(parts[1], unquote(parts[2]), params)
        return Answer(404, {"error": "NOT_FOUND"})

    def _schema(self, base: str) -> Answer:
        if base not in self.bases:
            return Answer(404, {"error": {"type": "NOT_FOUND", "message": f"base {base} not found"}})
        return Answer(body={"tables": [
            {"id": t.id, "name": t.name, "primaryFieldId": t.fields[0]["id"] if t.fields else None,
             "fields": t.fields, "views": [{"id": "viwGrid000000001", "name": "Grid view", "type": "grid"}]}
            for t in self.bases[base]]})

    def _list(self, base: str, table_name: str, params: dict[str, list[str]]) -> Answer:
        try:
            table = self.table(base, table_name)
        except KeyError:
            return Answer(404, {"error": {"type": "TABLE_NOT_FOUND", "message": f"Could not find table {table_name}"}})
        first = lambda name: (params.get(name) or [None])[0]  # noqa: E731
        page_size = int(first("pageSize") or 100)
        if not 1 <= page_size <= 100:
            return Answer(422, {"error": {"type": "INVALID_PAGE_SIZE", "message": "pageSize must be 1 to 100"}})
        offset = first("offset")
        if offset:
            listing_id, _, position_text = offset.partition("/")
            ids = self._listings.get(listing_id)
            if ids is None or not position_text.isdigit():
                return Answer(422, {"error": {"type": "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"}})
            position = int(position_text)
        else:
            try:
                ids = self._matching(table, params)
            except FormulaError as error:
                return Answer(422, {"error": {"type": "INVALID_FILTER_BY_FORMULA", "message": str(error)}})
            listing_id = f"itr{next(self._listing_numbers):08d}"
            self._listings[listing_id] = ids
            position = 0
        wanted = params.get("fields[]") or params.get("fields")
        page_ids = ids[position:position + page_size]
        records = []
        with self._data_lock:
            for record_id in page_ids:
                record = table.records.get(record_id)
                if record is None:  # deleted while the listing ran
                    continue
                cells = record.fields if wanted is None else {k: v for k, v in record.fields.items() if k in wanted}
                records.append({"id": record.id, "createdTime": _stamp(record.created), "fields": cells})
        with self._lock:
            self.records_served[base] += len(records)
            self.served_ids.update(r["id"] for r in records)
        body: dict[str, Any] = {"records": records}
        if position + page_size < len(ids):
            body["offset"] = f"{listing_id}/{position + page_size}"
        return Answer(body=body)

    def _matching(self, table: FakeTable, params: dict[str, list[str]]) -> list[str]:
        """The ids of a new listing: filtered, sorted, cut at maxRecords."""
        formula = (params.get("filterByFormula") or [""])[0]
        predicate = _parse_formula(formula) if formula else None
        with self._data_lock:
            records = list(table.records.values())
        if predicate is not None:
            records = [r for r in records if _truthy(predicate(r))]
        sorts = []
        for index in itertools.count():
            name = (params.get(f"sort[{index}][field]") or [None])[0]
            if name is None:
                break
            sorts.append((name, (params.get(f"sort[{index}][direction]") or ["asc"])[0] == "desc"))
        for name, descending in reversed(sorts):
            records.sort(key=lambda r: (r.fields.get(name) is None, _sortable(r.fields.get(name))), reverse=descending)
        limit = (params.get("maxRecords") or [None])[0]
        if limit:
            records = records[:int(limit)]
        return [r.id for r in records]


def _post_options(options: dict[str, Any]) -> dict[str, list[str]]:
    """listRecords' JSON body as the query parameters of the GET form."""
    params: dict[str, list[str]] = {}
    for key, value in options.items():
        if key == "fields":
            params["fields[]"] = list(value)
        elif key == "sort":
            for index, item in enumerate(value):
                params[f"sort[{index}][field]"] = [item["field"]]
                params[f"sort[{index}][direction]"] = [item.get("direction", "asc")]
        else:
            params[key] = [str(value)]
    return params


def _sortable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _truthy(value: Any) -> bool:
    return bool(value) and value != "0"


# --- the formula subset ---------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<func>[A-Z_]+)\s*\(|(?P<field>\{[^}]*\})|'(?P<sq>(?:[^'\\]|\\.)*)'"
                    r"|\"(?P<dq>(?:[^\"\\]|\\.)*)\"|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),=]))")


def _parse_formula(text: str) -> Any:
    """A predicate over a FakeRecord for the formula subset; raises FormulaError for anything else."""
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise FormulaError(f"The formula for filtering records is invalid: unexpected {text[position:][:20]!r}")
        tokens.append(match)
        position = match.end()
    expression, rest = _expression(tokens, 0)
    if rest != len(tokens):
        raise FormulaError("The formula for filtering records is invalid: trailing input")
    return expression


def _expression(tokens: list[re.Match[str]], index: int) -> tuple[Any, int]:
    left, index = _operand(tokens, index)
    if index < len(tokens) and tokens[index].group("punct") == "=":
        right, index = _operand(tokens, index + 1)
        return (lambda r, a=left, b=right: a(r) == b(r)), index
    return left, index


def _operand(tokens: list[re.Match[str]], index: int) -> tuple[Any, int]:
    if index >= len(tokens):
        raise FormulaError("The formula for filtering records is invalid: it ends too early")
    token = tokens[index]
    if token.group("field") is not None:
        name = token.group("field")[1:-1]
        return (lambda r, n=name: r.fields.get(n)), index + 1
    for quoted in ("sq", "dq"):
        if token.group(quoted) is not None:
            value = token.group(quoted).replace("\\'", "'").replace('\\"', '"')
            return (lambda r, v=value: v), index + 1
    if token.group("num") is not None:
        number = float(token.group("num"))
        return (lambda r, v=number: v), index + 1
    if token.group("func") is None:
        raise FormulaError(f"The formula for filtering records is invalid: unexpected {token.group(0).strip()!r}")
    name = token.group("func")
    index += 1
    args: list[Any] = []
    if index < len(tokens) and tokens[index].group("punct") == ")":
        index += 1
    else:
        while True:
            argument, index = _expression(tokens, index)
            args.append(argument)
            if index >= len(tokens):
                raise FormulaError(f"The formula for filtering records is invalid: {name}( is not closed")
            punct = tokens[index].group("punct")
            index += 1
            if punct == ")":
                break
            if punct != ",":
                raise FormulaError(f"The formula for filtering records is invalid: in {name}()")
    return _function(name, args), index


def _function(name: str, args: list[Any]) -> Any:
    arity = {"AND": None, "OR": None, "NOT": 1, "IS_AFTER": 2, "IS_BEFORE": 2, "LAST_MODIFIED_TIME": 0,
             "CREATED_TIME": 0, "DATETIME_PARSE": 1, "TRUE": 0, "FALSE": 0}
    if name not in arity:
        raise FormulaError(f"The formula for filtering records is invalid: unknown function {name}() (this fake"
                           " understands only the forms the readers generate)")
    if arity[name] is not None and len(args) != arity[name]:
        raise FormulaError(f"The formula for filtering records is invalid: {name}() takes {arity[name]} arguments")
    if name == "AND":
        return lambda r: all(_truthy(a(r)) for a in args)
    if name == "OR":
        return lambda r: any(_truthy(a(r)) for a in args)
    if name == "NOT":
        return lambda r: not _truthy(args[0](r))
    if name == "IS_AFTER":
        return lambda r: _instant(args[0](r)) is not None and _instant(args[0](r)) > _instant(args[1](r))
    if name == "IS_BEFORE":
        return lambda r: _instant(args[0](r)) is not None and _instant(args[0](r)) < _instant(args[1](r))
    if name == "LAST_MODIFIED_TIME":
        return lambda r: r.modified
    if name == "CREATED_TIME":
        return lambda r: r.created
    if name == "DATETIME_PARSE":
        return lambda r: _instant(args[0](r))
    return (lambda r: True) if name == "TRUE" else (lambda r: False)


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise FormulaError(f"DATETIME_PARSE cannot read {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> None:
    """Serve a generated Cases table until interrupted; print one JSON line with the URL, base and token."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--token", default="patFAKE.token")
    parser.add_argument("--rate-limit-every", type=int, default=None)
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--no-notices", action="store_true", help="serve the Cases table alone")
    args = parser.parse_args(argv)
    tables = [cases_table(args.records)] + ([] if args.no_notices else [notices_table(args.records)])
    fake = FakeAirtable({DEMO_BASE: tables}, token=args.token, rate_limit_every=args.rate_limit_every)
    url = fake.start(port=args.port)
    print(json.dumps({"url": url, "base": DEMO_BASE, "tables": [t.name for t in tables], "records": args.records,
                      "notices": sum(len(t.records) for t in tables[1:])}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
