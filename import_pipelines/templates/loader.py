"""Load and validate templates; every error names the file, the YAML path and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from import_pipelines.query.compile import compile_field, compile_query, expression_sites
from import_pipelines.query.expressions import ExpressionError, check_expression
from import_pipelines.templates import model as template_model
from import_pipelines.templates.model import RECORD_ALIAS, RECORD_COLUMNS, Template

_MODEL_NAMES = {name for name, value in vars(template_model).items() if isinstance(value, type)}

TEMPLATE_DIR = Path(__file__).parent


class TemplateError(ValueError):
    """An invalid template: ``problems`` is a list of (yaml path, rule) pairs."""

    headline = "invalid template"

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path or '<root>'}: {rule}" for path, rule in problems]
        super().__init__(f"{self.headline}\n  " + "\n  ".join(lines))


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(str(path), [("", "file not found")]) from None
    except UnicodeDecodeError as error:
        raise TemplateError(str(path), [("", f"not UTF-8 text (byte {error.start})")]) from None
    return parse_template(read_yaml(text, source=str(path)), source=str(path))


def read_yaml(text: str, *, source: str) -> Any:
    """Parse YAML text, refusing duplicate keys (YAML itself lets the last one win silently).

    Raises :class:`TemplateError` with the line and YAML path of every duplicate.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        problems = _duplicate_keys(node, "") if node is not None else []
        if problems:
            raise TemplateError(source, problems)
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TemplateError(source, [(where, f"not valid YAML: {getattr(error, 'problem', error)}")]) from None
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, path: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in first_line:
                problems.append((child, f"duplicate key {key!r} at line {line} (first at line {first_line[key]});"
                                        " YAML would keep only the last one"))
            else:
                first_line[key] = line
            problems += _duplicate_keys(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, f"{path}[{index}]")
    return problems


def parse_template(data: Any, *, source: str = "<template>") -> Template:
    """Validate template data (already parsed YAML) and check every query compiles."""
    if not isinstance(data, dict):
        raise TemplateError(source, [("", "a template is a mapping with name, source_system and entities")])
    data = _with_suite_files(data, source=source)
    try:
        template = Template.model_validate(data)
    except ValidationError as error:
        raise TemplateError(source, [(_yaml_path(e["loc"]), _rule(e)) for e in error.errors()]) from None
    problems = _compile_problems(template) + _validation_problems(template)
    if problems:
        raise TemplateError(source, problems)
    return template


def _with_suite_files(data: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Replace each ``validate: path/to/suite.yaml`` by the suite file's list of expectations.

    The path is relative to the template's file. A suite file is a YAML list of expectations
    (or a mapping with one, under ``expectations``); its errors name the suite file.
    """
    entities = data.get("entities")
    if not isinstance(entities, dict):
        return data
    replaced = {}
    for name, entity in entities.items():
        suite = entity.get("validate") if isinstance(entity, dict) else None
        if not isinstance(suite, str):
            continue
        path = Path(suite) if Path(suite).is_absolute() else Path(source).parent / suite
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise TemplateError(source, [(f"entities.{name}.validate", f"suite file {str(path)!r}: {error.strerror}")]
                                ) from None
        expectations = read_yaml(text, source=str(path))
        if isinstance(expectations, dict) and set(expectations) == {"expectations"}:
            expectations = expectations["expectations"]
        if not isinstance(expectations, list):
            raise TemplateError(str(path), [("", "a suite file is a list of expectations ({expect: ..., ...})")])
        try:
            for expectation in expectations:
                template_model.Expectation.model_validate(expectation)
        except ValidationError as error:
            index = expectations.index(expectation)
            raise TemplateError(str(path), [(f"[{index}]" + ("." + _yaml_path(e["loc"]) if _yaml_path(e["loc"]) else ""),
                                             _rule(e)) for e in error.errors()]) from None
        replaced[name] = {**entity, "validate": expectations}
    return {**data, "entities": {**entities, **replaced}} if replaced else data


def _validation_problems(template: Template) -> list[tuple[str, str]]:
    """Each expectation's fields are staged fields; each great-expectations name is one GX has.

    Checked without importing great-expectations (seconds to import): its expectations are one
    module each, named after the expectation.
    """
    problems: list[tuple[str, str]] = []
    for name, entity in template.entities.items():
        staged = entity.staged_fields
        for index, expectation in enumerate(entity.validate_):
            where = f"entities.{name}.validate[{index}]"
            unknown = [c for c in expectation.columns if c not in staged]
            if unknown:
                problems.append((where, f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not"
                                        f" among the fields ({', '.join(staged)})"))
            if expectation.expect.startswith("expect_") and expectation.expect not in gx_expectation_names():
                problems.append((f"{where}.expect", f"great-expectations has no expectation {expectation.expect!r}"))
    return problems


def gx_expectation_names() -> set[str]:
    """The expectations great-expectations ships (one module each), found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("great_expectations")
    if spec is None or not spec.submodule_search_locations:
        return set()
    return {p.stem for folder in spec.submodule_search_locations
            for p in (Path(folder) / "expectations" / "core").glob("expect_*.py")}


def _compile_problems(template: Template) -> list[tuple[str, str]]:
    """Compile every field, join and filter so SQL problems are found before a run starts."""
    problems: list[tuple[str, str]] = []
    for name, entity in template.entities.items():
        for column, ref in entity.references.items():
            if ref.entity not in template.entities:
                problems.append((f"entities.{name}.references.{column}.entity",
                                 f"unknown entity {ref.entity!r} (entities: {', '.join(template.entities)})"))
        problems += _derived_problems(template, name, entity)
    if problems:
        return problems
    for name, entity in template.entities.items():
        aliases = entity.aliases
        for section, specs in (("fields", entity.fields), ("match_fields", entity.match_fields)):
            for field_name, spec in specs.items():
                try:
                    compiled = compile_field(spec, aliases=aliases)
                except (ExpressionError, ValueError) as error:
                    problems.append((f"entities.{name}.{section}.{field_name}", str(error)))
                    continue
                if entity.records is not None:
                    inputs = template.record_inputs(name)
                    unknown = _unknown_inputs(compiled, inputs)
                    if unknown:
                        problems.append((f"entities.{name}.{section}.{field_name}",
                                         f"{', '.join(f'r.{c}' for c in unknown)} {'is' if len(unknown) == 1 else 'are'}"
                                         f" not among the inputs ({', '.join(inputs)})"))
        if entity.query is None:
            inputs = template.record_inputs(name)
            rules = entity.records.reject if entity.records is not None else []
            for index, rule in enumerate(rules):
                if rule.field not in inputs:
                    problems.append((f"entities.{name}.records.reject[{index}].field",
                                     f"{rule.field!r} is not among the inputs ({', '.join(inputs)})"))
            sites = [(f"entities.{name}.records.where[{index}]", text)
                     for index, text in enumerate(entity.records.where if entity.records is not None else [])]
            sites += [(f"entities.{name}.records.reject[{index}].when", rule.when) for index, rule in enumerate(rules)]
            for where, text in sites:
                try:
                    checked = check_expression(text, aliases={RECORD_ALIAS})
                except ExpressionError as error:
                    problems.append((where, str(error)))
                    continue
                unknown = _unknown_inputs(checked, inputs)
                if unknown:
                    problems.append((where, f"{', '.join(f'r.{c}' for c in unknown)}"
                                            f" {'is' if len(unknown) == 1 else 'are'} not among the inputs"
                                            f" ({', '.join(inputs)})"))
            continue
        # each SQL text of the query on its own, so the message names its exact place
        broken = False
        for where, text, scope in expression_sites(entity.query):
            try:
                check_expression(text, aliases=scope)
            except ExpressionError as error:
                problems.append((f"entities.{name}.query.{where}", str(error)))
                broken = True
        if broken:
            continue
        try:
            compile_query(entity.query, {}, server_version=160000)
        except (ExpressionError, ValueError) as error:
            problems.append((f"entities.{name}.query", str(error)))
    return problems


def _derived_problems(template: Template, name: str, entity: Any) -> list[tuple[str, str]]:
    """A records entity derived ``from_entity`` must name another entity that reads records of its own."""
    owner = entity.records.from_entity if entity.records is not None else None
    if owner is None:
        return []
    where = f"entities.{name}.records.from_entity"
    other = template.entities.get(owner)
    if other is None:
        return [(where, f"unknown entity {owner!r} (entities: {', '.join(template.entities)})")]
    if owner == name:
        return [(where, "an entity cannot be derived from its own records")]
    if other.records is None:
        return [(where, f"entity {owner!r} reads a query, not records; derive from a records entity")]
    if other.records.from_entity is not None:
        return [(where, f"entity {owner!r} is itself derived from {other.records.from_entity!r}; derive from"
                        f" {other.records.from_entity!r} directly")]
    return []


def _unknown_inputs(compiled: Any, inputs: Any) -> list[str]:
    """Columns of ``r`` a records entity's field reads that are neither inputs nor ``r``'s own columns."""
    import sqlglot
    from sqlglot import exp

    text = compiled if isinstance(compiled, str) else compiled.as_string(None)
    known = {*inputs, *RECORD_COLUMNS}
    return sorted({c.name for c in sqlglot.parse_one(f"SELECT {text}", read="postgres").find_all(exp.Column)
                   if c.table == RECORD_ALIAS and c.name not in known})


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
