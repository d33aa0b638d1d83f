"""A fake paginated JSON API: ``GET /v1/items`` in any of the pagination styles the HTTP source reads.

Records live in a list of dicts (``id``, ``updated_at`` ISO 8601, nested values); answers put them
under ``data.items`` and the next cursor under ``meta.next_cursor``. ``updated_since`` (ISO 8601)
keeps records updated strictly after it. Counting, rate measurement and misbehaviour come from
:class:`~import_pipelines.demo.fake_http.FakeHttpServer`.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from import_pipelines.demo.fake_http import Answer, FakeHttpServer, Request

Style = Literal["none", "page", "offset", "cursor", "link"]
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)


def items(count: int, *, start: int = 1) -> list[dict[str, Any]]:
    """``count`` records with ids from ``start``, record i updated i minutes after :data:`EPOCH`."""
    return [{"id": number, "name": f"Item {number}", "updated_at": (EPOCH + timedelta(minutes=number)).isoformat(),
             "owner": {"name": f"Owner {number % 7}", "tags": ["a", "b"][: number % 3]}}
            for number in range(start, start + count)]


class FakeJsonApi(FakeHttpServer):
    """The fake API; ``page_size`` is what it serves when the client names none (it caps at ``max_page_size``)."""

    def __init__(self, records: list[dict[str, Any]], *, style: Style, token: str | None = "api-secret-token",
                 page_size: int = 50, max_page_size: int = 100, **options: Any) -> None:
        super().__init__(token=token, **options)
        self.records = records
        self.style = style
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.served_ids: Counter[Any] = Counter()

    def answer(self, request: Request) -> Answer:
        """List the records of one page in the configured style."""
        if request.path != "/v1/items":
            return Answer(404, {"error": "not found"})
        chosen = [r for r in self.records if self._after(r, request.param("updated_since"))]
        size = min(int(request.param("per_page") or request.param("limit") or self.page_size), self.max_page_size)
        if self.style == "none":
            start, size = 0, len(chosen)
        elif self.style in ("page", "link"):
            start = (int(request.param("page") or 1) - 1) * size
        elif self.style == "offset":
            start = int(request.param("offset") or 0)
        else:
            start = int(request.param("cursor") or 0)
        page = chosen[start:start + size]
        self.served_ids.update(r["id"] for r in page)
        more = start + size < len(chosen)
        body: dict[str, Any] = {"data": {"items": page}, "meta": {}}
        headers: dict[str, str] = {}
        if self.style == "cursor" and more:
            body["meta"]["next_cursor"] = str(start + size)
        if self.style == "link" and more:
            query = urlencode({**{k: v[0] for k, v in request.query.items()}, "page": start // size + 2})
            headers["Link"] = f'<{self.url}/v1/items?{query}>; rel="next", <{self.url}/v1/items>; rel="first"'
        return Answer(body=body, headers=headers)

    @staticmethod
    def _after(record: dict[str, Any], since: str | None) -> bool:
        if not since:
            return True
        return datetime.fromisoformat(record["updated_at"]) > datetime.fromisoformat(since)
