"""``update``: move a project to a newer template release by a three-way merge.

Copier does the merge; this module adds what it leaves to the caller: the checks that make
an update safe to start (a git repository, a readable answers file, a clean tree, a version
that exists), the offline mapping of the canonical template URL to the shipped bundle, the
merge in a throwaway clone that is then written into the project all at once
(:mod:`.applying`; ``pretend`` stops before), and the list of changed and conflicted files
(Copier exits 0 on conflicts in both modes).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import _git
from .answers import ANSWERS_FILE, read_project_answers
from .applying import UpdateSession, scratch_clone, update_session
from .changes import FileChange, UpdateResult
from .errors import (
    InvalidAnswerError,
    RepositoryStateError,
    TemplateVersionError,
    UpdateConflictError,
)
from .machinery import replacement
from .rendering import Conflict, copy_template, update_template
from .repository import check_clean, shown_paths
from .template import Template, template_for
from .template_source import TemplateSource, is_url, same_release

__all__ = [
    "Conflict",
    "FileChange",
    "UpdateResult",
    "check_updatable",
    "update_project",
    "update_session",
]

# `git describe` form that Copier records for an untagged template commit: v0.1.0-3-gabc1234.
_DESCRIBED = re.compile(r".+-\d+-g[0-9a-f]{4,40}$")


def check_updatable(project: Path) -> dict[str, Any]:
    """Refuse, before anything is written, a project an update cannot work on; return its answers.

    Called within :func:`update_session`, which refused a path that is not in a git work tree.
    """
    answers = read_project_answers(project)
    if _git.status_entries(project, "--", ANSWERS_FILE):
        # An update (perhaps one whose command was killed) that nobody committed yet: say so,
        # rather than "commit or stash" changes the user may not know about.
        raise RepositoryStateError(
            f"{project} holds an update to template {answers['_commit']} that is not committed "
            f"yet ({shown_paths(_git.dirty_paths(project))}): review it with `git diff` and "
            "commit it, or drop it with `git reset --hard && git clean -fd`; nothing was written"
        )
    check_clean(project)
    return answers


def resolve_version(template: Template, requested: str | None, current: str) -> str:
    """The release tag to update to: ``requested`` (any spelling of its PEP 440 version) or the
    newest final release (pre-releases too when the project is at one)."""
    available = template.versions
    if not available:
        raise TemplateVersionError(
            f"the template at {template.source.url} has no release tags to update to"
        )
    found = same_release(available, requested) if requested is not None else None
    if requested is None:
        target = template.newest(prereleases=_is_prerelease(current))
    elif found is not None:
        target = found
    elif requested == current:
        target = current  # an untagged release the project already has: change answers only
    else:
        raise template.unknown_version(requested)
    if current not in available and not _DESCRIBED.match(current):
        raise TemplateVersionError(
            f"the project was made with template {current}, which is not in the release history "
            f"({', '.join(available)}): install the mlopsify that ships it, or give the template "
            "that has it with --template PATH_OR_URL"
        )
    if current in available and available.index(current) > available.index(target):
        raise TemplateVersionError(
            f"the project is at template {current}, newer than {target}: downgrades are not supported"
        )
    return target


def _is_prerelease(tag: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(tag).is_prerelease
    except InvalidVersion:
        return False


def update_project(
    project: Path,
    *,
    to: str | None = None,
    data: Mapping[str, Any] | None = None,
    conflict: Conflict = "inline",
    pretend: bool = False,
    trust: bool = False,
    template: TemplateSource | None = None,
) -> UpdateResult:
    """Update ``project`` to template release ``to`` (default: the newest) and list what changed.

    ``data`` changes answers on the way (``add`` uses this). Conflicts are left
    as markers (``inline``) or ``.rej`` files (``rej``) and raise :class:`UpdateConflictError`,
    which carries the result. ``pretend`` merges in a throwaway clone and writes nothing.
    ``template`` overrides how the recorded ``_src_path`` resolves (default: the shipped
    bundle for the canonical URL); ``trust`` lets a template other than the shipped one run
    its migrations. The update is written all at once or not at all (see :mod:`.applying`);
    Ctrl-C raises :class:`UpdateInterruptedError`, which says which.
    """
    project = project.expanduser().absolute()
    with update_session(project) as session:
        answers = check_updatable(project)
        return update_checked(
            session,
            answers,
            template_for(source_for(answers, template)),
            to=to,
            data=data or {},
            conflict=conflict,
            pretend=pretend,
            trust=trust,
        )


def source_for(answers: Mapping[str, Any], template: TemplateSource | None) -> TemplateSource:
    """The template an update reads: ``template`` when given, standing in for the source the
    answers file records (Copier renders the project's old release from there), else that one."""
    recorded = str(answers["_src_path"])
    if not is_url(recorded) and not Path(recorded).exists():
        # Copier takes a path that does not exist for a plain directory, not for a git remote
        # that git could rewrite: only the answers file can point elsewhere.
        raise TemplateVersionError(
            f"the project's template {recorded} (_src_path in {ANSWERS_FILE}) is not on this machine:"
            " set _src_path to its path or URL, commit, and update again"
        )
    source = template or TemplateSource.recorded(recorded)
    return source if source.url == recorded else source.standing_in_for(recorded)


def update_checked(
    session: UpdateSession,
    answers: Mapping[str, Any],
    known: Template,
    *,
    to: str | None,
    data: Mapping[str, Any],
    conflict: Conflict,
    pretend: bool,
    trust: bool,
) -> UpdateResult:
    """:func:`update_project` for a locked project that :func:`check_updatable` accepted.

    Copier merges in a scratch clone; unless ``pretend``, the result is then moved into the
    project in one journaled step, so the project never holds half an update.
    """
    project = session.project
    template = known.source
    new_answers = dict(data)
    current = str(answers["_commit"])
    target = resolve_version(known, to, current)
    if new_answers:
        known.release(target).check_answers(new_answers)
    kept_answers = [key for key in answers if key not in new_answers]
    refused = known.release(target).refusal({**answers, **new_answers}, checked=kept_answers)
    if refused:
        name, message = refused
        raise InvalidAnswerError(
            f"template {target} refuses the project's {name}: {message}; give another on the"
            f" way with --data {name}=VALUE"
        )
    if target == current and not new_answers:
        return UpdateResult(
            project=project,
            from_version=current,
            to_version=target,
            pretend=pretend,
            recovered=session.recovered,
        )

    trusted = trust or template.bundle is not None
    with scratch_clone(session.top) as clone:
        work = clone / project.relative_to(session.top)
        update_template(
            work, template, vcs_ref=target, data=new_answers, conflict=conflict, trusted=trusted
        )
        record_source(work, template, answers)
        kept = keep_edited_removals(work, template, answers)
        found = changed_files(work)
        if not pretend:
            session.apply(clone, from_version=current, to_version=target)
    result = UpdateResult(
        project,
        current,
        target,
        found,
        pretend=pretend,
        notes=_notes(found, answers),
        recovered=session.recovered,
    )
    # Automation (`update --pretend` in CI) must tell a clean update from a conflicting one.
    if result.conflicts:
        raise _conflict_error(result, kept, conflict)
    return result


def _notes(changes: list[FileChange], answers: Mapping[str, Any]) -> dict[str, str]:
    """For each conflicted file that was machinery before 0.4.0, what replaces it now."""
    package = str(answers.get("package_name", ""))
    notes = {
        change.path: replacement(change.path, package)
        for change in changes
        if change.status == "conflict"
    }
    return {path: note for path, note in notes.items() if note is not None}


def record_source(project: Path, template: TemplateSource, answers: Mapping[str, Any]) -> None:
    """Record in the answers file the template the update came from, when it is not the one
    recorded before (Copier keeps that one), so the next update, by anyone, reads the same."""
    if template.url == answers["_src_path"]:
        return
    path = project / ANSWERS_FILE
    recorded = yaml.safe_dump({"_src_path": template.url}, default_flow_style=False)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(
        "".join(recorded if line.startswith("_src_path:") else line for line in lines),
        encoding="utf-8",
    )


def _conflict_error(
    result: UpdateResult, kept: list[str], conflict: Conflict
) -> UpdateConflictError:
    """The exit-7 error of an update with conflicts: what to do with each kind of conflict."""
    count = len(result.conflicts)
    files = f"{count} file{'s' if count != 1 else ''}"
    if result.pretend:
        return UpdateConflictError(
            f"update to {result.to_version} would leave conflicts in {files}; nothing was written",
            result.conflicts,
            result=result,
        )
    merged = [path for path in result.conflicts if path not in kept]
    hints = []
    if merged and conflict == "inline":
        hints.append("resolve the <<<<<<< markers in each file")
    elif merged:
        hints.append(
            "apply or discard each FILE.rej beside it (your change that did not merge), then delete it"
        )
    if kept:
        hints.append(
            f"the template removed {', '.join(kept)}, which you changed: "
            "keep each with `git add` or drop it with `git rm`"
        )
    return UpdateConflictError(
        f"update to {result.to_version} left conflicts in {files}: {'; '.join(hints)}, then commit",
        result.conflicts,
        result=result,
    )


def keep_edited_removals(
    project: Path, template: TemplateSource, answers: Mapping[str, Any]
) -> list[str]:
    """Restore each file the update removed although the user had changed it; mark it unmerged.

    Copier deletes a file that the new release no longer renders even when the user edited
    it. mlopsify puts the user's version back and records a modify/delete conflict in the
    index (stage 1 the old release's file, stage 2 the user's), as git does in a merge, so
    nothing of the user's is dropped silently. Returns the restored paths.
    """
    entries = _git.status_entries(project)
    deleted = [path for code, path in entries if "D" in code and "U" not in code]
    if not deleted:
        return []
    kept: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlopsify-base-") as scratch:
        base = Path(scratch) / project.name
        copy_template(
            template,
            base,
            data={k: v for k, v in answers.items() if not k.startswith("_")},
            user_defaults={},
            defaults=True,
            vcs_ref=str(answers["_commit"]),
        )
        committed = _committed_entries(project, deleted)
        rendered = _blob_ids(project, [base / path for path in deleted if (base / path).is_file()])
        for path in deleted:
            mode, ours = committed[path]
            old = base / path
            if rendered.get(old) == ours:
                continue  # the user never changed it: the template's removal stands
            _git.git("checkout", "HEAD", "--", path, cwd=project)
            stages = [f"0 {'0' * 40}\t{path}", f"{mode} {ours} 2\t{path}"]
            if old.is_file():
                stages.append(
                    f"{mode} {_git.git('hash-object', '-w', '--', str(old), cwd=project)} 1\t{path}"
                )
            _git.git_input(
                "update-index", "--index-info", cwd=project, stdin="\n".join(stages) + "\n"
            )
            kept.append(path)
    return kept


def _committed_entries(project: Path, paths: list[str]) -> dict[str, tuple[str, str]]:
    """The mode and blob id of each of ``paths`` at HEAD, from one ``git ls-tree``."""
    entries: dict[str, tuple[str, str]] = {}
    for entry in filter(
        None, _git.git("ls-tree", "-z", "HEAD", "--", *paths, cwd=project).split("\0")
    ):
        meta, path = entry.split("\t", 1)
        mode, _, blob = meta.split()
        entries[path] = (mode, blob)
    return entries


def _blob_ids(project: Path, files: list[Path]) -> dict[Path, str]:
    """The blob id git gives each of ``files`` in ``project`` (its filters applied), from one
    ``git hash-object``."""
    if not files:
        return {}
    ids = _git.git("hash-object", "--", *map(str, files), cwd=project).split()
    return dict(zip(files, ids, strict=True))


def changed_files(project: Path) -> list[FileChange]:
    """The working tree's changes after a merge, conflicts first, from ``git status``."""
    unmerged = set(_git.git("diff", "--name-only", "--diff-filter=U", cwd=project).splitlines())
    changes: list[FileChange] = []
    entries = _git.status_entries(project, "--untracked-files=all")
    # A .rej file that the project's .gitignore hides still holds the user's change.
    entries += [
        (code, path)
        for code, path in _git.status_entries(project, "--ignored")
        if code == "!!" and path.endswith(".rej")
    ]
    # In rej mode the conflict is the file, listed once; its .rej beside it holds your change.
    rejected = {path.removesuffix(".rej") for _, path in entries if path.endswith(".rej")}
    entries = [(code, path) for code, path in entries if not path.endswith(".rej")]
    entries += [("??", path) for path in rejected if path not in {p for _, p in entries}]
    for code, path in entries:
        if path in unmerged or path in rejected:
            status = "conflict"
        elif code in {"??", "!!"} or "A" in code:
            status = "added"
        elif "D" in code:
            status = "deleted"
        else:
            status = "modified"
        changes.append(FileChange(status, path))
    order = {"conflict": 0, "modified": 1, "added": 2, "deleted": 3}
    return sorted(changes, key=lambda c: (order[c.status], c.path))
