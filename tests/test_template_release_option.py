"""`--release` and `--template`: which template a project comes from, and which release.

Releases are ordered by PEP 440, pre-releases included (v0.3.0-rc1 comes before v0.3.0); the
default is the newest final release. The template used is recorded in the answers file, so
the next update, by anyone, reads it. The templates are tiny git repositories with real tags
(tests/template_repos.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from template_repos import V1, V2, V2_REMOVED, TemplateRepo, git
from typer.testing import CliRunner

from mlopsify import TemplateSource, new_project
from mlopsify.cli import app
from mlopsify.template_source import BUNDLE_ENV, CANONICAL_URL, newest_release, release_order

runner = CliRunner()
TAGS = ["v0.1.0", "v0.2.0", "v0.3.0-rc1", "v0.3.0", "v0.4.0-rc1"]
AVAILABLE = "v0.1.0, v0.2.0, v0.3.0-rc1, v0.3.0, v0.4.0-rc1"


def release_files(tag: str) -> dict[str, str]:
    """Each release changes the Makefile, so a project shows which one it has."""
    return {"template/Makefile": f"release:\n\techo {tag}\n"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    repo = TemplateRepo(tmp_path_factory.mktemp("templates") / "tiny")
    repo.release("v0.1.0", {**V1, **release_files("v0.1.0")})
    for tag in TAGS[1:]:
        repo.release(
            tag, {**V2, **release_files(tag)}, removed=V2_REMOVED if tag == "v0.2.0" else ()
        )
    return repo


def answers(project: Path) -> dict[str, object]:
    loaded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.output


def commit(project: Path, message: str = "update") -> None:
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "-m", message, cwd=project)


def test_releases_are_ordered_by_pep_440_with_pre_releases():
    shuffled = ["v0.3.0", "v0.4.0-rc1", "v0.1.0", "not-a-version", "v0.3.0-rc1", "v0.2.0"]
    assert release_order(shuffled) == TAGS
    assert newest_release(TAGS) == "v0.3.0"
    assert newest_release(TAGS, prereleases=True) == "v0.4.0-rc1"
    assert newest_release(["v0.1.0-rc1", "v0.1.0-rc2"]) == "v0.1.0-rc2"
    assert newest_release([]) is None


# ------------------------------------------------------------------ new


def test_new_takes_the_newest_final_release_and_records_the_template(
    template: TemplateRepo, chdir_tmp: Path
):
    code, output = invoke("new", "proj", "--defaults", "--template", template.path)
    assert code == 0, output
    recorded = answers(chdir_tmp / "proj")
    assert (recorded["_commit"], recorded["_src_path"]) == ("v0.3.0", str(template.path))


@pytest.mark.parametrize(
    ("release", "tag"),
    [
        ("v0.1.0", "v0.1.0"),
        ("0.2.0", "v0.2.0"),
        ("v0.3.0-rc1", "v0.3.0-rc1"),
        ("0.4.0rc1", "v0.4.0-rc1"),
        ("0.4.0-rc1", "v0.4.0-rc1"),
    ],
)
def test_new_takes_a_release_in_any_spelling(
    template: TemplateRepo, chdir_tmp: Path, release: str, tag: str
):
    code, output = invoke(
        "new", "proj", "--defaults", "--release", release, "--template", template.path
    )
    assert code == 0, output
    project = chdir_tmp / "proj"
    assert answers(project)["_commit"] == tag
    assert (project / "Makefile").read_text() == f"release:\n\techo {tag}\n"


def test_new_refuses_a_release_that_does_not_exist(template: TemplateRepo, chdir_tmp: Path):
    code, output = invoke(
        "new", "proj", "--defaults", "--release", "v0.9.0", "--template", template.path
    )
    assert (code, output) == (
        6,
        f"error: template version v0.9.0 does not exist: available versions are {AVAILABLE}\n",
    )
    assert not (chdir_tmp / "proj").exists()


def test_new_takes_the_newest_pre_release_when_there_is_nothing_else(
    tmp_path: Path, chdir_tmp: Path
):
    repo = TemplateRepo(tmp_path / "early")
    repo.release("v1.0.0-rc1", V1)
    repo.release("v1.0.0-rc2", V2)
    code, output = invoke("new", "proj", "--defaults", "--template", repo.path)
    assert code == 0, output
    assert answers(chdir_tmp / "proj")["_commit"] == "v1.0.0-rc2"


def test_new_from_an_older_shipped_release(chdir_tmp: Path):
    shipped = TemplateSource.shipped().versions()
    if len(shipped) < 2:
        pytest.fail(f"the shipped bundle has one release only: {shipped}")
    code, output = invoke("new", "proj", "--defaults", "--release", shipped[0])
    assert code == 0, output
    recorded = answers(chdir_tmp / "proj")
    assert (recorded["_commit"], recorded["_src_path"]) == (shipped[0], CANONICAL_URL)


def test_new_from_a_bundle_file(template: TemplateRepo, chdir_tmp: Path):
    bundle = template.bundle(chdir_tmp / "history.bundle")
    code, output = invoke("new", "proj", "--defaults", "--template", "history.bundle")
    assert code == 0, output
    recorded = answers(chdir_tmp / "proj")
    assert (recorded["_commit"], recorded["_src_path"]) == ("v0.3.0", str(bundle))


def test_a_template_that_is_not_there(chdir_tmp: Path):
    code, output = invoke("new", "proj", "--defaults", "--template", "no/such/template")
    assert (code, output) == (
        6,
        "error: template no/such/template is neither a directory nor a git URL: give the path or"
        " URL of a Copier template repository\n",
    )


def test_a_template_url_git_cannot_read(chdir_tmp: Path):
    url = (chdir_tmp / "missing.git").as_uri()
    code, output = invoke("new", "proj", "--defaults", "--template", url)
    assert code == 6
    assert output.startswith(f"error: cannot read the template at {url} (")
    assert output.endswith("): check the path or URL and that git can reach it\n")
    assert len(output.splitlines()) == 1


# ------------------------------------------------------------------ update


@pytest.fixture
def old_project(template: TemplateRepo, tmp_path: Path) -> Path:
    return new_project(
        tmp_path / "proj",
        defaults=True,
        template=TemplateSource.at(template.path),
        vcs_ref="v0.1.0",
    )


def test_update_goes_to_the_newest_final_release(old_project: Path):
    code, output = invoke("update", old_project)
    assert code == 0, output
    assert output.splitlines()[0].startswith(f"Updated {old_project} from v0.1.0 to v0.3.0: ")


@pytest.mark.parametrize("option", ["--release", "--to"])
def test_update_to_a_named_pre_release(old_project: Path, option: str):
    code, output = invoke("update", old_project, option, "0.3.0rc1")
    assert code == 0, output
    assert output.splitlines()[0].startswith(f"Updated {old_project} from v0.1.0 to v0.3.0-rc1: ")
    commit(old_project)
    # on a pre-release, the newest is the newest pre-release or final one
    code, output = invoke("update", old_project)
    assert code == 0, output
    assert output.splitlines()[0].startswith(
        f"Updated {old_project} from v0.3.0-rc1 to v0.4.0-rc1: "
    )


def test_update_refuses_a_release_that_does_not_exist(old_project: Path):
    assert invoke("update", old_project, "--release", "0.5") == (
        6,
        f"error: template version 0.5 does not exist: available versions are {AVAILABLE}\n",
    )


def mirror_of(template: TemplateRepo, path: Path, *extra: str) -> TemplateRepo:
    """A clone of ``template`` with releases the original does not have."""
    mirror = TemplateRepo(path, clone_of=template.path)
    for tag in extra:
        mirror.release(tag, release_files(tag))
    return mirror


def test_update_from_a_mirror_records_the_mirror(
    template: TemplateRepo, old_project: Path, tmp_path: Path
):
    mirror = mirror_of(template, tmp_path / "mirror", "v0.5.0")
    code, output = invoke("update", old_project, "--template", mirror.path)
    assert code == 0, output
    assert output.splitlines()[0].startswith(f"Updated {old_project} from v0.1.0 to v0.5.0: ")
    recorded = answers(old_project)
    assert (recorded["_commit"], recorded["_src_path"]) == ("v0.5.0", str(mirror.path))
    commit(old_project)

    # A teammate's clone finds the mirror with no option: the answers file names it.
    teammate = tmp_path / "teammate"
    git("clone", "--quiet", old_project, teammate, cwd=tmp_path)
    mirror.release("v0.6.0", release_files("v0.6.0"))
    code, output = invoke("update", teammate)
    assert code == 0, output
    assert output.splitlines()[0].startswith(f"Updated {teammate} from v0.5.0 to v0.6.0: ")
    assert (teammate / "Makefile").read_text() == "release:\n\techo v0.6.0\n"


def test_update_of_a_canonical_project_from_a_mirror(tmp_path: Path):
    """A project made from the shipped history (the canonical URL) updates from a mirror:
    git reads the project's old release from the mirror too."""
    repo = TemplateRepo(tmp_path / "history")
    repo.release("v0.1.0", V1)
    bundle = repo.bundle(tmp_path / "shipped.bundle")
    project = new_project(
        tmp_path / "p", defaults=True, template=TemplateSource(url=CANONICAL_URL, bundle=bundle)
    )
    assert answers(project)["_src_path"] == CANONICAL_URL
    repo.release("v0.2.0", V2, removed=V2_REMOVED)

    code, output = invoke("update", project, "--template", repo.path, "--pretend")
    assert code == 0, output
    assert answers(project)["_src_path"] == CANONICAL_URL  # --pretend wrote nothing
    code, output = invoke("update", project, "--template", repo.path)
    assert code == 0, output
    recorded = answers(project)
    assert (recorded["_commit"], recorded["_src_path"]) == ("v0.2.0", str(repo.path))
    assert "  modified  .copier-answers.yml" in output.splitlines()


def test_update_back_to_the_canonical_url(
    template: TemplateRepo, old_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`--template <canonical URL>` is the shipped history (here a bundle of the same
    releases, named by MLOPSIFY_TEMPLATE_BUNDLE) and records the canonical URL again."""
    monkeypatch.setenv(BUNDLE_ENV, str(template.bundle(tmp_path / "shipped.bundle")))
    code, output = invoke("update", old_project, "--template", CANONICAL_URL)
    assert code == 0, output
    recorded = answers(old_project)
    assert (recorded["_commit"], recorded["_src_path"]) == ("v0.3.0", CANONICAL_URL)


def test_update_when_the_recorded_template_is_gone(old_project: Path, tmp_path: Path):
    path = old_project / ".copier-answers.yml"
    path.write_text(path.read_text().replace(str(answers(old_project)["_src_path"]), "/gone/tiny"))
    commit(old_project)
    assert invoke("update", old_project) == (
        6,
        "error: the project's template /gone/tiny (_src_path in .copier-answers.yml) is not on"
        " this machine: set _src_path to its path or URL, commit, and update again\n",
    )


# ------------------------------------------------------------------ adopt


def test_adopt_takes_a_release_and_a_template(template: TemplateRepo, tmp_path: Path):
    repo = tmp_path / "service"
    repo.mkdir()
    git("init", "--quiet", cwd=repo)
    (repo / "app.py").write_text("print('hello')\n")
    commit(repo, "start")
    code, output = invoke(
        "adopt", repo, "--defaults", "--release", "v0.2.0", "--template", template.path
    )
    assert code == 0, output
    assert output.splitlines()[0].startswith(f"Adopted {repo} into template v0.2.0: ")
    recorded = answers(repo)
    assert (recorded["_commit"], recorded["_src_path"]) == ("v0.2.0", str(template.path))
