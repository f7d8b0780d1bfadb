"""Benchmarks of mlopsify against its peers, side by side, in one run on one machine.

    make bench                          # everything; rewrites docs/benchmarks.md
    .venv/bin/python benchmarks/generator.py --smoke --output /tmp/bench.md  # 1 run, a subset

Each group runs its commands round-robin (one run of each, then the next repetition), so a
machine that slows down mid-run slows every peer alike; the table reports medians. Set-up
work that is not being measured (removing the previous output, copying a pristine project)
happens before the clock starts. See docs/benchmarks.md for the method and the findings.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # benchmarks/ and scripts/ are not packages: found through sys.path
import release_template

from mlopsify.template_source import release_order

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
CCDS = ROOT / ".cache" / "ccds" / "bin" / "ccds"
CCDS_STANDIN = Path(__file__).resolve().parent / "ccds_standin"
BUNDLE = ROOT / "src" / "mlopsify" / "_template" / "template.bundle"
CANONICAL_URL = "https://github.com/mlopsify/mlopsify.git"
BUNDLE_ENV = "MLOPSIFY_TEMPLATE_BUNDLE"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PROJECT = "bench-project"  # a name every generator accepts, so the answers match
GROUPS = ("startup", "new", "update", "pipeline", "ttfp")
SMOKE_GROUPS = ("startup", "new")
IDENTITY = {
    "GIT_AUTHOR_NAME": "mlopsify bench",
    "GIT_AUTHOR_EMAIL": "bench@mlopsify.invalid",
    "GIT_COMMITTER_NAME": "mlopsify bench",
    "GIT_COMMITTER_EMAIL": "bench@mlopsify.invalid",
}


@dataclass
class Case:
    """One command to time; ``prepare`` runs untimed before each run."""

    key: str
    label: str
    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    verify: Callable[[], None] | None = None  # untimed, after each run: did it do the work?
    warmup: int = 1
    runs: int | None = None  # fewer (or more) repetitions than the group's
    times: list[float] = field(default_factory=list)  # wall-clock seconds
    cpu: list[float] = field(default_factory=list)  # user + system seconds, children included
    skipped: str = ""  # why the case was not measured

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


@dataclass
class Group:
    key: str
    title: str
    runs: int
    cases: list[Case]
    baseline: str  # key of the case the ratios are taken against
    notes: list[str] = field(default_factory=list)
    goal_rows: list[str] = field(default_factory=list)  # Goals table rows that are not times


@dataclass(frozen=True)
class Goal:
    text: str
    case: str
    other: str | None  # ratio case/other, else an absolute limit in seconds
    limit: float
    faster: bool = False  # "faster than other" (ratio < 1) instead of "within limit x"


GOALS = (
    Goal("`mlopsify --help` within 1.5x of `import typer`", "help", "typer", 1.5),
    Goal("`mlopsify --version` within 1.5x of `import typer`", "version", "typer", 1.5),
    Goal("`mlopsify new --defaults` within 1.2x of a raw `copier copy`", "new", "copier", 1.2),
    Goal("`mlopsify new --defaults` faster than `ccds`", "new", "ccds", 1.0, faster=True),
    Goal("no-op `dvc repro` under 2 s", "dvc-noop", None, 2.0),
    Goal(
        "time to first prediction (`mlopsify new` to the first answer) under 30 s",
        "ttfp-total",
        None,
        30.0,
    ),
    Goal("the service ready under 2 s after `make serve` starts", "ttfp-ready", None, 2.0),
    Goal(
        "cold `dvc repro` within 1.3x of the same stages in one process",
        "ttfp-dvc-cold",
        "ttfp-floor",
        1.3,
    ),
)
# Template 0.2.0's `make setup` environment, measured before the dependency split (issue 19).
SIZE_BEFORE = (749, 175)
SIZE_GOAL = (
    f"`make setup` environment at most half of template 0.2.0's ({SIZE_BEFORE[0]} MB, "
    f"{SIZE_BEFORE[1]} packages)"
)


# ----------------------------------------------------------------------------- helpers
def run(*args: str | Path, cwd: Path, env: dict[str, str], check: bool = True) -> str:
    completed = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and completed.returncode != 0:
        raise SystemExit(
            f"{' '.join(map(str, args))} exited {completed.returncode} in {cwd}\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return completed.stdout.strip()


def base_env(home: Path) -> dict[str, str]:
    """The environment of every timed command: the dev venv first, an isolated HOME.

    Byte-code caching stays on (``PYTHONDONTWRITEBYTECODE`` is dropped): users' installs
    have ``.pyc`` files, and without them every start-up recompiles Typer and Click.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONDONTWRITEBYTECODE", BUNDLE_ENV}}
    real_home = Path.home()
    env.setdefault("UV_CACHE_DIR", str(real_home / ".cache" / "uv"))
    env.setdefault("XDG_CACHE_HOME", str(real_home / ".cache"))
    env.update(IDENTITY)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
        # Copier keeps a git mirror of each remote template URL: one of its own per run.
        COPIER_CACHE_DIR=str(home / "copier-cache"),
    )
    return env


def insteadof(bundle: Path) -> dict[str, str]:
    """Git config, as environment, that resolves the canonical URL to ``bundle``.

    This is how mlopsify itself reaches its shipped bundle, and how a user without
    mlopsify runs Copier on a project offline.
    """
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{bundle}.insteadOf",
        "GIT_CONFIG_VALUE_0": CANONICAL_URL,
    }


def fresh(path: Path) -> Callable[[], None]:
    def prepare() -> None:
        shutil.rmtree(path, ignore_errors=True)

    return prepare


def copy_of(pristine: Path, target: Path) -> Callable[[], None]:
    def prepare() -> None:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(pristine, target, symlinks=True)

    return prepare


def measure(group: Group, env: dict[str, str], log: Callable[[str], None]) -> None:
    """Warm up, then time the group's cases round-robin, each for its number of runs."""
    active = [case for case in group.cases if not case.skipped]
    for case in active:
        for _ in range(case.warmup):
            timed(case, env)
    repetitions = max((case.runs or group.runs for case in active), default=0)
    for repetition in range(repetitions):
        for case in active:
            if repetition < (case.runs or group.runs):
                wall, cpu = timed(case, env)
                case.times.append(wall)
                case.cpu.append(cpu)
        log(f"  {group.key}: run {repetition + 1}/{repetitions}")


def timed(case: Case, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run (CPU: the command and every process it waited for).

    CPU time hardly moves when other work shares the machine; wall-clock time is what users
    wait for. The goals are judged on wall-clock medians; CPU medians show the noise.
    """
    if case.prepare:
        case.prepare()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(
        case.command,
        cwd=case.cwd,
        env={**env, **case.env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode != 0:
        raise SystemExit(
            f"{case.label}: `{' '.join(case.command)}` exited {completed.returncode}\n"
            f"{completed.stderr[-3000:]}"
        )
    if case.verify:
        case.verify()
    return elapsed, cpu


def answered(project: Path, commit: str | None) -> Callable[[], None]:
    """A check that ``project`` was rendered (or updated) from template release ``commit``."""

    def verify() -> None:
        answers = project / ".copier-answers.yml"
        text = answers.read_text(encoding="utf-8") if answers.exists() else ""
        if f"_commit: {commit}\n" not in text if commit else "_src_path:" not in text:
            raise SystemExit(f"{project} is not at template {commit}:\n{text}")

    return verify


# ----------------------------------------------------------------------------- the template
@dataclass(frozen=True)
class Releases:
    base: Path  # bundle whose newest release `new` renders
    base_tag: str
    base_dir: Path  # the same release as a plain directory (no git)
    following: Path  # bundle with one release more, for `update`
    next_tag: str


def build_bundles(work: Path, env: dict[str, str]) -> Releases:
    """Two release histories: ``base`` (what `new` renders) and ``next`` (one release more).

    ``base`` is the shipped bundle when template/ matches its newest release, else the
    shipped history plus the working tree released as ``<newest>.post1``, so the figures are
    those of the template in this checkout. ``next`` adds a release that changes the README,
    for `update` to move to. Post-releases, because Copier skips pre-releases.
    """
    genv = {**env, **IDENTITY}
    # The same checkout as a real release: the shipped history plus this working tree's files.
    repo = release_template.checkout_history(work)
    tags = run("git", "tag", "--list", "v*", cwd=repo, env=genv).split()
    newest = release_order(tags)[-1] if tags else "v0.0.0"
    base_tag = newest
    if run("git", "status", "--porcelain", cwd=repo, env=genv) or not tags:
        base_tag = _post(newest, 1) if tags else "v0.0.1"
        run("git", "commit", "--quiet", "--allow-empty", "-m", base_tag, cwd=repo, env=genv)
        run("git", "tag", base_tag, cwd=repo, env=genv)
    base = work / "base.bundle"
    run("git", "bundle", "create", "--quiet", base, "--all", cwd=repo, env=genv)
    base_dir = work / "template-dir"
    shutil.copytree(repo, base_dir, ignore=shutil.ignore_patterns(".git"))

    readme = next(iter(sorted((repo / "template").glob("README*"))), None)
    changed = readme or repo / "template" / "RELEASE.md"
    with changed.open("a", encoding="utf-8") as handle:
        handle.write("\nThis release exists only in the benchmark's bundle.\n")
    next_tag = _post(base_tag, 1)
    run("git", "add", "--all", cwd=repo, env=genv)
    run("git", "commit", "--quiet", "-m", next_tag, cwd=repo, env=genv)
    run("git", "tag", next_tag, cwd=repo, env=genv)
    following = work / "next.bundle"
    run("git", "bundle", "create", "--quiet", following, "--all", cwd=repo, env=genv)
    return Releases(base, base_tag, base_dir, following, next_tag)


def _post(tag: str, step: int) -> str:
    match = re.fullmatch(r"(v[\d.]+?)(?:\.post(\d+))?", tag)
    if not match:
        raise SystemExit(f"cannot make a post-release of template tag {tag}")
    return f"{match[1]}.post{int(match[2] or 0) + step}"


# ----------------------------------------------------------------------------- the groups
def startup_group(work: Path, runs: int) -> Group:
    cwd = work / "startup"
    cwd.mkdir()
    python = str(BIN / "python")
    ccds = Case("ccds-version", "`ccds --version`", [str(CCDS), "--version"], cwd)
    if not CCDS.exists():
        ccds.skipped = "cookiecutter-data-science is not installed: run `make bootstrap`"
    return Group(
        "startup",
        "Start-up",
        runs,
        [
            Case(
                "typer",
                '`python -c "import typer"` (baseline)',
                [python, "-c", "import typer"],
                cwd,
                warmup=3,
            ),
            Case(
                "version",
                "`mlopsify --version`",
                [str(BIN / "mlopsify"), "--version"],
                cwd,
                warmup=3,
            ),
            Case("help", "`mlopsify --help`", [str(BIN / "mlopsify"), "--help"], cwd, warmup=3),
            # For scale: the floor of any Copier-based command, and the peers' start-up.
            Case(
                "copier-import",
                '`python -c "import copier"`',
                [python, "-c", "import copier"],
                cwd,
            ),
            Case("copier-version", "`copier --version`", [str(BIN / "copier"), "--version"], cwd),
            ccds,
        ],
        baseline="typer",
    )


def new_group(
    work: Path, runs: int, env: dict[str, str], releases: Releases, ccds_template: Path | None
) -> Group:
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    cwd = work / "new"
    for name in ("copier", "copier-dir", "mlopsify", "ccds", "ccds-clone"):
        (cwd / name).mkdir(parents=True)
    answers = ["--data", f"project_name={PROJECT}", "--data", f"python_version={python_version}"]
    copy = [str(BIN / "copier"), "copy", "--defaults", "--quiet", *answers]
    copier = Case(
        "copier",
        "raw `copier copy --defaults` of the same release (baseline)",
        [*copy, CANONICAL_URL, str(cwd / "copier" / PROJECT)],
        cwd,
        env=insteadof(releases.base),
        prepare=fresh(cwd / "copier" / PROJECT),
        verify=answered(cwd / "copier" / PROJECT, releases.base_tag),
    )
    copier_dir = Case(
        "copier-dir",
        "raw `copier copy --defaults` of the same release as a plain directory (no git)",
        [*copy, str(releases.base_dir), str(cwd / "copier-dir" / PROJECT)],
        cwd,
        prepare=fresh(cwd / "copier-dir" / PROJECT),
        verify=answered(cwd / "copier-dir" / PROJECT, None),
    )
    new = Case(
        "new",
        "`mlopsify new --defaults` (renders, then `git init` + first commit)",
        [str(BIN / "mlopsify"), "new", str(cwd / "mlopsify" / PROJECT), "--defaults"],
        cwd,
        env={BUNDLE_ENV: str(releases.base)},
        prepare=fresh(cwd / "mlopsify" / PROJECT),
        verify=answered(cwd / "mlopsify" / PROJECT, releases.base_tag),
    )
    template = ccds_template or CCDS_STANDIN
    kind = "its template" if ccds_template else "a stand-in of its default project"
    ccds = Case(
        "ccds",
        f"`ccds --no-input` ({kind}, local path)",
        [str(CCDS), "--no-input", str(template), "-o", str(cwd / "ccds")],
        cwd,
        prepare=fresh(cwd / "ccds" / "project_name"),
    )
    # ccds's default flow clones its template at the release tag; here from a local repository.
    ccds_clone = Case(
        "ccds-clone",
        f"`ccds --no-input` ({kind}, cloned at its release tag from a local git repository)",
        [str(CCDS), "--no-input", "", "-o", str(cwd / "ccds-clone")],
        cwd,
        prepare=fresh(cwd / "ccds-clone" / "project_name"),
    )
    if CCDS.exists():
        ccds_clone.command[2] = f"git+file://{template_repository(work, template, env)}"
    else:
        for case in (ccds, ccds_clone):
            case.skipped = "cookiecutter-data-science is not installed: run `make bootstrap`"
    group = Group(
        "new", "New project", runs, [copier, copier_dir, new, ccds, ccds_clone], baseline="copier"
    )
    if not ccds_template:
        group.notes.append(
            "`ccds` clones its template from GitHub unless given a local path, and neither its "
            "wheel nor its sdist ships the template, so offline it renders "
            "benchmarks/ccds_standin: the same tree as its default project (28 files, "
            "mkdocs docs, code scaffold, requirements.txt, 15 questions) and a "
            "post-generation hook that calls ccds's own helpers. Pass `--ccds-template PATH` "
            "(a checkout of drivendataorg/cookiecutter-data-science) to time the real one."
        )
    return group


def template_repository(work: Path, template: Path, env: dict[str, str]) -> Path:
    """A git repository of ``template`` tagged as the installed ccds's release (what it checks out)."""
    version = ccds_version()
    repo = work / "ccds-template-repo"
    if (template / ".git").exists():
        run("git", "clone", "--quiet", template, repo, cwd=work, env=env)
    else:
        shutil.copytree(template, repo)
        run("git", "init", "--quiet", "--initial-branch=main", cwd=repo, env=env)
        run("git", "add", "--all", cwd=repo, env=env)
        run("git", "commit", "--quiet", "-m", "template", cwd=repo, env=env)
    run("git", "tag", "--force", f"v{version}", cwd=repo, env=env)
    return repo


def ccds_version() -> str:
    if not CCDS.exists():
        return "not installed"
    return subprocess.run(
        [
            str(CCDS.parent / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('cookiecutter-data-science'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def update_group(work: Path, runs: int, env: dict[str, str], releases: Releases) -> Group:
    base, base_tag = releases.base, releases.base_tag
    following, next_tag = releases.following, releases.next_tag
    cwd = work / "update"
    cwd.mkdir()
    pristine = cwd / "pristine" / PROJECT
    run(
        BIN / "mlopsify", "new", pristine, "--defaults", cwd=cwd, env={**env, BUNDLE_ENV: str(base)}
    )
    target = cwd / "work" / PROJECT
    copier = Case(
        "copier-update",
        f"raw `copier update --defaults` {base_tag} -> {next_tag} (baseline)",
        [
            str(BIN / "copier"),
            "update",
            "--defaults",
            "--quiet",
            "--trust",
            "--vcs-ref",
            next_tag,
            str(target),
        ],
        cwd,
        env=insteadof(following),
        prepare=copy_of(pristine, target),
        verify=answered(target, next_tag),
        warmup=0,
    )
    update = Case(
        "update",
        f"`mlopsify update` {base_tag} -> {next_tag}",
        [str(BIN / "mlopsify"), "update", str(target)],
        cwd,
        env={BUNDLE_ENV: str(following)},
        prepare=copy_of(pristine, target),
        verify=answered(target, next_tag),
        warmup=0,
    )
    help_text = run(BIN / "mlopsify", "--help", cwd=cwd, env=env)
    if not re.search(r"^\s+update\b", help_text, re.MULTILINE):
        update.skipped = "this mlopsify has no `update` command yet"
    return Group(
        "update",
        "Update to a newer template release",
        runs,
        [copier, update],
        baseline="copier-update",
    )


def pipeline_group(
    work: Path, runs: int, env: dict[str, str], base: Path, log: Callable[[str], None]
) -> tuple[Group, dict[str, str]]:
    """`dvc repro` in a default project, with its environment made by its own `make setup`."""
    cwd = work / "pipeline"
    cwd.mkdir()
    project = cwd / PROJECT
    run(BIN / "mlopsify", "new", project, "--defaults", cwd=cwd, env={**env, BUNDLE_ENV: str(base)})
    facts: dict[str, str] = {}
    cases = [
        Case("dvc-version", "`dvc --version` (DVC's own start-up)", ["dvc", "--version"], project),
        # A cold build runs the whole ML pipeline: fewer runs. Its warm-up run also writes the
        # environment's byte-code, so "cold" means no outputs, not a never-run Python.
        Case(
            "dvc-cold",
            "cold `dvc repro` (no outputs, no cache)",
            ["dvc", "repro", "--quiet"],
            project,
            warmup=1,
            runs=2,
        ),
        # Runs right after a cold build in each repetition, so there is always a build.
        Case(
            "dvc-noop",
            "no-op `dvc repro` (everything up to date)",
            ["dvc", "repro", "--quiet"],
            project,
            warmup=0,
        ),
    ]
    group = Group(
        "pipeline", "Pipeline of the generated project", runs, cases, baseline="dvc-version"
    )
    if not (project / "dvc.yaml").exists():
        for case in cases:
            case.skipped = "the template has no dvc.yaml yet"
        return group, facts
    log("  pipeline: make setup")
    start = time.perf_counter()
    run("make", "setup", cwd=project, env=env)
    facts["setup"] = f"{time.perf_counter() - start:.1f} s"
    venv_bin = project / ".venv" / "bin"
    project_env = {
        "PATH": f"{venv_bin}{os.pathsep}{env['PATH']}",
        "VIRTUAL_ENV": str(venv_bin.parent),
    }
    for case in cases:
        case.env = project_env
        case.command[0] = str(venv_bin / case.command[0])

    def cold() -> None:
        # Back to the committed project: outputs, dvc.lock, DVC's cache and MLflow's store go.
        run("git", "checkout", "--quiet", "--", ".", cwd=project, env=env)
        run("git", "clean", "-fdxq", "-e", ".venv", cwd=project, env=env)

    cases[1].prepare = cold
    facts["dvc"] = run(venv_bin / "dvc", "--version", cwd=project, env={**env, **project_env})
    return group, facts


def ttfp_group(
    work: Path, runs: int, env: dict[str, str], base: Path
) -> tuple[Group, Callable[[Callable[[str], None]], None]]:
    """From `mlopsify new` to the first prediction, stage by stage, in a fresh project each run.

    The template of this checkout and, as its peer in the same run, the shipped release
    (template 0.2.0 when this was written), round-robin. With ``PYTHONDONTWRITEBYTECODE=1``, as
    on these machines: only what `make setup` compiled is byte-code. Then, in this checkout's
    project, a cold `dvc repro` beside the same stages in one Python process
    (benchmarks/pipeline_floor.py), the floor of the pipeline.
    """
    here = Path(__file__).resolve().parent
    served, floor = work / "ttfp-first-prediction.json", work / "ttfp-floor.json"
    heads = run("git", "bundle", "list-heads", BUNDLE, cwd=work, env=env).split()
    tags = [ref.removeprefix("refs/tags/") for ref in heads if ref.startswith("refs/tags/")]
    shipped = release_order(tags)[-1]

    def journey(key: str, title: str, bundle: Path) -> tuple[Path, list[Case], Case]:
        cwd = work / key
        cwd.mkdir()
        project = cwd / PROJECT
        venv_bin = project / ".venv" / "bin"
        project_env = {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": f"{venv_bin}{os.pathsep}{env['PATH']}",
            "VIRTUAL_ENV": str(venv_bin.parent),
        }

        def case(name: str, label: str, command: list[str]) -> Case:
            return Case(
                f"{key}-{name}", f"{title}{label}", command, project, env=project_env, warmup=0
            )

        new = case(
            "new",
            "`mlopsify new --defaults`",
            [str(BIN / "mlopsify"), "new", str(project), "--defaults"],
        )
        new.cwd, new.prepare = cwd, fresh(project)
        new.env = {BUNDLE_ENV: str(bundle), "PYTHONDONTWRITEBYTECODE": "1"}
        stages = [
            new,
            case("setup", "`make setup` (uv, warm cache)", ["make", "setup"]),
            case(
                "pipeline",
                "`make pipeline` (cold: the DVC stages, then the OpenAPI snapshot)",
                ["make", "pipeline"],
            ),
            case("ready", "`make serve` until `/health/ready` answers 200", []),
            case("predict", "the first `/predict` (one record)", []),
        ]
        return project, stages, case("total", "time to first prediction (the five above)", [])

    project, stages, total = journey("ttfp", "", base)
    _, old_stages, old_total = journey("ttfp-shipped", f"template {shipped} (shipped): ", BUNDLE)
    venv_bin = project / ".venv" / "bin"

    def cold() -> None:
        run("git", "checkout", "--quiet", "--", ".", cwd=project, env=env)
        run("git", "clean", "-fdxq", "-e", ".venv", cwd=project, env=env)

    def beside(key: str, label: str, command: list[str]) -> Case:
        return Case(key, label, command, project, env=stages[1].env, prepare=cold, warmup=0)

    dvc_cold = beside(
        "ttfp-dvc-cold",
        "cold `dvc repro` of the same project",
        [str(venv_bin / "dvc"), "repro", "--quiet"],
    )
    one_process = beside(
        "ttfp-floor",
        "the same stages in one Python process (the floor)",
        [str(venv_bin / "python"), str(here / "pipeline_floor.py"), str(floor)],
    )
    group = Group(
        "ttfp",
        "Time to first prediction",
        runs,
        [*stages, total, dvc_cold, one_process, *old_stages, old_total],
        baseline="ttfp-floor",
    )

    def walk(steps: list[Case], whole: Case, project: Path) -> None:
        """The five stages in order (the last two from one probe of the server), and their sum."""
        for step in steps[:3]:
            wall, cpu = timed(step, env)
            step.times.append(wall)
            step.cpu.append(cpu)
        probe = Case(
            "probe",
            "",
            [sys.executable, str(here / "first_prediction.py"), str(project), str(served)],
            project,
        )
        _, cpu = timed(probe, env)
        answered = json.loads(served.read_text(encoding="utf-8"))
        for step, key in ((steps[3], "ready"), (steps[4], "predict")):
            step.times.append(answered[key])
            step.cpu.append(cpu if key == "ready" else 0.0)
        whole.times.append(sum(step.times[-1] for step in steps))
        whole.cpu.append(sum(step.cpu[-1] for step in steps))

    def measure_ttfp(log: Callable[[str], None]) -> None:
        """Each run: this checkout's journey, the shipped release's, then the cold pipeline both ways."""
        per_stage: dict[str, list[float]] = {}
        for repetition in range(runs):
            walk(stages, total, project)
            if repetition == runs - 1:
                group.goal_rows.append(size_row(project / ".venv"))
            walk(old_stages, old_total, old_stages[1].cwd)
            for step in (dvc_cold, one_process):
                wall, cpu = timed(step, env)
                step.times.append(wall)
                step.cpu.append(cpu)
            for stage, took in json.loads(floor.read_text(encoding="utf-8")).items():
                per_stage.setdefault(stage, []).append(took)
            log(f"  ttfp: run {repetition + 1}/{runs}")
        group.notes.append(
            "Time to first prediction, the one-process floor by stage (medians): "
            + ", ".join(
                f"{stage} {seconds(statistics.median(took))}" for stage, took in per_stage.items()
            )
            + ". The ready stage's CPU time is that of the whole probe (server and client). "
            f"Template {shipped} (shipped), the newest release in the wheel's bundle, is timed in the same runs."
        )

    return group, measure_ttfp


def size_row(venv: Path) -> str:
    """The Goals row of the environment's size: MB on disk (and without byte-code), packages."""
    files = [path for path in venv.rglob("*") if path.is_file() and not path.is_symlink()]
    total = sum(path.stat().st_size for path in files) / 1e6
    code = sum(path.stat().st_size for path in files if "__pycache__" not in path.parts) / 1e6
    packages = len(list(venv.glob("lib/python*/site-packages/*.dist-info")))
    met = total <= SIZE_BEFORE[0] / 2 and packages <= SIZE_BEFORE[1] / 2
    measured = (
        f"{total:.0f} MB ({code:.0f} MB without byte-code), {packages} packages "
        f"({total / SIZE_BEFORE[0]:.2f}x, {packages / SIZE_BEFORE[1]:.2f}x)"
    )
    return f"| {SIZE_GOAL} | {measured} | n/a | {'yes' if met else 'no'} |"


# ----------------------------------------------------------------------------- the report
def machine_facts(extra: dict[str, str]) -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    return [
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("load average at the start (1, 5, 15 min)", extra.get("load", "unknown")),
        ("load average at the end", load),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("mlopsify", version("mlopsify")),
        ("copier", version("copier")),
        ("typer", version("typer")),
        ("cookiecutter-data-science", ccds_version()),
        ("dvc (generated project)", extra.get("dvc", "not measured")),
        ("git", git.stdout.strip().removeprefix("git version ")),
        ("`make setup` of the project (uv, warm cache)", extra.get("setup", "not measured")),
    ]


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 0.9995 else f"{value:.2f} s"


def report(groups: list[Group], facts: list[tuple[str, str]], runs_note: str, took: float) -> str:
    cases = {case.key: case for group in groups for case in group.cases if case.times}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        f"Last run: {stamp}, {runs_note}, whole run {took:.0f} s "
        "(`make bench`; written by benchmarks/generator.py).",
        "",
        "### Goals",
        "",
        "| goal | measured (wall-clock medians) | CPU-time ratio | met |",
        "|---|---|---|---|",
    ]
    for goal in GOALS:
        case = cases.get(goal.case)
        other = cases.get(goal.other) if goal.other else None
        if case is None or (goal.other and other is None):
            lines.append(f"| {goal.text} | not measured | n/a | n/a |")
            continue
        if other is not None:
            ratio = case.median / other.median
            met = ratio < 1 if goal.faster else ratio <= goal.limit
            measured = f"{ratio:.2f}x ({seconds(case.median)} vs {seconds(other.median)})"
            cpu = f"{case.cpu_median / other.cpu_median:.2f}x"
        else:
            met = case.median < goal.limit
            measured, cpu = seconds(case.median), f"({seconds(case.cpu_median)} CPU)"
        lines.append(f"| {goal.text} | {measured} | {cpu} | {'yes' if met else 'no'} |")
    rows = [row for group in groups for row in group.goal_rows]
    lines += rows or [f"| {SIZE_GOAL} | not measured | n/a | n/a |"]
    lines += [
        "",
        "### Figures",
        "",
        "| group | command | median | min | max | CPU median | runs | ratio to baseline "
        "(wall, CPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group in groups:
        base = next((c for c in group.cases if c.key == group.baseline and c.times), None)
        for case in group.cases:
            if not case.times:
                reason = case.skipped or "not measured"
                lines.append(
                    f"| {group.title} | {case.label} | n/a | n/a | n/a | n/a | 0 | {reason} |"
                )
                continue
            ratio = "n/a"
            if base:
                ratio = (
                    f"{case.median / base.median:.2f}x, {case.cpu_median / base.cpu_median:.2f}x"
                )
            lines.append(
                f"| {group.title} | {case.label} | {seconds(case.median)} | "
                f"{seconds(min(case.times))} | {seconds(max(case.times))} | "
                f"{seconds(case.cpu_median)} | {len(case.times)} | {ratio} |"
            )
    # One chart per group, drawn from the table just written, next to it.
    lines += ["", charts.image_links(charts.generator_charts("\n".join(lines)))]
    notes = [note for group in groups for note in group.notes]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", "### Machine", "", "| fact | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_report(path: Path, section: str) -> None:
    """Replace the generated section of ``path``, keeping the prose around it."""
    if path.exists() and BEGIN in (text := path.read_text(encoding="utf-8")) and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        path.write_text(head + section + ("\n" + tail if tail else ""), encoding="utf-8")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Benchmarks\n\n" + section, encoding="utf-8")


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one run of the start-up and new groups, no warm-up (for tests)",
    )
    parser.add_argument(
        "--groups", default=",".join(GROUPS), help=f"comma-separated subset of {', '.join(GROUPS)}"
    )
    parser.add_argument("--runs", type=int, default=None, help="repetitions of every group")
    parser.add_argument(
        "--ccds-template",
        type=Path,
        default=None,
        help="a local checkout of cookiecutter-data-science's template",
    )
    args = parser.parse_args(argv)
    wanted = SMOKE_GROUPS if args.smoke else tuple(args.groups.split(","))
    unknown = set(wanted) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group {', '.join(sorted(unknown))}: use {', '.join(GROUPS)}")
    # Sized to finish in about 5 minutes here, under 10 on a machine three times as busy.
    default_runs = {"startup": 15, "new": 5, "update": 3, "pipeline": 10, "ttfp": 3}

    def runs_of(group: str) -> int:
        return 1 if args.smoke else args.runs or default_runs[group]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="mlopsify-bench-") as scratch:
        work = Path(scratch)
        (work / "home").mkdir()
        env = base_env(work / "home")
        releases = build_bundles(work, env)
        log(f"template releases: {releases.base_tag} (new), {releases.next_tag} (update target)")
        groups: list[Group] = []
        extra: dict[str, str] = {}
        for key in GROUPS:
            if key not in wanted:
                continue
            if key == "startup":
                group = startup_group(work, runs_of(key))
            elif key == "new":
                group = new_group(work, runs_of(key), env, releases, args.ccds_template)
            elif key == "update":
                group = update_group(work, runs_of(key), env, releases)
            elif key == "pipeline":
                group, pipeline_facts = pipeline_group(work, runs_of(key), env, releases.base, log)
                extra.update(pipeline_facts)
            else:
                group, measure_ttfp = ttfp_group(work, runs_of(key), env, releases.base)
                log(f"{group.title}: {group.runs} run(s)")
                measure_ttfp(log)
                groups.append(group)
                continue
            if args.smoke:
                for case in group.cases:
                    case.warmup, case.runs = 0, 1
            log(f"{group.title}: {group.runs} run(s)")
            measure(group, env, log)
            groups.append(group)
        facts = machine_facts({**extra, "load": load})
    took = time.perf_counter() - started
    runs_note = "runs per command in the table"
    section = report(groups, facts, runs_note, took)
    write_report(args.output, section)
    charts.write_charts(charts.generator_charts(section), args.output.parent)
    print(section)


if __name__ == "__main__":
    main()
