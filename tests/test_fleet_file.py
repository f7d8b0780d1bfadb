"""The fleet file: what `mlopsify fleet` reads, and one clear line for what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlopsify.cli import app
from mlopsify.fleet import DEFAULT_TEST, FleetRepository, read_fleet


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    return path


def test_settings_at_the_top_apply_to_every_repository_unless_it_names_its_own(tmp_path: Path):
    fleet = read_fleet(
        write(
            tmp_path,
            "test: make test\napi: http://127.0.0.1:8080\nrepositories:\n"
            "  - git@gitlab.example.com:ml/credit-risk.git\n"
            "  - url: ../churn\n    name: churn-model\n    branch: trunk\n    test: 'true'\n"
            "  - url: https://github.com/acme/forecast.git\n    provider: github\n"
            "    project: acme/forecast\n",
        )
    )
    assert fleet.repositories == [
        FleetRepository(
            "credit-risk",
            "git@gitlab.example.com:ml/credit-risk.git",
            test="make test",
            api="http://127.0.0.1:8080",
        ),
        FleetRepository(
            "churn-model",
            str(tmp_path.parent / "churn"),
            branch="trunk",
            test="true",
            api="http://127.0.0.1:8080",
        ),
        FleetRepository(
            "forecast",
            "https://github.com/acme/forecast.git",
            test="make test",
            provider="github",
            api="http://127.0.0.1:8080",
            project="acme/forecast",
        ),
    ]
    assert fleet.repositories[1].is_local and not fleet.repositories[0].is_local
    assert FleetRepository("x", "/srv/x.git").test == DEFAULT_TEST == "make lint test"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "repositories: []\n",
            "lists no repositories: add `repositories:` with one `- url: ...` each",
        ),
        ("repositories:\n  - name: a\n", "repository 1: give its `url:` (a git URL or a path)"),
        (
            "repositories:\n  - url: a\n    brnach: main\n",
            "repository 1: unknown key brnach; use api, branch, name, project, provider, test, url",
        ),
        (
            "tokens: x\nrepositories:\n  - url: a\n",
            "unknown key tokens at the top; use branch, test, provider, api",
        ),
        (
            "repositories:\n  - url: a\n    provider: jenkins\n",
            "repository 1: provider must be gitlab or github, not 'jenkins' (a Jenkins project"
            " opens its requests on its git host)",
        ),
        (
            "repositories:\n  - url: a\n    branch: 3\n",
            "repository 1: branch must be a non-empty text, not 3",
        ),
        (
            "repositories:\n  - url: x/a.git\n  - url: y/a\n",
            "the name a is given twice; give each repository its own `name:`",
        ),
        ("repositories: [\n", "is not valid YAML at line 2: fix it\n"),
        ("- url: a\n", "lists no repositories: add `repositories:` with one `- url: ...` each"),
    ],
)
def test_a_bad_fleet_file_is_refused_with_one_line(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, text)
    result = CliRunner().invoke(app, ["fleet", "status", str(path)])
    assert result.exit_code == 3
    assert message in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_a_missing_fleet_file_says_so(tmp_path: Path):
    result = CliRunner().invoke(app, ["fleet", "update", str(tmp_path / "fleet.yml")])
    assert result.exit_code == 3
    assert result.output == (
        f"error: fleet file {tmp_path / 'fleet.yml'} does not exist: give the path of a YAML file\n"
    )


def test_a_git_failure_is_one_line_without_the_credentials_of_its_url():
    from subprocess import CalledProcessError

    from mlopsify.fleet_status import git_failure

    error = CalledProcessError(
        128,
        ["git", "push", "--quiet", "https://bot:glpat-secret@gitlab.example.com/ml/a.git", "HEAD"],
        stderr="remote: denied\nfatal: Authentication failed for 'https://bot:glpat-secret@gitlab.example.com/ml/a.git/'\n",
    )
    assert git_failure(error) == (
        "git push --quiet https://gitlab.example.com/ml/a.git HEAD failed: Authentication failed"
        " for 'https://gitlab.example.com/ml/a.git/'"
    )


def test_releases_behind_counts_from_the_tag_of_an_untagged_commit():
    from mlopsify.errors import RepositoryStateError
    from mlopsify.fleet_status import releases_behind

    versions = ["v0.1.0", "v0.2.0", "v0.3.0"]
    assert releases_behind(versions, "v0.1.0") == 2
    assert releases_behind(versions, "v0.2.0-3-gabc1234") == 1
    assert releases_behind(versions, "v0.3.0") == 0
    with pytest.raises(RepositoryStateError, match=r"on template v9\.0\.0, which is not in the"):
        releases_behind(versions, "v9.0.0")


def test_without_the_runtime_installed_the_update_workers_run_it_from_the_shipped_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import importlib.util
    import subprocess
    import sys

    from mlopsify import fleet_status
    from mlopsify.template import template_for
    from mlopsify.template_source import TemplateSource

    assert fleet_status.runtime_wheel(tmp_path) is None  # importable here: nothing to add
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    wheel = fleet_status.runtime_wheel(tmp_path)
    newest = template_for(TemplateSource.shipped()).newest().removeprefix("v")
    assert wheel == tmp_path / f"mlopsify_runtime-{newest}-py3-none-any.whl"
    # A Python that sees only the wheel imports the job's module from it.
    shown = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]);"
            " import mlopsify_runtime.template_update_branch as m; print(m.__file__)",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == f"{wheel}/mlopsify_runtime/template_update_branch.py"
