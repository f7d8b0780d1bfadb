"""What adopt merges into a repository's own files instead of proposing the template's beside.

A kept ``.gitignore`` gains the template's lines it lacks (the pipeline writes models, the
MLflow database and build files that must never be committed). A kept ``params.yaml`` or
``dvc.yaml`` gains the keys and stages the template's code reads; the repository's own values,
keys and stages stay as they are, with their comments, because the additions are written as
text at the end of the file or of the section. Where the template's code cannot work with the
repository's file (a key of another shape, a stage of the same name doing something else), adopt
stops and names what is missing, before anything is written.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RepositoryStateError

IGNORE_HEADER = "# Added by mlopsify adopt: what the template's pipeline and tools write"
ADDITIONS_HEADER = "# Added by mlopsify adopt: what the template's code reads"
_TOP_LEVEL_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w.-]*)\s*:")


@dataclass(frozen=True)
class Merge:
    """The merged text of one file and what it gained (lines or keys, for the summary)."""

    text: str
    added: list[str]


def merge_gitignore(theirs: str, template: str) -> Merge:
    """Append the template's ignore patterns that the file lacks, under one comment header."""
    present = {line.strip() for line in theirs.splitlines()}
    missing = [
        line.strip()
        for line in template.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line.strip() not in present
    ]
    missing = list(dict.fromkeys(missing))
    if not missing:
        return Merge(theirs, [])
    separator = "" if not theirs or theirs.endswith("\n") else "\n"
    return Merge(
        f"{theirs}{separator}\n{IGNORE_HEADER}\n" + "".join(f"{m}\n" for m in missing), missing
    )


def merge_params(theirs: str, template: str) -> Merge:
    """params.yaml: every key the template's code reads, the repository's values kept.

    The template's code passes a section such as ``model`` to its estimator and refuses unknown
    keys in ``data``: a section the repository already has with keys of its own would break it.
    """

    def conflicts(key: str, own: Any, needed: Any) -> str | None:
        if _kind(needed) != _kind(own):
            return f"{key} (a {_kind(needed)} in the template; yours is a {_kind(own)})"
        if isinstance(needed, dict):
            unknown = sorted(str(k) for k in set(own) - set(needed))
            if unknown:
                return f"{key} (yours has keys the template's code does not know: {', '.join(unknown)})"
        return None

    return _merge_yaml("params.yaml", theirs, template, conflicts, what="keys")


def merge_dvc_pipeline(theirs: str, template: str) -> Merge:
    """dvc.yaml: the template's stages added beside the repository's own, which stay as they are."""
    own_outs = _stage_outs(_load_mapping("dvc.yaml", theirs).get("stages"))

    def conflicts(key: str, own: Any, needed: Any) -> str | None:
        if key == "stages" and isinstance(own, dict) and isinstance(needed, dict):
            clashes = sorted(str(n) for n in set(own) & set(needed) if own[n] != needed[n])
            if clashes:
                return (
                    f"stages {', '.join(clashes)} (yours have the same names and do other things)"
                )
            shared = sorted(set(own_outs) & set(_stage_outs(needed)))
            if shared:
                return f"stages that write {', '.join(shared)} (one of yours writes it too)"
            return None
        if isinstance(needed, dict) != isinstance(own, dict) or (
            not isinstance(needed, dict) and own != needed
        ):
            return f"{key} (yours sets it otherwise)"
        return None

    return _merge_yaml("dvc.yaml", theirs, template, conflicts, what="stages")


def _merge_yaml(
    name: str,
    theirs: str,
    template: str,
    conflicts: Callable[[str, Any, Any], str | None],
    *,
    what: str,
) -> Merge:
    own, needed = _load_mapping(name, theirs), _load_mapping(name, template)
    problems = [
        problem
        for key in needed
        if key in own and (problem := conflicts(key, own[key], needed[key])) is not None
    ]
    if problems:
        raise RepositoryStateError(
            f"{name} lacks {what} the template's code needs, and adopt cannot add them: "
            f"{'; '.join(problems)}: rename yours, then adopt again; nothing was written"
        )
    text = theirs
    added: list[str] = []
    for key, value in needed.items():
        if key not in own:
            continue
        if isinstance(value, dict):
            children = {k: v for k, v in value.items() if k not in own[key]}
            if children:
                text = _append_to_section(name, text, template, key, children)
                added.extend(f"{key}.{child}" for child in children)
    top = [key for key in needed if key not in own]
    if top:
        blocks = _top_level_blocks(template, needed)
        separator = "" if not text or text.endswith("\n") else "\n"
        text = f"{text}{separator}\n{ADDITIONS_HEADER}\n" + "\n".join(blocks[key] for key in top)
        added = top + added
    expected = {**own, **{k: v for k, v in needed.items() if k not in own}}
    for key, value in needed.items():
        if key in own and isinstance(value, dict):
            expected[key] = {**value, **own[key]}
    if _load_mapping(name, text) != expected:
        raise RepositoryStateError(
            f"{name} could not be merged as text (add {', '.join(added)} yourself, or rename the"
            " file), then adopt again; nothing was written"
        )
    return Merge(text, added)


def _load_mapping(name: str, text: str) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RepositoryStateError(
            f"{name} is not valid YAML ({str(error).splitlines()[0]}): fix it, then adopt again;"
            " nothing was written"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RepositoryStateError(
            f"{name} is a {_kind(loaded)}, not a mapping of keys: the template's code cannot read"
            " it; rename it, then adopt again; nothing was written"
        )
    return loaded


def _kind(value: Any) -> str:
    return (
        "mapping"
        if isinstance(value, dict)
        else "list"
        if isinstance(value, list)
        else "single value"
    )


def _stage_outs(stages: Any) -> dict[str, str]:
    """Output path -> stage, over every stage's ``outs``, ``metrics`` and ``plots``."""
    found: dict[str, str] = {}
    for stage, spec in (stages or {}).items() if isinstance(stages, dict) else ():
        for field in ("outs", "metrics", "plots"):
            for entry in (spec or {}).get(field) or [] if isinstance(spec, dict) else []:
                for path in entry if isinstance(entry, dict) else [entry]:
                    found[str(path)] = str(stage)
    return found


def _blocks(lines: list[str], indent: str) -> dict[str, str]:
    """Each key at ``indent`` in ``lines``: its lines, with the comment lines just above it."""
    key_line = re.compile(rf"^{re.escape(indent)}(?P<key>[A-Za-z_][\w.-]*)\s*:")
    starts = [i for i, line in enumerate(lines) if key_line.match(line)]
    begins = []
    for start in starts:
        while (
            start > 0
            and lines[start - 1].strip().startswith("#")
            and lines[start - 1].startswith(indent)
        ):
            start -= 1
        begins.append(start)
    blocks = {}
    for number, start in enumerate(starts):
        end = begins[number + 1] if number + 1 < len(begins) else len(lines)
        key = key_line.match(lines[start])["key"]  # type: ignore[index]
        blocks[key] = "".join(lines[begins[number] : end]).rstrip("\n") + "\n"
    return blocks


def _top_level_blocks(text: str, parsed: dict[str, Any]) -> dict[str, str]:
    """Each top-level key's lines in ``text``, comments included; dumped if laid out otherwise."""
    blocks = _blocks(text.splitlines(keepends=True), "")
    if sorted(blocks) != sorted(str(k) for k in parsed):
        import yaml

        return {k: yaml.safe_dump({k: v}, sort_keys=False) for k, v in parsed.items()}
    return blocks


def _section(lines: list[str], key: str) -> tuple[int, int, str] | None:
    """Where the block mapping ``key:`` is: (header line, end of its last child line, indent)."""
    header = re.compile(rf"^{re.escape(key)}\s*:\s*(#.*)?$")
    at = next((i for i, line in enumerate(lines) if header.match(line.rstrip("\n"))), None)
    if at is None:
        return None
    end, indent = at + 1, ""
    for number in range(at + 1, len(lines)):
        line = lines[number]
        if line.strip() and not line.startswith((" ", "\t", "#")):
            break
        if line.strip() and not line.lstrip().startswith("#"):
            indent = indent or line[: len(line) - len(line.lstrip())]
            end = number + 1
    return (at, end, indent) if indent else None


def _child_blocks(template: str, key: str, children: dict[str, Any], indent: str) -> str:
    """The template's text of ``key``'s ``children``, indented as the repository's section."""
    import yaml

    lines = template.splitlines(keepends=True)
    where = _section(lines, key)
    blocks = _blocks(lines[where[0] + 1 : where[1]], where[2]) if where else {}
    if where is None or not set(map(str, children)) <= set(blocks):
        dumped = yaml.safe_dump(children, sort_keys=False, default_flow_style=False)
        return "".join(f"{indent}{line}\n" for line in dumped.splitlines())
    found = []
    for child in children:
        for line in blocks[str(child)].splitlines(keepends=True):
            found.append(indent + line.removeprefix(where[2]) if line.strip() else line)
    return "".join(found)


def _append_to_section(
    name: str, text: str, template: str, key: str, children: dict[str, Any]
) -> str:
    """Write the template's ``children`` at the end of the block mapping ``key:`` of ``text``."""
    lines = text.splitlines(keepends=True)
    where = _section(lines, key)
    if where is None:
        raise RepositoryStateError(
            f"{name}: {key} is not written as a block of keys, so adopt cannot add"
            f" {', '.join(f'{key}.{c}' for c in children)}: add them yourself, then adopt again;"
            " nothing was written"
        )
    _, end, indent = where
    if not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    return "".join([*lines[:end], _child_blocks(template, key, children, indent), *lines[end:]])


# The repository's own dependency files: the template's environment comes from pyproject.toml.
DEPENDENCY_FILES = (
    "requirements*.txt",
    "requirements/*.txt",
    "requirements*.in",
    "setup.py",
    "setup.cfg",
    "environment.yml",
    "environment.yaml",
    "conda.yml",
    "conda.yaml",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
)


def own_dependency_files(project: Path, taken_over: set[str]) -> list[str]:
    """The repository's dependency files at its top that adopt did not take over."""
    found = {
        path.relative_to(project).as_posix()
        for pattern in DEPENDENCY_FILES
        for path in project.glob(pattern)
        if path.is_file()
    }
    return sorted(found - taken_over)


SIBLING_IMPORT = re.compile(r"^(test_\w+|conftest)$")


def import_siblings_relatively(source: str) -> str | None:
    """A test module's ``from test_x import ...`` as ``from .test_x import ...``; None if it has none.

    pytest puts ``tests/`` itself on sys.path only when it is not a package: in a repository
    whose ``tests/__init__.py`` makes it one, the template's tests import their siblings within
    the package. The relative import goes after the others (isort's last section), so the
    generated lint job still passes.
    """
    tree = ast.parse(source)
    siblings = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and node.level == 0
        and node.module
        and SIBLING_IMPORT.match(node.module)
    ]
    if not siblings:
        return None
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    last = max(node.end_lineno or node.lineno for node in imports)
    lines = source.splitlines(keepends=True)
    dropped = {
        n for node in siblings for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
    }
    relative = [
        f"from .{node.module} import {', '.join(_named(alias) for alias in node.names)}\n"
        for node in siblings
    ]
    kept = [line for number, line in enumerate(lines[:last], start=1) if number not in dropped]
    while kept and not kept[-1].strip():
        kept.pop()
    return "".join([*kept, "\n", *relative, *lines[last:]])


def _named(alias: ast.alias) -> str:
    return f"{alias.name} as {alias.asname}" if alias.asname else alias.name
