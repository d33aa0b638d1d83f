"""Load and validate templates; every error names the file, the YAML path and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from import_pipelines.query.compile import compile_field, compile_query
from import_pipelines.query.expressions import ExpressionError
from import_pipelines.templates import model as template_model
from import_pipelines.templates.model import Template

_MODEL_NAMES = {name for name, value in vars(template_model).items() if isinstance(value, type)}

TEMPLATE_DIR = Path(__file__).parent


class TemplateError(ValueError):
    """An invalid template: ``problems`` is a list of (yaml path, rule) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path or '<root>'}: {rule}" for path, rule in problems]
        super().__init__("invalid template\n  " + "\n  ".join(lines))


def shipped_templates() -> list[str]:
    """Names of the templates that ship with the project."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))


def template_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped template name (``freescout``) or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    shipped = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        raise TemplateError(str(name_or_path), [("", f"no such template; shipped: {', '.join(shipped_templates())}")])
    return shipped


def load_template(name_or_path: str | Path) -> Template:
    """Read, validate and compile-check a template. Raises :class:`TemplateError`."""
    path = template_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(str(path), [("", "file not found")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TemplateError(str(path), [(where, f"not valid YAML: {getattr(error, 'problem', error)}")]) from None
    return parse_template(data, source=str(path))


def parse_template(data: Any, *, source: str = "<template>") -> Template:
    """Validate template data (already parsed YAML) and check every query compiles."""
    if not isinstance(data, dict):
        raise TemplateError(source, [("", "a template is a mapping with name, source_system and entities")])
    try:
        template = Template.model_validate(data)
    except ValidationError as error:
        raise TemplateError(source, [(_yaml_path(e["loc"]), _rule(e)) for e in error.errors()]) from None
    problems = _compile_problems(template)
    if problems:
        raise TemplateError(source, problems)
    return template


def _compile_problems(template: Template) -> list[tuple[str, str]]:
    """Compile every field, join and filter so SQL problems are found before a run starts."""
    problems: list[tuple[str, str]] = []
    for name, entity in template.entities.items():
        for column, ref in entity.references.items():
            if ref.entity not in template.entities:
                problems.append((f"entities.{name}.references.{column}.entity",
                                 f"unknown entity {ref.entity!r} (entities: {', '.join(template.entities)})"))
    if problems:
        return problems
    for name, entity in template.entities.items():
        aliases = entity.query.aliases
        for section, specs in (("fields", entity.fields), ("match_fields", entity.match_fields)):
            for field_name, spec in specs.items():
                try:
                    compile_field(spec, aliases=aliases)
                except (ExpressionError, ValueError) as error:
                    problems.append((f"entities.{name}.{section}.{field_name}", str(error)))
        try:
            compile_query(entity.query, {}, server_version=160000)
        except (ExpressionError, ValueError) as error:
            problems.append((f"entities.{name}.query", str(error)))
    return problems


# pydantic adds the tag of each union member or validator it tried to a location; they are not YAML keys
_LOC_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _yaml_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if text in _LOC_TAGS or "[" in text or text in _MODEL_NAMES:
            continue
        out += ("." if out else "") + text
    return out


def _rule(error: dict[str, Any]) -> str:
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ")
