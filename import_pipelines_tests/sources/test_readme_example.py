"""The README's Airtable example runs as written and says what the README says it does."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from import_pipelines.settings import PROJECT_ROOT


def test_the_readme_airtable_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRTABLE_TOKEN", "")  # the example sets it; restored after the test
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "FakeAirtable" in b]
    assert len(blocks) == 1
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[0], "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert sum("rate limited (HTTP 429)" in line for line in lines) == 1
    assert "500 records (0 failed) from 5 pages, full read, complete" in lines[-2]
    assert lines[-1] == "2025-01-06 17:20:30+00:00 True 4078.8 2025-02-28 23:00:00+00:00"
