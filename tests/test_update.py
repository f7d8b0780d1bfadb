"""`mlopsify update`: three-way merges between real template releases, and no user line lost.

The template is a tiny git repository with releases v1 and v2 (tests/template_repos.py);
each test makes a project from v1, changes it as a user would, commits, and updates.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, copy_template
from template_repos import V1, V2, V2_REMOVED, TemplateRepo, git
from typer.testing import CliRunner

from mlopsify import (
    InvalidAnswerError,
    MlopsifyError,
    RepositoryStateError,
    TemplateSource,
    TemplateVersionError,
    UpdateConflictError,
    new_project,
)
from mlopsify.changes import FileChange
from mlopsify.cli import app
from mlopsify.template_source import CANONICAL_URL
from mlopsify.updating import update_project

runner = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    repo = TemplateRepo(tmp_path_factory.mktemp("templates") / "tiny")
    repo.release("v1", V1)
    repo.release("v2", V2, removed=V2_REMOVED)
    return repo


@pytest.fixture
def project(template: TemplateRepo, tmp_path: Path) -> Path:
    return new_project(
        tmp_path / "proj", defaults=True, template=TemplateSource.at(template.path), vcs_ref="v1"
    )


def edit(project: Path, name: str, old: str, new: str) -> None:
    path = project / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def commit(project: Path, message: str = "user change") -> None:
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "-m", message, cwd=project)


def snapshot(project: Path) -> dict[str, bytes]:
    return {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in sorted(project.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def test_user_edit_of_a_file_the_template_did_not_change_is_kept(project: Path):
    edit(project, "docs/guide.md", "Step two.\n", "Step two.\nStep three, ours.\n")
    commit(project)
    result = update_project(project)
    assert (result.from_version, result.to_version) == ("v1", "v2")
    assert (
        project / "docs/guide.md"
    ).read_text() == "# Guide\n\nStep one.\nStep two.\nStep three, ours.\n"
    assert "docs/guide.md" not in [c.path for c in result.changes]
    assert answers(project)["_commit"] == "v2"


def test_template_change_reaches_a_file_the_user_did_not_touch(project: Path):
    result = update_project(project)
    assert (project / "Makefile").read_text() == V2["template/Makefile"]
    assert (project / "CONTRIBUTING.md").read_text() == "# Contributing\n"
    assert result.changes == [
        FileChange("modified", ".copier-answers.yml"),
        FileChange("modified", "Makefile"),
        FileChange("modified", "mode.cfg"),
        FileChange("modified", "notes.txt"),
        FileChange("modified", "settings.cfg"),
        FileChange("added", "CONTRIBUTING.md"),
        FileChange("deleted", "legacy.cfg"),
    ]


def test_changes_to_different_parts_of_one_file_merge_cleanly(project: Path):
    edit(project, "settings.cfg", "key19 = 19\n", "key19 = ours\n")
    commit(project)
    result = update_project(project)
    settings = (project / "settings.cfg").read_text()
    assert "key02 = two\n" in settings  # the template's change
    assert "key19 = ours\n" in settings  # the user's change
    assert settings == V2["template/settings.cfg"].replace("key19 = 19\n", "key19 = ours\n")
    assert result.conflicts == []
    assert git("ls-files", "--unmerged", cwd=project) == ""


def test_changes_to_the_same_lines_conflict_with_both_versions_present(project: Path):
    edit(project, "mode.cfg", "mode = fast", "mode = turbo")
    commit(project)
    with pytest.raises(UpdateConflictError) as raised:
        update_project(project)
    error = raised.value
    assert error.exit_code == 7
    assert error.conflicted == ["mode.cfg"]
    assert str(error) == (
        "update to v2 left conflicts in 1 file: resolve the <<<<<<< markers in each file, then commit"
    )
    assert error.result is not None and error.result.changes[0] == FileChange(
        "conflict", "mode.cfg"
    )
    assert (project / "mode.cfg").read_text() == (
        "<<<<<<< before updating\nmode = turbo\n=======\nmode = safe\n>>>>>>> after updating\n"
    )
    assert "mode.cfg" in git("ls-files", "--unmerged", cwd=project)
    # The rest of the update went through.
    assert (project / "Makefile").read_text() == V2["template/Makefile"]


def test_conflict_in_rej_mode_keeps_the_users_change_in_a_rej_file(project: Path):
    edit(project, "mode.cfg", "mode = fast", "mode = turbo")
    commit(project)
    with pytest.raises(UpdateConflictError) as raised:
        update_project(project, conflict="rej")
    assert raised.value.conflicted == ["mode.cfg"]  # once: the .rej beside it is its detail
    assert str(raised.value).startswith("update to v2 left conflicts in 1 file: apply or discard")
    assert (project / "mode.cfg").read_text() == "mode = safe\n"
    rejected = (project / "mode.cfg.rej").read_text()
    assert "-mode = fast\n+mode = turbo\n" in rejected


def test_a_file_the_template_removed_but_the_user_changed_is_kept_as_a_conflict(project: Path):
    edit(project, "legacy.cfg", "legacy = yes", "legacy = yes\ntuned = 3")
    commit(project)
    with pytest.raises(UpdateConflictError) as raised:
        update_project(project)
    assert str(raised.value) == (
        "update to v2 left conflicts in 1 file: the template removed legacy.cfg, which you changed: "
        "keep each with `git add` or drop it with `git rm`, then commit"
    )
    assert (project / "legacy.cfg").read_text() == "legacy = yes\ntuned = 3\n"
    assert git("status", "--porcelain", "--", "legacy.cfg", cwd=project) == "UD legacy.cfg"
    # Stage 1 is the old release's file, stage 2 the user's: git shows "deleted by them".
    stages = git("ls-files", "--stage", "--", "legacy.cfg", cwd=project).splitlines()
    assert [line.split()[2] for line in stages] == ["1", "2"]


def test_a_file_the_user_deleted_stays_deleted(project: Path):
    git("rm", "--quiet", "notes.txt", cwd=project)
    commit(project, "we do not need notes")
    result = update_project(project)
    assert not (project / "notes.txt").exists()
    assert result.conflicts == []
    assert "notes.txt" not in [c.path for c in result.changes]


def test_files_the_user_added_are_untouched(project: Path):
    (project / "src").mkdir()
    (project / "src" / "model.py").write_text("WEIGHTS = [1, 2, 3]\n")
    (project / "Makefile.local").write_text("extra:\n\techo extra\n")
    commit(project)
    result = update_project(project)
    assert (project / "src" / "model.py").read_text() == "WEIGHTS = [1, 2, 3]\n"
    assert (project / "Makefile.local").read_text() == "extra:\n\techo extra\n"
    assert not {"src/model.py", "Makefile.local"} & {c.path for c in result.changes}


def test_changing_an_answer_renders_its_files_and_keeps_user_edits(project: Path):
    edit(project, "README.md", "About this project.", "About this project, by us.")
    commit(project)
    result = update_project(project, data={"ci": "github"})
    assert answers(project)["ci"] == "github"
    assert (project / ".github/workflows/ci.yml").read_text() == "on: push\n"
    assert FileChange("added", ".github/workflows/ci.yml") in result.changes
    assert "About this project, by us." in (project / "README.md").read_text()


def test_an_unknown_answer_is_refused_before_anything_is_written(project: Path):
    with pytest.raises(InvalidAnswerError) as raised:
        update_project(project, data={"ci_system": "github"})
    assert str(raised.value) == (
        "unknown question ci_system: use one of ci, project_name, use_monitoring"
    )
    assert answers(project)["_commit"] == "v1"
    assert git("status", "--porcelain", cwd=project) == ""


def test_dirty_tree_is_refused_and_nothing_is_written(project: Path):
    edit(project, "README.md", "About", "Not committed")
    (project / "scratch.txt").write_text("draft\n")
    before, head = snapshot(project), git("rev-parse", "HEAD", cwd=project)
    with pytest.raises(RepositoryStateError) as raised:
        update_project(project)
    assert str(raised.value) == (
        f"{project} has uncommitted changes (README.md, scratch.txt): "
        "commit or stash them first; nothing was written"
    )
    assert raised.value.exit_code == 5
    assert snapshot(project) == before
    assert git("rev-parse", "HEAD", cwd=project) == head


def test_not_a_git_repository_is_refused(project: Path, tmp_path: Path):
    plain = tmp_path / "plain"
    shutil.copytree(project, plain, ignore=shutil.ignore_patterns(".git"))
    with pytest.raises(RepositoryStateError) as raised:
        update_project(plain)
    assert str(raised.value) == (
        f"{plain} is not a git repository: updates merge through git; "
        "run `git init` and commit the project first"
    )


def test_missing_answers_file_is_refused(project: Path):
    git("rm", "--quiet", ".copier-answers.yml", cwd=project)
    commit(project)
    with pytest.raises(RepositoryStateError) as raised:
        update_project(project)
    assert str(raised.value) == (
        f"{project} has no .copier-answers.yml: it was not made with mlopsify; "
        "run `mlopsify adopt` instead"
    )


@pytest.mark.parametrize(
    "content", ["_commit: v1\n_src_path: [unclosed\n", "just text\n", "ci: gitlab\n"]
)
def test_corrupt_answers_file_is_refused(project: Path, content: str):
    (project / ".copier-answers.yml").write_text(content)
    commit(project)
    before = snapshot(project)
    with pytest.raises(RepositoryStateError) as raised:
        update_project(project)
    assert "restore it from git (`git checkout -- .copier-answers.yml`)" in str(raised.value)
    assert snapshot(project) == before


def test_a_version_that_does_not_exist_lists_the_available_ones(project: Path):
    with pytest.raises(TemplateVersionError) as raised:
        update_project(project, to="v9")
    assert str(raised.value) == "template version v9 does not exist: available versions are v1, v2"
    assert raised.value.exit_code == 6
    assert answers(project)["_commit"] == "v1"


def test_a_project_made_by_a_newer_template_than_shipped_is_refused(project: Path):
    recorded = (project / ".copier-answers.yml").read_text().replace("_commit: v1", "_commit: v5")
    (project / ".copier-answers.yml").write_text(recorded)
    commit(project)
    with pytest.raises(TemplateVersionError) as raised:
        update_project(project)
    assert str(raised.value) == (
        "the project was made with template v5, which is not in the release history (v1, v2): "
        "install the mlopsify that ships it, or give the template that has it with --template "
        "PATH_OR_URL"
    )


def test_version_without_its_v_and_no_downgrade(project: Path):
    assert update_project(project, to="2").to_version == "v2"
    commit(project, "update to v2")
    with pytest.raises(TemplateVersionError) as raised:
        update_project(project, to="v1")
    assert (
        str(raised.value)
        == "the project is at template v2, newer than v1: downgrades are not supported"
    )


def test_pretend_lists_the_changes_and_writes_nothing(project: Path):
    edit(project, "mode.cfg", "mode = fast", "mode = turbo")
    commit(project)
    before, head = snapshot(project), git("rev-parse", "HEAD", cwd=project)
    # Conflicts predicted are an error (exit 7) that still carries the whole prediction.
    with pytest.raises(UpdateConflictError) as raised:
        update_project(project, pretend=True)
    result = raised.value.result
    assert result is not None and result.pretend
    assert str(raised.value) == "update to v2 would leave conflicts in 1 file; nothing was written"
    assert result.conflicts == ["mode.cfg"]
    assert FileChange("added", "CONTRIBUTING.md") in result.changes
    assert snapshot(project) == before
    assert git("rev-parse", "HEAD", cwd=project) == head
    assert git("status", "--porcelain", cwd=project) == ""


def test_migration_renames_an_answer_and_needs_trust(tmp_path: Path):
    """`_migrations` do what a merge cannot: here v2 renames the question `ci` to `ci_system`."""
    repo = TemplateRepo(tmp_path / "renaming")
    repo.release("v1", V1)
    v2_config = V1["copier.yml"].replace("\nci:\n", "\nci_system:\n") + (
        "_migrations:\n"
        "  - version: v2\n"
        "    when: \"{{ _stage == 'before' }}\"\n"
        "    command:\n"
        '      - "{{ _copier_python }}"\n'
        '      - "{{ _copier_conf.src_path }}/migrations/rename_answers.py"\n'
        "      - ci=ci_system\n"
    )
    # The shipped migration step, as a template release carries it.
    rename = (ROOT / "migrations" / "rename_answers.py").read_text()
    files = {
        "copier.yml": v2_config,
        "migrations/rename_answers.py": rename,
        "template/{% if ci_system == 'gitlab' %}.gitlab-ci.yml{% endif %}": "test:\n  script: make test\n",
        "template/{% if ci_system == 'github' %}.github{% endif %}/workflows/ci.yml": "on: push\n",
    }
    repo.release(
        "v2",
        files,
        removed=(
            "template/{% if ci == 'gitlab' %}.gitlab-ci.yml{% endif %}",
            "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml",
        ),
    )
    source = TemplateSource.at(repo.path)
    project = new_project(
        tmp_path / "p", data={"ci": "github"}, defaults=True, template=source, vcs_ref="v1"
    )

    with pytest.raises(MlopsifyError) as raised:
        update_project(project)
    assert str(raised.value) == (
        f"the template at {repo.path} runs migrations or tasks: run again with --trust if you trust it"
    )
    assert git("status", "--porcelain", cwd=project) == ""

    update_project(project, trust=True)
    recorded = answers(project)
    assert recorded["ci_system"] == "github" and "ci" not in recorded
    assert recorded["_commit"] == "v2"
    assert (project / ".github/workflows/ci.yml").read_text() == "on: push\n"
    assert not (project / ".gitlab-ci.yml").exists()


def test_update_through_a_shipped_bundle_keeps_the_canonical_url(tmp_path: Path):
    """The offline path: the answers name the canonical URL; git resolves it to the bundle."""
    repo = TemplateRepo(tmp_path / "history")
    repo.release("v0.1.0", V1)
    old_bundle = repo.bundle(tmp_path / "old.bundle")
    repo.release("v0.2.0", V2, removed=V2_REMOVED)
    new_bundle = repo.bundle(tmp_path / "new.bundle")

    project = new_project(
        tmp_path / "p", defaults=True, template=TemplateSource(url=CANONICAL_URL, bundle=old_bundle)
    )
    assert answers(project)["_src_path"] == CANONICAL_URL
    assert answers(project)["_commit"] == "v0.1.0"
    edit(project, "docs/guide.md", "Step two.", "Step two, our way.")
    commit(project)

    result = update_project(project, template=TemplateSource(url=CANONICAL_URL, bundle=new_bundle))
    assert (result.from_version, result.to_version) == ("v0.1.0", "v0.2.0")
    assert answers(project)["_src_path"] == CANONICAL_URL
    assert answers(project)["_commit"] == "v0.2.0"
    assert (project / "Makefile").read_text() == V2["template/Makefile"]
    assert "Step two, our way." in (project / "docs/guide.md").read_text()


def test_update_of_a_project_from_the_real_template(tmp_path: Path):
    """The working tree's copier.yml and template/, released twice: the merge works on them."""
    repo = TemplateRepo(tmp_path / "real")
    copy_template(repo.path)
    repo.release("v1", {})
    readme = (repo.path / "template" / "README.md.jinja").read_text()
    repo.release("v2", {"template/README.md.jinja": readme + "\nReleased in v2.\n"})
    project = new_project(
        tmp_path / "credit-risk", defaults=True, template=TemplateSource.at(repo.path), vcs_ref="v1"
    )
    (project / "notes").mkdir()
    (project / "notes" / "ours.md").write_text("# Our notes\n")
    commit(project)
    result = update_project(project)
    assert result.changes == [
        FileChange("modified", ".copier-answers.yml"),
        FileChange("modified", "README.md"),
    ]
    assert (project / "README.md").read_text().endswith("\nReleased in v2.\n")
    assert (project / "notes" / "ours.md").read_text() == "# Our notes\n"


# ------------------------------------------------------------------ the command line


def test_cli_update_lists_the_changed_files(project: Path):
    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Updated {project} from v1 to v2: 7 files changed",
        "  modified  .copier-answers.yml",
        "  modified  Makefile",
        "  modified  mode.cfg",
        "  modified  notes.txt",
        "  modified  settings.cfg",
        "  added     CONTRIBUTING.md",
        "  deleted   legacy.cfg",
        "Review with `git diff`, then commit.",
    ]
    commit(project, "update")
    again = runner.invoke(app, ["update", str(project)])
    assert again.exit_code == 0
    assert again.stdout == f"{project} is at template v2: nothing to update\n"


def test_cli_update_conflict_exits_7_and_lists_each_file(project: Path):
    edit(project, "mode.cfg", "mode = fast", "mode = turbo")
    commit(project)
    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == 7
    assert result.stdout.splitlines()[:2] == [
        f"Updated {project} from v1 to v2 with conflicts:",
        "  conflict  mode.cfg",
    ]
    assert result.stderr == (
        "error: update to v2 left conflicts in 1 file: "
        "resolve the <<<<<<< markers in each file, then commit\n"
    )


def test_cli_update_pretend(project: Path):
    result = runner.invoke(app, ["update", str(project), "--pretend", "--to", "v2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"Would update {project} from v1 to v2: 7 files would change (nothing was written)"
    )
    assert git("status", "--porcelain", cwd=project) == ""


@pytest.mark.parametrize("mode", ["inline", "rej"])
def test_cli_update_pretend_exits_7_when_the_update_would_conflict(project: Path, mode: str):
    edit(project, "mode.cfg", "mode = fast", "mode = turbo")
    commit(project)
    result = runner.invoke(app, ["update", str(project), "--pretend", "--conflict", mode])
    assert result.exit_code == 7, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Would update {project} from v1 to v2 with conflicts:"
    assert [line for line in lines if "mode.cfg" in line] == ["  conflict  mode.cfg"]
    assert (
        result.stderr
        == "error: update to v2 would leave conflicts in 1 file; nothing was written\n"
    )
    assert git("status", "--porcelain", cwd=project) == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--to", "v7"], 6, "template version v7 does not exist: available versions are v1, v2"),
        (["--conflict", "merge"], 2, None),
    ],
)
def test_cli_update_errors(project: Path, args: list[str], code: int, message: str | None):
    result = runner.invoke(app, ["update", str(project), *args])
    assert result.exit_code == code
    if message:
        assert result.stderr == f"error: {message}\n"


def test_cli_update_refuses_a_dirty_tree(project: Path):
    (project / "scratch.txt").write_text("draft\n")
    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: {project} has uncommitted changes (scratch.txt): "
        "commit or stash them first; nothing was written\n"
    )
    assert result.stdout == ""
