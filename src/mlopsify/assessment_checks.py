"""The checks behind assess's evidence: each one runs the tool a team's own CI would run on a
file (or reads what a run left behind), and says what it found.

A check returns a :class:`Verdict`: whether the evidence earns its level, and a note that starts
with ``passed:``, ``failed:``, ``not checked:`` (a tool is missing, or the tests were not asked
to run: never a free pass) or ``not counted:`` (the file is not the one the level is about).
Checks run on a snapshot of the commit at HEAD (:func:`committed_tree`), so staged or
uncommitted files count for nothing; only the MLflow database, which a run leaves in the work
tree and git ignores, is read from the work tree.
"""

from __future__ import annotations

import ast
import configparser
import io
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _git
from .assessment_images import service_dockerfile, user_of_last_stage

TOOL_TIMEOUT = 300  # seconds for one checker run
TESTS_TIMEOUT = 1800  # seconds for the repository's whole test suite (--run)


@dataclass(frozen=True)
class Verdict:
    earned: bool
    note: str


def passed(note: str) -> Verdict:
    return Verdict(True, f"passed: {note}")


def failed(note: str) -> Verdict:
    return Verdict(False, f"failed: {note}")


def not_installed(tool: str) -> Verdict:
    return Verdict(False, f"not checked: {tool} not installed")


@contextmanager
def committed_tree(root: Path) -> Iterator[tuple[Path, bool]]:
    """A directory holding what HEAD holds at ``root``, and whether ``root`` is in a git repository.

    Outside git there is nothing committed to prefer: the directory itself is assessed.
    """
    top = _git.repository_top(root)
    if top is None:
        yield root, False
        return
    with tempfile.TemporaryDirectory(prefix="mlopsify-assess-") as scratch:
        tree = Path(scratch)
        prefix = root.resolve().relative_to(top).as_posix()
        treeish = "HEAD" if prefix == "." else f"HEAD:{prefix}"
        archive = subprocess.run(
            ["git", "archive", "--format=tar", treeish], cwd=top, capture_output=True, check=False
        )
        if archive.returncode == 0:  # no commit yet, or nothing committed under root: empty
            # The "tar" filter (Python 3.10.12+) keeps members inside the scratch directory.
            safe: dict[str, Any] = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(tree, **safe)
        yield tree, True


@dataclass
class Context:
    """What the checks share within one assessment: the snapshot, the work tree, their results."""

    tree: Path  # the committed files
    root: Path  # the work tree (for what a run leaves behind: mlflow.db)
    paths: list[str]
    run_tests: bool
    cache: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    def text(self, path: str) -> str:
        try:
            return (self.tree / path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def yaml(self, path: str) -> tuple[Any, str | None]:
        import yaml

        try:
            return yaml.safe_load(self.text(path)), None
        except yaml.YAMLError as error:
            return None, str(error).splitlines()[0]


Check = Callable[[Context, str], Verdict]


def _tool(name: str) -> str | None:
    """A checker on PATH (where the team's own CI would find it)."""
    return shutil.which(name)


def _run(args: list[str], cwd: Path, timeout: int = TOOL_TIMEOUT) -> tuple[int, str]:
    from .assessment_tools import run_warm

    try:
        ran = run_warm(args, cwd, timeout)  # in a fleet worker, without the start-up
        if ran is None:
            done = subprocess.run(
                args, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout
            )
            ran = (done.returncode, done.stdout, done.stderr)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"
    code, stdout, stderr = ran
    # Paths inside the snapshot read as the repository's own; Kubernetes' log prefix is noise.
    output = (stdout + stderr).replace(f"{cwd}/", "").replace(str(cwd), ".")
    return code, _KLOG_PREFIX.sub("", output).strip()


_KLOG_PREFIX = re.compile(r"(?m)^[EWIF]\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] ")


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def committed(context: Context, path: str) -> Verdict:
    return passed("committed")


def git_history(context: Context, path: str) -> Verdict:
    try:
        head = _git.git("rev-parse", "--short", "HEAD", cwd=context.root)
    except subprocess.CalledProcessError:
        return failed("no commit yet")
    return passed(f"HEAD is {head}")


def python_source(context: Context, path: str) -> Verdict:
    try:
        ast.parse(context.text(path))
    except SyntaxError as error:
        return failed(f"not valid Python (line {error.lineno}: {error.msg})")
    return passed("parses as Python")


def yaml_document(context: Context, path: str) -> Verdict:
    _, error = context.yaml(path)
    return failed(f"not valid YAML ({error})") if error else passed("parses as YAML")


def pre_commit_config(context: Context, path: str) -> Verdict:
    loaded, error = context.yaml(path)
    if error or not isinstance(loaded, dict) or not isinstance(loaded.get("repos"), list):
        return failed(error or "no list of repos")
    return passed(_count(len(loaded["repos"]), "hook repository", "hook repositories"))


# CI file -> the builtin schema check-jsonschema validates it against.
CI_SCHEMAS = {
    ".gitlab-ci.yml": "vendor.gitlab-ci",
    "azure-pipelines.yml": "vendor.azure-pipelines",
    ".circleci/config.yml": "vendor.circle-ci",
    "bitbucket-pipelines.yml": "vendor.bitbucket-pipelines",
}


def ci_file(context: Context, path: str) -> Verdict:
    """The CI file passes its provider's checker."""
    if path.rsplit("/", 1)[-1] == "Jenkinsfile":
        return jenkinsfile_structure(context.text(path))
    if path.startswith(".github/workflows/"):
        workflows = [p for p in context.paths if p.startswith(".github/workflows/")]
        return json_schema(context, path, "vendor.github-workflows", together=workflows)
    schema = CI_SCHEMAS.get(path)
    if schema is None:
        return Verdict(False, "not checked: no checker for this CI provider")
    return json_schema(context, path, schema)


# Schemas whose patterns are ECMAScript regular expressions that check-jsonschema's default
# (unicode) engine refuses to compile: it would crash instead of answering.
SCHEMA_OPTIONS = {"vendor.azure-pipelines": ["--regex-variant", "nonunicode"]}


def json_schema(
    context: Context, path: str, schema: str, *, together: list[str] | None = None
) -> Verdict:
    """``path`` passes check-jsonschema's ``schema``.

    ``together``: files (``path`` among them) first checked in one run, which passes only
    when each of them would (a GitHub project's workflows: one start-up of the checker, not
    one a file); each of them then passes. A file of a run that fails is checked on its own,
    for its own verdict.
    """
    checker = _tool("check-jsonschema")
    if checker is None:
        return not_installed("check-jsonschema")
    options = SCHEMA_OPTIONS.get(schema, [])
    if together and len(together) > 1:
        # The run's outcome, kept with the verdicts (earned: it passed).
        key = ("json-schema-together", f"{schema} {' '.join(together)}")
        if key not in context.cache:
            code, _ = _run([checker, "--builtin-schema", schema, *options, *together], context.tree)
            context.cache[key] = Verdict(code == 0, "")
        if context.cache[key].earned and path in together:
            return passed(f"check-jsonschema {schema}")
    code, output = _run([checker, "--builtin-schema", schema, *options, path], context.tree)
    if code == 0:
        return passed(f"check-jsonschema {schema}")
    problems = [line.strip() for line in output.splitlines() if line.strip().startswith(path)]
    return failed(f"check-jsonschema {schema}: {problems[0] if problems else _last_line(output)}")


_GROOVY_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_QUOTED = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.DOTALL)


def jenkinsfile_structure(text: str) -> Verdict:
    """A declarative pipeline: ``pipeline { agent ...; stages { stage(...) { steps {...} } } }``."""
    code = _QUOTED.sub("''", _GROOVY_COMMENTS.sub("", text))
    depth = 0
    for char in code:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        return failed("declarative structure: unbalanced braces")
    if not re.match(r"\s*(@Library\([^)]*\)\s*_?\s*)?pipeline\s*\{", code):
        return failed("declarative structure: the file does not start with `pipeline {`")
    for needed, pattern in (
        ("agent", r"\bagent\s+(any|none|\{|label\b)"),
        ("stages", r"\bstages\s*\{"),
        ("stage", r"\bstage\s*\(\s*''\s*\)\s*\{"),
        ("steps", r"\b(steps|parallel|matrix)\s*\{"),
    ):
        if not re.search(pattern, code):
            return failed(f"declarative structure: no {needed} directive")
    return passed("declarative structure (pipeline, agent, stages, steps)")


def dvc_pipeline(context: Context, path: str) -> Verdict:
    """The pipeline parses: `dvc dag`, or without DVC its stages' graph read from dvc.yaml."""
    if _tool("dvc") is not None:
        return cached(context, "dvc-dag", "", _dvc_dag)
    loaded, error = context.yaml(path)
    if error:
        return failed(f"not valid YAML ({error})")
    problem, count = stage_graph_problem(loaded)
    if problem:
        return failed(f"{problem} (dvc not installed: dvc.yaml read by mlopsify)")
    return passed(
        f"{_count(count, 'stage', 'stages')}, no cycle or output written twice"
        " (dvc not installed: dvc.yaml read by mlopsify)"
    )


def _dvc_dag(context: Context, _: str) -> Verdict:
    """`dvc dag` at the top of the committed files: every dvc.yaml of the repository at once."""
    if context.tree != context.root and not (context.tree / ".git").exists():
        # DVC wants a git repository around it; only ever in the scratch copy of HEAD.
        _git.git("init", "--quiet", cwd=context.tree)
    code, output = _run([str(_tool("dvc")), "dag"], context.tree)
    return passed("dvc dag") if code == 0 else failed(f"dvc dag: {_last_line(output)}")


def stage_graph_problem(loaded: Any) -> tuple[str | None, int]:
    """What makes a dvc.yaml's stages no pipeline (None when they are one), and their number."""
    stages = loaded.get("stages") if isinstance(loaded, dict) else None
    if not isinstance(stages, dict) or not stages:
        return "no stages", 0
    writer: dict[str, str] = {}
    needs: dict[str, set[str]] = {}
    for name, spec in stages.items():
        if not isinstance(spec, dict) or not (
            "cmd" in spec or "foreach" in spec or "matrix" in spec
        ):
            return f"stage {name} has no cmd", len(stages)
        for path in (
            _entries(spec.get("outs")) + _entries(spec.get("metrics")) + _entries(spec.get("plots"))
        ):
            if path in writer:
                return f"{path} is an output of both {writer[path]} and {name}", len(stages)
            writer[path] = str(name)
        needs[str(name)] = set(_entries(spec.get("deps")))
    graph = {
        name: {writer[dep] for dep in deps if dep in writer and writer[dep] != name}
        for name, deps in needs.items()
    }
    visiting: set[str] = set()
    done: set[str] = set()

    def cycle_from(stage: str) -> str | None:
        if stage in done:
            return None
        if stage in visiting:
            return stage
        visiting.add(stage)
        for upstream in sorted(graph[stage]):
            if (found := cycle_from(upstream)) is not None:
                return found
        visiting.discard(stage)
        done.add(stage)
        return None

    for stage in graph:
        if (found := cycle_from(stage)) is not None:
            return f"the stages form a cycle through {found}", len(stages)
    return None, len(stages)


def _entries(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(key) for entry in value for key in (entry if isinstance(entry, dict) else [entry])]


def validation_stage(context: Context, path: str) -> Verdict:
    pipeline = cached(context, "pipeline", path, dvc_pipeline)
    if not pipeline.earned:
        return pipeline
    loaded, _ = context.yaml(path)
    if "validate" not in (loaded.get("stages") or {}):
        return failed("no validate stage")
    return passed(f"a validate stage in a pipeline that {pipeline.note}")


def dvc_tracked_file(context: Context, path: str) -> Verdict:
    loaded, error = context.yaml(path)
    outs = loaded.get("outs") if isinstance(loaded, dict) else None
    tracked = [str(o["path"]) for o in outs or [] if isinstance(o, dict) and o.get("path")]
    if error or not tracked:
        return failed(error or "no outs with a path")
    return passed(f"tracks {', '.join(tracked)}")


def dvc_config(context: Context, path: str) -> Verdict:
    config = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        config.read_string(context.text(".dvc/config"))
    except configparser.Error as error:
        return failed(f".dvc/config does not parse ({str(error).splitlines()[0]})")
    remotes = [s.split('"')[1] for s in config.sections() if s.startswith("'remote") and '"' in s]
    if path == ".dvc/config" and not remotes:
        return failed("no remote section")
    return passed(f"remotes: {', '.join(remotes)}" if remotes else ".dvc/config parses")


def gate_thresholds(context: Context, path: str) -> Verdict:
    loaded, error = context.yaml(path)
    if error or not isinstance(loaded, dict):
        return failed(error or "not a mapping of parameters")
    gate = next(
        (loaded[k] for k in ("gate", "quality_gate", "thresholds", "threshold") if k in loaded),
        None,
    )
    numbers = [v for v in _leaves(gate) if isinstance(v, int | float) and not isinstance(v, bool)]
    return (
        passed(f"{len(numbers)} thresholds")
        if numbers
        else failed("the gate has no numeric threshold")
    )


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def kubernetes_manifest(context: Context, path: str) -> Verdict:
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(context.text(path)) if d]
    except yaml.YAMLError as error:
        return failed(f"not valid YAML ({str(error).splitlines()[0]})")
    kinds = [
        d["kind"]
        for d in documents
        if isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
    ]
    return (
        passed(f"{', '.join(kinds)}") if kinds else failed("no resource with apiVersion and kind")
    )


def kustomize_build(context: Context, path: str) -> Verdict:
    kubectl = _tool("kubectl")
    if kubectl is None:
        return not_installed("kubectl")
    directory = str(Path(path).parent)
    code, output = _run([kubectl, "kustomize", directory], context.tree)
    if code == 0:
        return passed(f"kubectl kustomize {directory}")
    error = re.search(r'err="(.*)"\s*$', _last_line(output))
    return failed(f"kubectl kustomize {directory}: {error[1] if error else _last_line(output)}")


def helm_chart(context: Context, path: str) -> Verdict:
    helm = _tool("helm")
    if helm is None:
        return not_installed("helm")
    directory = str(Path(path).parent)
    code, output = _run([helm, "lint", directory], context.tree)
    return (
        passed(f"helm lint {directory}")
        if code == 0
        else failed(f"helm lint: {_last_line(output)}")
    )


def alert_rules(context: Context, path: str) -> Verdict:
    """promtool checks the rules: a rule file, or the spec of a Kubernetes PrometheusRule."""
    promtool = _tool("promtool")
    if promtool is None:
        return not_installed("promtool")
    loaded, _ = context.yaml(path)
    if isinstance(loaded, dict) and loaded.get("kind") == "PrometheusRule":
        import yaml

        with tempfile.TemporaryDirectory(prefix="mlopsify-rules-") as scratch:
            spec = Path(scratch) / "rules.yml"
            spec.write_text(yaml.safe_dump(loaded.get("spec") or {}), encoding="utf-8")
            code, output = _run([promtool, "check", "rules", str(spec)], context.tree)
        kept = "promtool check rules (the PrometheusRule's spec)"
        return passed(kept) if code == 0 else failed(f"{kept}: {_last_line(output)}")
    code, output = _run([promtool, "check", "rules", path], context.tree)
    if code == 0:
        return passed("promtool check rules")
    return failed(f"promtool check rules: {_last_line(output)}")


def service_image(context: Context, path: str) -> Verdict:
    """The Dockerfile that builds the service builds (it has a FROM): others are not counted."""
    chosen = cached(context, "service-dockerfile", "", _choose_service_dockerfile)
    if chosen.note != path:
        return Verdict(False, f"not counted: {_not_the_service(chosen.note)}")
    if not re.search(r"(?im)^\s*FROM\s+\S+", context.text(path)):
        return failed("no FROM instruction")
    return passed("the service's image")


def service_image_user(context: Context, path: str) -> Verdict:
    """The service's image runs as a user other than root."""
    chosen = cached(context, "service-dockerfile", "", _choose_service_dockerfile)
    if chosen.note != path:
        return Verdict(False, f"not counted: {_not_the_service(chosen.note)}")
    user = user_of_last_stage(context.text(path))
    if user is None:
        return failed("the service's image runs as root (no USER in its last stage)")
    if user.split(":")[0] in {"root", "0"}:
        return failed(f"the service's image runs as root (USER {user})")
    return passed(f"the service's image runs as {user}")


def _choose_service_dockerfile(context: Context, _: str) -> Verdict:
    chosen, _why = service_dockerfile(context.tree, context.paths)
    return Verdict(chosen is not None, chosen or _why)


def _not_the_service(chosen_or_why: str) -> str:
    if chosen_or_why.startswith("no "):
        return chosen_or_why
    return f"the service's image is built from {chosen_or_why}"


def compose_file(context: Context, path: str) -> Verdict:
    return json_schema(context, path, "vendor.compose-spec")


def _registry(context: Context) -> tuple[sqlite3.Connection | None, str]:
    database = context.root / "mlflow.db"
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        connection.execute("SELECT 1 FROM registered_models LIMIT 1")
    except sqlite3.Error as error:
        return None, str(error)
    return connection, ""


def registered_models(context: Context, path: str) -> Verdict:
    connection, error = _registry(context)
    if connection is None:
        return failed(f"mlflow.db has no registry ({error})")
    with connection:
        names = [
            row[0] for row in connection.execute("SELECT name FROM registered_models ORDER BY name")
        ]
    return passed(f"registered: {', '.join(names)}") if names else failed("no registered model")


def champion_alias(context: Context, path: str) -> Verdict:
    """A registered model holds the champion alias (the one params.yaml's mlflow.alias names)."""
    loaded, _ = context.yaml("params.yaml")
    settings = loaded.get("mlflow") if isinstance(loaded, dict) else None
    alias = str(settings.get("alias") or "champion") if isinstance(settings, dict) else "champion"
    connection, error = _registry(context)
    if connection is None:
        return failed(f"mlflow.db has no registry ({error})")
    try:
        with connection:
            rows = connection.execute(
                "SELECT name, version FROM registered_model_aliases WHERE alias = ? ORDER BY name",
                (alias,),
            ).fetchall()
    except sqlite3.Error as error:
        return failed(f"mlflow.db has no aliases ({error})")
    if not rows:
        return failed(f"no registered model holds the alias {alias}")
    return passed(
        ", ".join(f"{name} version {version} holds the alias {alias}" for name, version in rows)
    )


def logged_runs(context: Context, path: str) -> Verdict:
    """A tracked run logged parameters and metrics."""
    database = context.root / "mlflow.db"
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            [runs] = connection.execute(
                "SELECT COUNT(DISTINCT m.run_uuid) FROM metrics m JOIN params p ON p.run_uuid = m.run_uuid"
            ).fetchone()
    except sqlite3.Error as error:
        return failed(f"mlflow.db has no runs ({error})")
    return (
        passed(f"{_count(runs, 'run', 'runs')} with parameters and metrics")
        if runs
        else failed("no run logged parameters and metrics")
    )


def test_functions(context: Context, path: str) -> Verdict:
    """Without --run: the test module parses and defines tests; with it: pytest collects them."""
    if context.run_tests:
        return cached(context, "pytest", "collect", _collect_tests)
    try:
        tree = ast.parse(context.text(path))
    except SyntaxError as error:
        return failed(f"not valid Python (line {error.lineno}: {error.msg})")
    tests = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ]
    if not tests:
        return failed("no test function")
    counted = "1 test function parses" if len(tests) == 1 else f"{len(tests)} test functions parse"
    return passed(f"{counted} (assess --run collects and runs them)")


def tests_pass(context: Context, path: str) -> Verdict:
    if not context.run_tests:
        return Verdict(False, "not checked: the tests were not run (assess --run runs them)")
    return cached(context, "pytest", "run", _run_tests)


def _python(context: Context) -> str:
    """The repository's own environment when it has one (.venv), else the running Python."""
    own = context.root / ".venv" / "bin" / "python"
    return str(own) if own.is_file() else sys.executable


def _pytest(context: Context, *args: str) -> tuple[int, str]:
    return _run(
        [_python(context), "-m", "pytest", "-p", "no:cacheprovider", *args],
        context.tree,
        timeout=TESTS_TIMEOUT,
    )


def _summary(output: str) -> str:
    """pytest's last line without its timing, so that a report is the same from run to run."""
    return re.sub(r"\s+in [\d.]+s( \([^)]*\))?$", "", _last_line(output).strip("= "))


def _collect_tests(context: Context, _: str) -> Verdict:
    code, output = _pytest(context, "--collect-only", "-q")
    if code == 0:
        return passed(f"pytest --collect-only: {_summary(output)}")
    if "No module named pytest" in output:
        return not_installed(f"pytest (in {_python(context)})")
    return failed(f"pytest --collect-only: {_summary(output)}")


def _run_tests(context: Context, _: str) -> Verdict:
    code, output = _pytest(context, "-q")
    if code == 0:
        return passed(f"pytest: {_summary(output)}")
    if "No module named pytest" in output:
        return not_installed(f"pytest (in {_python(context)})")
    return failed(f"pytest: {_summary(output)}")


def cached(context: Context, name: str, path: str, check: Check) -> Verdict:
    key = (name, path)
    if key not in context.cache:
        context.cache[key] = check(context, path)
    return context.cache[key]


CHECKS: dict[str, Check] = {
    "committed": committed,
    "git-history": git_history,
    "python": python_source,
    "yaml": yaml_document,
    "pre-commit": pre_commit_config,
    "ci": ci_file,
    "pipeline": dvc_pipeline,
    "validate-stage": validation_stage,
    "dvc-file": dvc_tracked_file,
    "dvc-config": dvc_config,
    "gate": gate_thresholds,
    "manifest": kubernetes_manifest,
    "kustomize": kustomize_build,
    "helm": helm_chart,
    "alert-rules": alert_rules,
    "service-image": service_image,
    "service-image-user": service_image_user,
    "compose": compose_file,
    "registered-models": registered_models,
    "champion-alias": champion_alias,
    "logged-runs": logged_runs,
    "test-functions": test_functions,
    "tests-pass": tests_pass,
}
"""Check name (a rule's ``check``) -> the check; each result is cached per file."""


def verdict(context: Context, check: str, path: str) -> Verdict:
    return cached(context, check, path, CHECKS[check])
