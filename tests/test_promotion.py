"""Governed promotion in a generated project, run for real: DVC, MLflow on SQLite, make, gitlab-ci-local.

One project (GitLab CI, Kubernetes) walks the whole path in one test, because each step
starts from the registry the last one left: the first model is judged on the thresholds
alone and becomes champion; a worse model (a tiny regularisation constant C) still passes
every threshold but loses to the champion, so the gate fails and the alias stays; a better
model is promoted; staging and production each follow their own alias, and production takes
the image tag that staging ran; a rollback moves champion and production back; `make audit`
lists all of it, with the registry identity of each alias move (`local` on SQLite); promotion
verifies each version's signature (the project has a key pair: `make keys`); the evaluate stage's DVC plots are valid and `dvc plots show` renders them. There is no Kubernetes API server here: a fake kubectl on PATH records its
calls (the deploy itself is tested in test_deploy_preflight.py and test_image_build.py).
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from helpers import REAL_CACHES, require_tool
from test_deploy_preflight import fake_kubectl, kubectl_calls
from test_generated_project import Project

pytestmark = pytest.mark.slow

NAME = "churn-gate"
# Reads every version's tags and the aliases from the project's registry.
REGISTRY_PROBE = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient("sqlite:///mlflow.db")
name = sys.argv[1]
print(json.dumps({
    "aliases": {a: str(v) for a, v in client.get_registered_model(name).aliases.items()},
    "tags": {str(v.version): dict(v.tags) for v in client.search_model_versions(f"name = '{name}'")},
}))
"""


@pytest.fixture(scope="module")
def project(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    created = Project.create(tmp_path_factory, template_dir, NAME, {"ci_provider": "gitlab"})
    created.run("make", "setup")
    # a key pair: the pipeline signs, and promotion refuses a model whose signature fails
    created.run("make", "keys")
    return created


def registry(project: Project) -> dict[str, dict[str, dict[str, str]]]:
    probe = project.run(str(project.path / ".venv" / "bin" / "python"), "-c", REGISTRY_PROBE, NAME)
    result: dict[str, dict[str, dict[str, str]]] = json.loads(probe.stdout.splitlines()[-1])
    return result


def set_c(project: Project, value: float) -> None:
    params = project.path / "params.yaml"
    text, count = re.subn(r"(?m)^  C: .*$", f"  C: {value}", params.read_text())
    assert count == 1
    params.write_text(text)


def test_challenger_champion_environments_rollback_and_audit(
    project: Project, tmp_path: Path
) -> None:
    started = time.monotonic()
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    minimum, tolerance = params["gate"]["min"], params["gate"]["tolerance"]
    assert tolerance == {"accuracy": 0.01, "f1": 0.01, "roc_auc": 0.01}

    # 1. The first model: no champion, judged on the thresholds alone.
    first = project.run("dvc", "repro")
    assert re.search(
        rf"quality gate passed \(.*\), the first model: alias 'champion' -> {NAME} version 1",
        first.stdout,
    ), first.stdout
    tags = registry(project)["tags"]["1"]
    assert (tags["quality_gate"], tags["gate.result"], tags["gate.champion_version"]) == (
        "passed",
        "promoted",
        "none",
    )
    report = (project.path / "reports" / "gate.md").read_text()
    assert report.startswith(f"## Quality gate: {NAME} version 1 promoted\n")
    assert "Champion (alias `champion`): none (first model)." in report

    # 2. A tiny C (strong regularisation): above every threshold, worse than the champion.
    set_c(project, 0.001)
    worse = project.run("dvc", "repro", check=False)
    output = worse.stdout + worse.stderr
    assert worse.returncode != 0, output
    assert f"quality gate failed for {NAME} version 2:" in output
    assert re.search(
        r"  - accuracy = 0\.9298 is worse than the champion's 0\.9825 by 0\.0526, more than the "
        r"tolerance 0\.01 \(params\.yaml gate\.tolerance\.accuracy\)",
        output,
    ), output
    assert "alias 'champion' stays on version 1" in output
    assert "is below the minimum" not in output and "is above the maximum" not in output
    state = registry(project)
    assert state["aliases"] == {"champion": "1"}
    tags = state["tags"]["2"]
    assert (tags["quality_gate"], tags["gate.result"], tags["gate.champion_version"]) == (
        "failed",
        "rejected",
        "1",
    )
    challenger = json.loads(tags["gate.challenger_metrics"])
    champion = json.loads(tags["gate.champion_metrics"])
    assert all(challenger[metric] >= bound for metric, bound in minimum.items()), challenger
    assert champion["accuracy"] - challenger["accuracy"] > tolerance["accuracy"]
    assert json.loads(tags["gate.tolerance"]) == tolerance
    assert "gate.tolerance.accuracy" in tags["gate.reasons"]
    decision = json.loads((project.path / "reports" / "gate.json").read_text())
    assert (decision["result"], decision["champion"]["version"]) == ("rejected", "1")
    assert decision["challenger"] == {"version": "2", "metrics": challenger}

    # 3. A better model (C = 0.2: a higher ROC AUC, the rest equal) takes the alias.
    set_c(project, 0.2)
    better = project.run("dvc", "repro")
    assert re.search(
        rf"quality gate passed \(.*\) against version 1: alias 'champion' -> {NAME} version 3",
        better.stdout,
    ), better.stdout
    assert registry(project)["aliases"] == {"champion": "3"}

    # 4. Environments: staging follows the gate with the image this pipeline built ...
    kubectl = fake_kubectl(tmp_path / "bin")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {"PATH": f"{kubectl.parent}:{project.env()['PATH']}", "KUBECONFIG": str(kubeconfig)}
    staged = project.run(
        "env",
        *(f"{k}={v}" for k, v in env.items()),
        "PROMOTE_BY=alice",
        "make",
        "promote",
        "ENV=staging",
        "IMAGE_TAG=abc1234",
        "REASON=passed the gate",
    )
    assert (
        f"promote: alias 'staging' of {NAME} -> version 3, image abc1234 (by alice: passed the gate)"
        in staged.stdout
    )
    assert kubectl_calls(kubectl) == [
        "kubectl apply -k build/deploy/staging",
        f"kubectl -n {NAME}-staging rollout status deployment/{NAME} --timeout=10m",
    ]
    assert registry(project)["aliases"] == {"champion": "3", "staging": "3"}

    # ... and production is GitLab's manual job on the production environment, run by
    # gitlab-ci-local with its manual flag: it deploys staging's image tag, never a new one.
    gitlab_ci_local = require_tool("gitlab-ci-local")
    listed = project.run(gitlab_ci_local, "--list", cwd=project.path).stdout
    assert re.search(r"^deploy-production +production +manual +false +production ", listed, re.M)
    (kubectl.parent / "calls.log").unlink()
    job = project.run(
        "env",
        f"PATH={env['PATH']}",
        gitlab_ci_local,
        "--force-shell-executor",
        "--manual",
        "deploy-production",
        "--ignore-predefined-vars",
        "GITLAB_USER_LOGIN",
        "--variable",
        "GITLAB_USER_LOGIN=carol",  # the approver who played the job, as GitLab sets it
        "--variable",
        f"KUBECONFIG={kubeconfig}",
        "--variable",
        f"VENV={project.path / '.venv'}",
        "--variable",
        f"UV_CACHE_DIR={REAL_CACHES['UV_CACHE_DIR']}",
        "deploy-production",
    )
    assert re.search(r"^ PASS  deploy-production", job.stdout, re.M), job.stdout[-4000:]
    assert "$ make promote ENV=production" in job.stdout
    assert (
        f"promote: alias 'production' of {NAME} -> version 3, image abc1234 (by carol: CI run "
        in (job.stdout)
    )
    assert kubectl_calls(kubectl) == [
        "kubectl apply -k build/deploy/prod",
        f"kubectl -n {NAME} rollout status deployment/{NAME} --timeout=10m",
    ]
    overlay = yaml.safe_load((project.path / "build/deploy/prod/kustomization.yaml").read_text())
    assert {image["newTag"] for image in overlay["images"]} == {"abc1234"}
    # Only the production alias moved.
    assert registry(project)["aliases"] == {"champion": "3", "staging": "3", "production": "3"}

    # 5. A rollback moves champion and production back, and says who and why.
    rolled = project.run(
        "env",
        *(f"{k}={v}" for k, v in env.items()),
        "ROLLBACK_BY=bob",
        "make",
        "rollback",
        "ENV=prod",
        "REASON=error rate doubled",
    )
    assert "moved from version 3 to version 1 (by bob: error rate doubled)" in rolled.stdout
    assert registry(project)["aliases"] == {"champion": "1", "staging": "3", "production": "1"}

    # 6. The audit lists every version, its aliases, decisions, promotions and rollbacks.
    audit = project.run("make", "audit").stdout
    assert audit == (project.path / "reports" / "audit.md").read_text()
    rows = {
        line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1:]
        for line in audit.splitlines()
        if re.match(r"\| \d+ \|", line)
    }
    assert sorted(rows) == ["1", "2", "3"]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert rows["1"][0] == "champion, production"
    assert re.fullmatch(
        rf"promoted \(first model\) by \S+ as local at {stamp}: every threshold .*", rows["1"][1]
    )
    assert re.fullmatch(
        rf"restored from version 3 by bob as local at {stamp}: error rate doubled \|", rows["1"][3]
    )
    assert rows["2"][0] == "-"
    assert re.fullmatch(
        rf"rejected \(against version 1\) by \S+ as local at {stamp}: accuracy = 0\.9298 .*",
        rows["2"][1],
    )
    assert rows["3"][0] == "staging"
    assert re.fullmatch(
        rf"promoted \(against version 1\) by \S+ as local at {stamp}: .*", rows["3"][1]
    )
    assert re.fullmatch(
        rf"staging \(image abc1234, replaced none\) by alice as local at {stamp}: passed the gate; "
        rf"production \(image abc1234, replaced none\) by carol as local at {stamp}: CI run \S+",
        rows["3"][2],
    )
    assert re.fullmatch(
        rf"rolled back to version 1 by bob as local at {stamp}: error rate doubled \|", rows["3"][3]
    )

    # 7. The evaluate stage's DVC plots (of version 3 against version 1): valid, and rendered.
    check_plots(project)
    print(f"\npromotion walk-through: {time.monotonic() - started:.0f} s", end="")


def check_plots(project: Project) -> None:
    plots = project.path / "plots"
    test_rows = len((project.path / "data/processed/test.csv").read_text().splitlines()) - 1
    with (plots / "confusion.csv").open() as handle:
        confusion = list(csv.DictReader(handle))
    assert len(confusion) == test_rows
    assert {(row["actual"], row["predicted"]) for row in confusion} <= {
        (a, b) for a in "01" for b in "01"
    }
    with (plots / "roc.csv").open() as handle:
        roc = [(float(row["fpr"]), float(row["tpr"])) for row in csv.DictReader(handle)]
    assert roc[0] == (0.0, 0.0) and roc[-1] == (1.0, 1.0)
    rising = all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(roc))
    assert rising, "the ROC curve never falls back"
    with (plots / "gate.csv").open() as handle:
        gate = {row["metric"]: float(row["value"]) for row in csv.DictReader(handle)}
    assert set(gate) == {
        f"{metric} {model}"
        for metric in ("accuracy", "f1", "roc_auc")
        for model in ("challenger v3", "champion v1")
    }
    assert gate["roc_auc challenger v3"] > gate["roc_auc champion v1"]
    shown = project.run("dvc", "plots", "show")
    page = project.path / "dvc_plots" / "index.html"
    assert f"file://{page}" in shown.stdout
    html = page.read_text()
    for name in ("plots/confusion.csv", "plots/roc.csv", "plots/gate.csv"):
        assert name in html, name
