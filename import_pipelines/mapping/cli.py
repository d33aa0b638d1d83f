"""Command line for field mapping: ``mapping suggest`` and ``mapping presets list|show|save|rename|delete``.

    python -m import_pipelines mapping suggest contacts.csv --template contacts
    python -m import_pipelines mapping presets save contacts.csv --template contacts --set "Tel=phone"
    python -m import_pipelines mapping presets save --preset crm-export --set "Fax=null"
    python -m import_pipelines mapping presets list
    python -m import_pipelines mapping presets rename contacts-1a2b3c4d crm-export
    python -m import_pipelines mapping presets delete crm-export

Presets live in the target database's ``import_control`` schema: ``--target-url``, else
``IMPORT_PIPELINES_TARGET_URL``, else the embedded server. The OpenAI key comes only from the
environment variable named by ``--api-key-env`` (default ``OPENAI_API_KEY``); without it the
offline heuristic answers. Output is JSON on stdout; messages go to stderr. Exit status: 0 done,
1 a suggestion not certain enough to load (``suggest``; the JSON is still printed), 2 an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from import_pipelines.settings import TARGET_URL_ENV

EXIT_OK, EXIT_UNCERTAIN, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The ``mapping`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m import_pipelines mapping",
                                     description="Suggest, accept and manage field mappings.")
    commands = parser.add_subparsers(dest="command", required=True)

    def source(sub: argparse.ArgumentParser, *, required: bool = True) -> None:
        sub.add_argument("file", nargs=None if required else "?", help="CSV or XLSX file")
        sub.add_argument("--template", default="contacts", help="template whose fields to map onto (default: contacts)")
        sub.add_argument("--sheet", help="worksheet of a spreadsheet (default: the first)")
        sub.add_argument("--rows", type=int, default=50, help="sample rows read (default: 50)")
        sub.add_argument("--no-ai", action="store_true", help="never call OpenAI")
        sub.add_argument("--model", default=None, help="OpenAI model")
        sub.add_argument("--api-key-env", default=None, help="environment variable holding the OpenAI key")
        sub.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint")

    def target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--target-url", help=f"target database URL (default: ${TARGET_URL_ENV})")

    suggest = commands.add_parser("suggest", help="print the suggested mapping of a file as JSON")
    source(suggest)
    target(suggest)
    suggest.add_argument("--no-presets", action="store_true", help="do not look up saved presets")

    presets = commands.add_parser("presets", help="saved mappings").add_subparsers(dest="action", required=True)
    listing = presets.add_parser("list", help="list presets")
    listing.add_argument("--template", default=None)
    target(listing)
    show = presets.add_parser("show", help="show one preset")
    show.add_argument("preset", help="id or name")
    target(show)
    save = presets.add_parser("save", help="save a file's mapping (suggested, corrected by --set), or edit a preset")
    source(save, required=False)
    target(save)
    save.add_argument("--preset", help="edit this preset (id or name) instead of reading a file")
    save.add_argument("--name", help="preset name (default: kept, or <template>-<fingerprint>)")
    save.add_argument("--set", dest="assignments", action="append", default=[], metavar="HEADER=FIELD",
                      help="map HEADER to FIELD ('custom' keeps it as a custom field, 'null' leaves it out)")
    rename = presets.add_parser("rename", help="rename a preset")
    rename.add_argument("preset", help="id or name")
    rename.add_argument("new_name")
    target(rename)
    delete = presets.add_parser("delete", help="delete a preset")
    delete.add_argument("preset", help="id or name")
    target(delete)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mapping ...``; ``argv`` starts after the word ``mapping``."""
    from import_pipelines.mapping.overrides import MappingError
    from import_pipelines.mapping.presets import PresetNotFound

    args = build_parser().parse_args(list(sys.argv[2:] if argv is None else argv))
    try:
        if args.command == "suggest":
            return _suggest(args)
        return _presets(args)
    except (MappingError, PresetNotFound, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _suggest(args: argparse.Namespace) -> int:
    from import_pipelines.db.connect import connection
    from import_pipelines.mapping.decision import decide

    fields = _fields(args.template)
    if args.no_presets:
        suggestion = _make_suggestion(args, fields, conn=None)
    else:
        with connection(_target_url(args), autocommit=True) as conn:
            suggestion = _make_suggestion(args, fields, conn=conn)
    print(suggestion.model_dump_json(indent=2))
    verdict = decide(suggestion, source=args.file, template=args.template, sheet=args.sheet)
    if not verdict.accepted:
        print(verdict.message, file=sys.stderr)
        return EXIT_UNCERTAIN
    return EXIT_OK


def _presets(args: argparse.Namespace) -> int:
    from import_pipelines.db.connect import connection
    from import_pipelines.mapping import presets

    with connection(_target_url(args), autocommit=True) as conn:
        if args.action == "list":
            _print([{"id": p.preset_id, "name": p.name, "template": p.template, "columns": len(p.mapping),
                     "updated_at": p.updated_at.isoformat()} for p in presets.list_presets(conn, template=args.template)])
        elif args.action == "show":
            _print(presets.get_preset(conn, args.preset).as_dict())
        elif args.action == "rename":
            _print(presets.rename_preset(conn, args.preset, args.new_name).as_dict())
        elif args.action == "delete":
            deleted = presets.delete_preset(conn, args.preset)
            print(f"deleted preset {deleted.name!r} (id {deleted.preset_id})", file=sys.stderr)
        else:
            _print(_save(args, conn).as_dict())
    return EXIT_OK


def _save(args: argparse.Namespace, conn):
    from import_pipelines.mapping import presets
    from import_pipelines.mapping.overrides import apply_overrides, parse_assignments

    if args.preset:
        if args.file:
            raise ValueError("give either a FILE to save its mapping or --preset to edit one, not both")
        preset = presets.get_preset(conn, args.preset)
        fields = _fields(preset.template)
        edited = presets.update_preset(conn, preset.preset_id, parse_assignments(args.assignments, fields), fields)
        return presets.rename_preset(conn, edited.preset_id, args.name) if args.name else edited
    if not args.file:
        raise ValueError("presets save needs a FILE (or --preset NAME to edit a saved preset)")
    fields = _fields(args.template)
    suggestion = apply_overrides(_make_suggestion(args, fields, conn=conn), parse_assignments(args.assignments, fields),
                                 fields)
    return presets.save_preset(conn, template=args.template, fields=fields, name=args.name,
                               mapping=[(c.header, c.field) for c in suggestion.columns])


def _make_suggestion(args: argparse.Namespace, fields, *, conn):
    from import_pipelines.mapping.read import read_sample
    from import_pipelines.mapping.suggest import AISettings, suggest

    headers, rows = read_sample(args.file, args.sheet, rows=args.rows)
    defaults = AISettings()
    ai = None if args.no_ai else AISettings(model=args.model or defaults.model,
                                            api_key_env=args.api_key_env or defaults.api_key_env,
                                            base_url=args.base_url)
    return suggest(headers, rows, fields, template=args.template, conn=conn, ai=ai)


def _fields(template: str):
    from import_pipelines.mapping.fields import template_fields

    return template_fields(template)


def _target_url(args: argparse.Namespace) -> str:
    if args.target_url:
        return args.target_url
    if os.environ.get(TARGET_URL_ENV):
        return os.environ[TARGET_URL_ENV]
    from import_pipelines.settings import ensure_environment

    return ensure_environment().target


def _print(document: object) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))
