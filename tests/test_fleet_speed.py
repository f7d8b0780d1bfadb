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
        # A filter of the same name that takes the context: compiled for it.
        context = SandboxedEnvironment()
        context.filters["f"] = where
        assert context.from_string(text).render(place="here") == "[a in here]"
        with pytest.raises(jinja2.TemplateSyntaxError):
            plain.from_string("{{ broken")
        with pytest.raises(jinja2.TemplateSyntaxError):  # not remembered as compiled
            plain.from_string("{{ broken")


WORKFLOW = (
    "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n"
)


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


def test_a_warm_checker_answers_as_its_subprocess(tmp_path: Path) -> None:
    """The first run in the worker itself, the next ones in forks: the same exit codes and
    output as subprocesses, a failure included."""
    import sys

    from helpers import require_tool

    from mlopsify.assessment_checks import _run
    from mlopsify.assessment_tools import run_warm, warm_tools

    checker = require_tool("check-jsonschema")
    assert checker == str(Path(sys.executable).parent / "check-jsonschema")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(WORKFLOW)
    (workflows / "bad.yml").write_text("on: push\njobs:\n  deploy:\n    steps: 3\n")
    runs = [
        [checker, "--builtin-schema", "vendor.github-workflows", f".github/workflows/{name}"]
        for name in ("bad.yml", "ci.yml", "bad.yml", "ci.yml")
    ]
    runs.append([checker, "--no-such-option"])
    alone = [_run(args, tmp_path) for args in runs]
    with warm_tools():
        warm = [_run(args, tmp_path) for args in runs]
        assert run_warm(["/bin/true"], tmp_path, 10) is None  # not a Python checker of ours
    assert run_warm(runs[0], tmp_path, 10) is None  # outside warm_tools: a subprocess
    assert [code for code, _ in alone] == [1, 0, 1, 0, 2]
    assert "bad.yml" in alone[0][1]
    assert warm == alone


def test_a_warm_dvc_dag_fails_as_its_subprocess(tmp_path: Path) -> None:
    """DVC keeps the streams it found at import for its log: a later run's error still reads
    as the subprocess's (the graph it draws on success is laid out anew each run)."""
    import subprocess
    import sys

    from helpers import require_tool

    from mlopsify.assessment_checks import _run
    from mlopsify.assessment_tools import warm_tools

    dvc = require_tool("dvc")
    assert dvc == str(Path(sys.executable).parent / "dvc")
    stages = {
        "good": "stages:\n  a:\n    cmd: a\n    outs: [x]\n  b:\n    cmd: b\n    deps: [x]\n",
        "cycle": "stages:\n  a:\n    cmd: a\n    deps: [y]\n    outs: [x]\n  b:\n    cmd: b\n"
        "    deps: [x]\n    outs: [y]\n",
    }
    for name, text in stages.items():
        (tmp_path / name).mkdir()
        subprocess.run(["git", "init", "--quiet"], cwd=tmp_path / name, check=True)
        subprocess.run([dvc, "init", "--quiet"], cwd=tmp_path / name, check=True)
        (tmp_path / name / "dvc.yaml").write_text(text)
    order = ["cycle", "good", "cycle", "good"]
    alone = [_run([dvc, "dag"], tmp_path / name) for name in order]
    with warm_tools():
        warm = [_run([dvc, "dag"], tmp_path / name) for name in order]
    assert [code for code, _ in alone] == [255, 0, 255, 0]
    assert [code for code, _ in warm] == [255, 0, 255, 0]

    def cycle(output: str) -> tuple[str, list[str]]:  # DVC names its stages in no fixed order
        message, _, stages = output.partition(" in stages: ")
        return message, sorted(stages.rstrip(".").split(", "))

    assert cycle(alone[0][1]) == (
        "ERROR: Same item(s) are defined as both a dependency and an output",
        ["a", "b"],
    )
    assert [cycle(warm[0][1]), cycle(warm[2][1])] == [cycle(alone[0][1])] * 2
    assert all("ingest" not in output and output for _, output in warm)
