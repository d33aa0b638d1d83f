"""``python -m import_pipelines mapping ...``: suggest, the refusal message, and the preset commands."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from import_pipelines.cli import main
from import_pipelines.mapping import decide, mapping_markdown, suggest
from import_pipelines.mapping.fields import CONTACT_FIELDS
from import_pipelines.mapping.read import read_sample
from import_pipelines.settings import PROJECT_ROOT

CSV = "Name;E-Mail;Tel;Spalte 7\nAnna Muster;anna@example.de;+49 30 1234567;x1\nBen Bauer;ben@example.de;030 555010;y2\n"


@pytest.fixture
def contacts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "kontakte.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode("utf-8"))
    return path


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_suggest_prints_the_suggestion_as_json(contacts_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["mapping", "suggest", str(contacts_csv), "--no-presets"])
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert set(document) == {"columns", "overall_confidence", "method"}
    assert document["method"] == "heuristic"
    assert [(c["header"], c["field"]) for c in document["columns"]] == [
        ("Name", "full_name"), ("E-Mail", "email"), ("Tel", "phone"), ("Spalte 7", "custom")]
    assert all(set(c) == {"header", "field", "confidence", "candidates"} for c in document["columns"])
    # "Spalte 7" says nothing: the run would stop, and stderr says what to run
    assert status == 1
    assert "'Spalte 7' -> custom (0." in err and "candidates: external_id 0.45" in err
    assert f"presets save {contacts_csv} --template contacts '--set=Spalte 7=custom'" in err


def test_the_printed_command_accepts_the_mapping_for_the_next_run(contacts_csv: Path, target_url: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    headers, rows = read_sample(contacts_csv)
    verdict = decide(suggest(headers, rows, CONTACT_FIELDS, ai=None), source=str(contacts_csv), template="contacts")
    assert not verdict.accepted and [c.header for c in verdict.uncertain] == ["Spalte 7"]
    words = shlex.split(verdict.command)
    assert words[:4] == ["python", "-m", "import_pipelines", "mapping"]
    corrected = [w.replace("Spalte 7=custom", "Spalte 7=notes") for w in words[3:]]
    assert main([*corrected, "--target-url", target_url]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert {"header": "Spalte 7", "field": "notes"} in saved["mapping"]

    assert main(["mapping", "suggest", str(contacts_csv), "--target-url", target_url]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["method"] == "preset" and document["overall_confidence"] == 1.0
    assert document["columns"][3]["field"] == "notes"


def test_preset_commands(contacts_csv: Path, target_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> object:
        assert main(["mapping", "presets", *args, "--target-url", target_url]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        return json.loads(out) if out else None

    saved = run("save", str(contacts_csv), "--name", "kontakte", "--set", "Tel=mobile")
    assert saved["name"] == "kontakte" and {"header": "Tel", "field": "mobile"} in saved["mapping"]
    assert [p["name"] for p in run("list")] == ["kontakte"]
    assert run("show", str(saved["id"]))["mapping"] == saved["mapping"]
    edited = run("save", "--preset", "kontakte", "--set", "Spalte 7=null", "--name", "kontakte 2024")
    assert edited["name"] == "kontakte 2024" and {"header": "Spalte 7", "field": None} in edited["mapping"]
    assert run("rename", "kontakte 2024", "crm")["name"] == "crm"
    assert run("delete", "crm") is None
    assert run("list") == []
    assert main(["mapping", "presets", "show", "crm", "--target-url", target_url]) == 2
    assert "error: no mapping preset with id or name 'crm'" in capsys.readouterr().err
    assert main(["mapping", "presets", "save", str(contacts_csv), "--set", "Tel=fon", "--target-url", target_url]) == 2
    assert "column 'Tel': 'fon' is not a target field" in capsys.readouterr().err


def test_the_module_runs_as_a_command(contacts_csv: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "import_pipelines", "mapping", "suggest", str(contacts_csv),
                             "--no-presets", "--no-ai"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["columns"][1]["field"] == "email"


def test_sample_reader_reads_files_as_the_import_does(tmp_path: Path) -> None:
    utf16 = tmp_path / "tab.csv"
    utf16.write_bytes("Nom\tVille\nLéa\tNice\n".encode("utf-16"))
    assert read_sample(utf16) == (["Nom", "Ville"], [["Léa", "Nice"]])
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Straße|Ort\nHauptstraße 1|Köln\n".encode("cp1252"))
    assert read_sample(latin) == (["Straße", "Ort"], [["Hauptstraße 1", "Köln"]])

    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Intro"
    book.active.append(["ignore me"])
    sheet = book.create_sheet("Kontakte")
    sheet.append(["Name", "Seit", "Umsatz"])
    sheet.append(["Anna", "2024-01-02", 12.5])
    sheet.append(["Ben"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    assert read_sample(path, "Kontakte") == (["Name", "Seit", "Umsatz"], [["Anna", "2024-01-02", 12.5], ["Ben", None, None]])
    with pytest.raises(ValueError, match=r"no sheet named 'Leads' \(sheets: Intro, Kontakte\)"):
        read_sample(path, "Leads")
    # the import's own readers: JSON records, a preamble before the header
    (tmp_path / "x.json").write_text('{"contacts": [{"mail": "a@x.de", "address": {"city": "Köln"}}]}')
    assert read_sample(tmp_path / "x.json") == (["mail", "address"], [["a@x.de", {"city": "Köln"}]])
    report = tmp_path / "report.csv"
    report.write_text("Contacts report\nExported 2024-03-01\n\nName,E-Mail\nAnna,a@x.de\n")
    assert read_sample(report) == (["Name", "E-Mail"], [["Anna", "a@x.de"]])


def test_markdown_table_shows_the_suggestion_and_the_mapping_used() -> None:
    suggestion = suggest(["E-Mail", "Tel | Fax", "Spalte 7"], [["a@x.de", "030 1234567", "q"]], CONTACT_FIELDS, ai=None)
    table = mapping_markdown(suggestion, used={"E-Mail": "email", "Tel | Fax": "phone", "Spalte 7": None})
    lines = table.splitlines()
    assert lines[0].startswith("Overall confidence **") and "method **heuristic**" in lines[0]
    assert lines[2] == "| header | field | confidence | method | candidates |"
    assert lines[4].startswith("| E-Mail | email | 1.00 | heuristic | custom 0.60")
    assert lines[5].startswith("| Tel \\| Fax | ")
    assert lines[6].startswith("| Spalte 7 | **") and "*not imported*" in lines[6] and "(suggested custom)" in lines[6]
