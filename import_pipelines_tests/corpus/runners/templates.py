"""Corpus kind ``template``: a template file, validated as a profile would load it (no database)."""

from __future__ import annotations

import pytest

from import_pipelines.templates.loader import TemplateError, load_template
from import_pipelines_tests.corpus.loader import Case, Context, runner
from import_pipelines_tests.corpus.runners.expect import assert_template_error, template_text


@runner("template")
def run(case: Case, ctx: Context) -> None:
    """Write the template, load it; expect ``error: {path, rule}`` or ``valid: true``."""
    path = ctx.tmp_path / f"{case.id}.yaml"
    path.write_text(template_text(case.spec), encoding="utf-8")
    if "error" in case.expect:
        with pytest.raises(TemplateError) as caught:
            load_template(path)
        assert_template_error(caught.value, case.expect["error"], source=str(path))
    else:
        assert case.expect == {"valid": True}
        template = load_template(path)
        assert template.entities
