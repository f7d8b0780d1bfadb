"""What makes `fleet status` fast keeps its answers: Jinja code compiled once per process
(mlopsify.rendering.compiled_once) renders exactly what a fresh compilation renders."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from mlopsify import rendering
from mlopsify.rendering import compiled_once
from mlopsify.rendering import copy_template as render_template
from mlopsify.template_source import TemplateSource


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_render_with_the_memo_equals_one_without(
    template_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def render(target: str) -> dict[str, bytes]:
        render_template(
            TemplateSource.at(template_dir),
            tmp_path / target / "memo-check",
            data={"project_name": "memo-check", "ci_provider": "github"},
            user_defaults={},
            defaults=True,
            vcs_ref=None,
        )
        return tree(tmp_path / target / "memo-check")

    with monkeypatch.context() as without:
        without.setattr(rendering, "compiled_once", nullcontext)
        fresh = render("fresh")
    first = render("memo")
    parsed: list[str | None] = []
    parse = jinja2.Environment._parse

    def counted(self: jinja2.Environment, source: str, name: str | None, filename: str | None):  # type: ignore[no-untyped-def]
        parsed.append(name)
        return parse(self, source, name, filename)

    monkeypatch.setattr(jinja2.Environment, "_parse", counted)
    again = render("again")
    assert len(fresh) > 40
    assert first == fresh
    assert again == fresh
    assert parsed == []  # the second render compiled nothing
    assert jinja2.Environment.compile is not rendering.compiled_once  # restored after use
    assert not hasattr(jinja2.Environment.compile, "__wrapped__")


def test_environments_that_compile_differently_share_no_code() -> None:
    def shout(value: str) -> str:
        return value.upper()

    @jinja2.pass_context
    def where(context: jinja2.runtime.Context, value: str) -> str:
        return f"{value} in {context.get('place')}"

    text = "[{{ 'a' | f }}]\n"
    with compiled_once():
        kept = SandboxedEnvironment(keep_trailing_newline=True)
        kept.filters["f"] = shout
        plain = SandboxedEnvironment()
        plain.filters["f"] = shout
        other = SandboxedEnvironment(variable_start_string="<<", variable_end_string=">>")
        other.filters["f"] = shout
        assert kept.from_string(text).render() == "[A]\n"
        assert plain.from_string(text).render() == "[A]"
        assert other.from_string(text).render() == "[{{ 'a' | f }}]"
        # The same environment with a filter that takes the context now: compiled again.
        plain.filters["f"] = where
        assert plain.from_string(text).render(place="here") == "[a in here]"
        with pytest.raises(jinja2.TemplateSyntaxError):
            plain.from_string("{{ broken")
        with pytest.raises(jinja2.TemplateSyntaxError):  # not remembered as compiled
            plain.from_string("{{ broken")


WORKFLOW = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n"


def test_workflows_checked_in_one_run_get_the_verdicts_of_one_run_each(tmp_path: Path) -> None:
    from helpers import require_tool

    from mlopsify.assessment_checks import Context, json_schema

    require_tool("check-jsonschema")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(WORKFLOW)
    (workflows / "deploy.yml").write_text(WORKFLOW.replace("make test", "make deploy"))
    paths = [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]

    def verdicts(together: bool) -> list[tuple[bool, str]]:
        context = Context(tmp_path, tmp_path, paths, run_tests=False)
        schema = "vendor.github-workflows"
        return [
            (found.earned, found.note)
            for found in (
                json_schema(context, path, schema, together=paths if together else None)
                for path in paths
            )
        ]

    both_pass = [(True, "passed: check-jsonschema vendor.github-workflows")] * 2
    assert verdicts(together=True) == verdicts(together=False) == both_pass
    (workflows / "deploy.yml").write_text("on: push\njobs:\n  deploy:\n    steps: 3\n")
    one_fails = verdicts(together=False)
    assert one_fails[0] == both_pass[0]
    assert one_fails[1][0] is False
    assert one_fails[1][1].startswith("failed: check-jsonschema vendor.github-workflows: ")
    assert verdicts(together=True) == one_fails
