"""Names a project cannot take, and the names derived from the one it takes.

The refused names live in one place, the validator that copier.yml gives both project_name
and package_name: `mlopsify new`, `mlopsify adopt` and a plain `copier copy` refuse the same
names with the same line. These tests read that list and check it against what it must hold
(Python's standard library, the dependencies of template/pyproject.toml.jinja, pytest's
names), then run each refusal through the command line.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shlex
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from template_repos import COPIER_YML, V1, TemplateRepo, git
from test_cli_new import BAD_ANSWERS
from typer.testing import CliRunner

from mlopsify import TemplateSource, new_project
from mlopsify.cli import app

runner = CliRunner()
VALIDATOR = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))["project_name"][
    "validator"
]


def jinja_set(name: str) -> object:
    """The literal a ``{%- set NAME = ... %}`` of the validator assigns."""
    found = re.search(rf"{{%- set {name} = (.+?) %}}", VALIDATOR, re.DOTALL)
    assert found, f"copier.yml's project_name validator sets no {name}"
    return ast.literal_eval(found[1])


def normalized(name: str) -> str:
    """A name as the validator compares it: lowercase, '-' and '.' as '_'."""
    return re.sub(r"[-.]", "_", name.lower())


def template_dependencies() -> set[str]:
    """Every distribution template/pyproject.toml.jinja requires, for any answers, with those
    the runtime it pins brings in (runtime/pyproject.toml): a project imports them all."""
    text = "".join(
        (ROOT / path).read_text(encoding="utf-8")
        for path in ("template/pyproject.toml.jinja", "runtime/pyproject.toml")
    )
    quoted = re.findall(r'"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*[<>=!~;]', text)
    return {name.lower() for name in quoted} | {"hatchling"}


STDLIB = jinja_set("stdlib")
DEPENDENCIES = jinja_set("dependencies")
PYTEST_NAMES = jinja_set("pytest_names")


def test_the_stdlib_list_holds_every_public_module_of_this_python():
    assert isinstance(STDLIB, list)
    public = {name.lower() for name in sys.stdlib_module_names if not name.startswith("_")}
    assert sorted(public - set(STDLIB)) == []


def test_the_dependency_list_is_the_template_dependencies_and_their_import_names():
    assert isinstance(DEPENDENCIES, dict)
    required = template_dependencies()
    assert {"pandas", "mlflow", "scikit-learn", "dvc", "fastapi", "numpy"} <= required
    # every distribution, by its own name; no entry for a dependency the template dropped
    assert {normalized(d): d for d in required}.items() <= DEPENDENCIES.items()
    assert set(DEPENDENCIES.values()) <= required
    # the import names of those installed here (pytest's own are in the pytest list)
    for module, distributions in packages_distributions().items():
        for distribution in distributions:
            if distribution.lower().replace("_", "-") not in required:
                continue
            if module.isidentifier() and not module.startswith("_"):
                assert module.lower() in {*DEPENDENCIES, *PYTEST_NAMES}, (module, distribution)
    assert DEPENDENCIES["sklearn"] == "scikit-learn" and DEPENDENCIES["yaml"] == "pyyaml"


def test_pytest_names():
    assert PYTEST_NAMES == ["_pytest", "conftest", "py", "test", "tests"]


PANDAS = (
    "error: project name 'pandas' would shadow the pandas package the project depends on: "
    "choose another, for example 'pandas-model'"
)
REFUSED = {
    "pandas": PANDAS,
    "mlflow": "error: project name 'mlflow' would shadow the mlflow package the project depends "
    "on: choose another, for example 'mlflow-model'",
    "scikit-learn": "error: project name 'scikit-learn' would shadow the scikit-learn package the "
    "project depends on: choose another, for example 'scikit-learn-model'",
    "Sklearn": "error: project name 'Sklearn' would shadow the scikit-learn package the project "
    "depends on: choose another, for example 'Sklearn-model'",
    "json": "error: project name 'json' would shadow the module json of Python's standard "
    "library: choose another, for example 'json-model'",
    "test": "error: project name 'test' is a name pytest takes (_pytest, conftest, py, test, "
    "tests): choose another, for example 'test-model'",
    "conftest": "error: project name 'conftest' is a name pytest takes (_pytest, conftest, py, "
    "test, tests): choose another, for example 'conftest-model'",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_new_refuses_a_project_name_that_shadows_a_module(
    name: str, template_dir: Path, chdir_tmp: Path
):
    result = runner.invoke(
        app,
        [
            "new",
            "proj",
            "--defaults",
            "-d",
            f"project_name={name}",
            "--template",
            str(template_dir),
        ],
    )
    assert (result.exit_code, result.output) == (3, REFUSED[name] + "\n")
    assert not (chdir_tmp / "proj").exists()


def test_new_refuses_a_directory_name_that_shadows_a_module(template_dir: Path, chdir_tmp: Path):
    result = runner.invoke(app, ["new", "pandas", "--defaults", "--template", str(template_dir)])
    assert (result.exit_code, result.output) == (3, PANDAS + "\n")
    assert not (chdir_tmp / "pandas").exists()


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (
            "sklearn",
            "package name 'sklearn' would shadow the scikit-learn package the project depends on:"
            " choose another, for example 'sklearn_model'",
        ),
        (
            "logging",
            "package name 'logging' would shadow the module logging of Python's standard library:"
            " choose another, for example 'logging_model'",
        ),
        (
            "tests",
            "package name 'tests' is a name pytest takes (_pytest, conftest, py, test, tests):"
            " choose another, for example 'tests_model'",
        ),
    ],
)
def test_new_refuses_a_package_name_that_shadows_a_module(
    package: str, message: str, template_dir: Path, chdir_tmp: Path
):
    result = runner.invoke(
        app,
        [
            "new",
            "churn",
            "--defaults",
            "-d",
            f"package_name={package}",
            "--template",
            str(template_dir),
        ],
    )
    assert (result.exit_code, result.output) == (3, f"error: {message}\n")


NAME_FORMAT_ERRORS = [
    (args, message)
    for args, message in BAD_ANSWERS
    if any(arg.startswith(("project_name=", "package_name=")) for arg in args)
]


@pytest.mark.parametrize(("args", "message"), NAME_FORMAT_ERRORS)
def test_the_one_validator_keeps_the_format_messages(
    args: list[str], message: str, template_dir: Path, chdir_tmp: Path
):
    """test_cli_new's messages for a badly formed name, from this tree's copier.yml."""
    assert len(NAME_FORMAT_ERRORS) == 6
    result = runner.invoke(
        app, ["new", "proj", "--defaults", *args, "--template", str(template_dir)]
    )
    assert (result.exit_code, result.output) == (3, message + "\n")


def test_adopt_refuses_the_same_names(template_dir: Path, tmp_path: Path):
    repo = tmp_path / "service"
    repo.mkdir()
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    (repo / "README.md").write_text("# service\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "--quiet", "-m", "start"], check=True)
    result = runner.invoke(
        app,
        [
            "adopt",
            str(repo),
            "--defaults",
            "-d",
            "project_name=pandas",
            "--template",
            str(template_dir),
        ],
    )
    assert (result.exit_code, result.output) == (3, PANDAS + "\n")
    assert (
        subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
        ).stdout
        == ""
    )


def test_plain_copier_refuses_the_same_names(template_dir: Path, tmp_path: Path):
    """No mlopsify in the way: Copier's own command runs copier.yml's validator."""
    copier = Path(sys.executable).parent / "copier"
    completed = subprocess.run(
        [copier, "copy", "--defaults", "-d", "project_name=pandas", template_dir, tmp_path / "p"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode != 0
    assert PANDAS.removeprefix("error: ") in completed.stderr
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------ derived names

LONG = "customer-lifetime-value-forecast-for-retail"  # 43 characters


def short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def test_long_names_that_share_40_characters_get_different_kubernetes_names(
    template_dir: Path, chdir_tmp: Path
):
    derived = {}
    for name in (f"{LONG}-stores", f"{LONG}-online"):
        result = runner.invoke(app, ["new", name, "--defaults", "--template", str(template_dir)])
        assert result.exit_code == 0, result.output
        answers = yaml.safe_load((chdir_tmp / name / ".copier-answers.yml").read_text())
        expected = f"{name[:31].rstrip('-')}-{short_hash(name)}"
        assert len(expected) <= 40
        assert result.output.splitlines()[1] == (
            f"names: package {name.replace('-', '_')}, Kubernetes and image name {expected}"
        )
        assert answers["image_name"] == answers["k8s_namespace"] == expected
        derived[name] = expected
    assert len(set(derived.values())) == 2


def test_a_name_of_40_characters_is_kept_whole(template_dir: Path, chdir_tmp: Path):
    name = LONG[:40]
    result = runner.invoke(app, ["new", name, "--defaults", "--template", str(template_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"names: package {name.replace('-', '_')}, Kubernetes and image name {name}"
    )


# ------------------------------------------------------------------ what the docs claim

GETTING_STARTED = ROOT / "docs" / "getting-started.md"
CLAIM = re.compile(
    r"`mlopsify new (?P<args>[^`]+?) --defaults` (?P<verb>stops with|prints) `(?P<text>[^`]+)`"
    r"(?: \(exit (?P<code>\d)\))?"
)


def doc_claims() -> list[tuple[str, str, str, int]]:
    text = " ".join(GETTING_STARTED.read_text(encoding="utf-8").split())
    return [(m["args"], m["verb"], m["text"], int(m["code"] or 0)) for m in CLAIM.finditer(text)]


def test_getting_started_makes_claims_about_names():
    assert {args for args, *_ in doc_claims()} >= {"'my model'", "3d-model", "pandas"}


@pytest.mark.parametrize(("args", "verb", "text", "code"), doc_claims())
def test_getting_started_says_what_new_does_with_a_name(
    args: str, verb: str, text: str, code: int, template_dir: Path, chdir_tmp: Path
):
    result = runner.invoke(
        app, ["new", *shlex.split(args), "--defaults", "--template", str(template_dir)]
    )
    lines = result.output.splitlines()
    if verb == "stops with":
        assert result.exit_code == code
        assert len(lines) == 1
        start, _, end = text.partition(" ...")
        assert lines[0].startswith(start) and lines[0].endswith(end), (lines[0], text)
    else:
        assert result.exit_code == 0, result.output
        assert text in lines


# ------------------------------------------------------------------ names recorded before


def test_update_refuses_a_recorded_name_that_the_new_release_refuses(tmp_path: Path):
    """Copier would drop the refused answer and take the default (my-ml-service) silently."""
    repo = TemplateRepo(tmp_path / "template")
    repo.release("v1", V1)
    config = yaml.safe_load(COPIER_YML)
    config["project_name"]["validator"] = VALIDATOR
    repo.release("v2", {"copier.yml": yaml.safe_dump(config, sort_keys=False)})
    project = new_project(
        tmp_path / "json", defaults=True, template=TemplateSource.at(repo.path), vcs_ref="v1"
    )
    refused = runner.invoke(app, ["update", str(project)])
    assert (refused.exit_code, refused.output) == (
        3,
        "error: template v2 refuses the project's project_name: project name 'json' would shadow"
        " the module json of Python's standard library: choose another, for example"
        " 'json-model'; give another on the way with --data project_name=VALUE\n",
    )
    assert git("status", "--porcelain", cwd=project) == ""
    result = runner.invoke(app, ["update", str(project), "-d", "project_name=json-model"])
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (recorded["_commit"], recorded["project_name"]) == ("v2", "json-model")
