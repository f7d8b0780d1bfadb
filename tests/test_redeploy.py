"""Deploys can be applied twice: a new image tag changes no field Kubernetes declares immutable.

Each overlay is rendered the way `make deploy` renders it (`make manifests`, which wraps the
overlay to set the tag) for two successive tags; every object of the same kind and name must
keep its immutable fields. No API server runs here, so the immutable fields are listed from
the Kubernetes API reference: a Job's selector and pod template, the selectors of Deployments,
ReplicaSets, StatefulSets and DaemonSets (apps/v1), a Service's clusterIP(s) and, as the issue
asks, its selector, and the data of a ConfigMap or Secret marked immutable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import isolated_home, require_tool, run

from mlopsify import TemplateSource, new_project

ENVIRONMENTS = ("dev", "staging", "prod")
IMMUTABLE: dict[str, tuple[tuple[str, ...], ...]] = {
    "Job": (("spec", "selector"), ("spec", "template"), ("spec", "completionMode")),
    "Deployment": (("spec", "selector"),),
    "ReplicaSet": (("spec", "selector"),),
    "StatefulSet": (("spec", "selector"), ("spec", "serviceName")),
    "DaemonSet": (("spec", "selector"),),
    "Service": (("spec", "selector"), ("spec", "clusterIP"), ("spec", "clusterIPs")),
    "PersistentVolumeClaim": (("spec", "storageClassName"), ("spec", "volumeName")),
}
VARIANTS = {
    "default": {"project_name": "churn-model"},
    "regression-no-monitoring": {
        "project_name": "House_Prices",
        "task_type": "regression",
        "use_monitoring": False,
    },
}


def field(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def immutable_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Every immutable field that differs between two renders, as 'Kind/name: field'."""
    old = {(d["kind"], d["metadata"]["name"]): d for d in before}
    changes = []
    for doc in after:
        key = (doc["kind"], doc["metadata"]["name"])
        if key not in old:
            continue
        paths = list(IMMUTABLE.get(doc["kind"], ()))
        if doc["kind"] in {"ConfigMap", "Secret"} and doc.get("immutable"):
            paths += [("data",), ("binaryData",), ("stringData",)]
        changes += [
            f"{key[0]}/{key[1]}: {'.'.join(path)}"
            for path in paths
            if field(old[key], path) != field(doc, path)
        ]
    return changes


@pytest.fixture(scope="module")
def projects(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("redeploy")
    with isolated_home(base):
        return {
            name: new_project(
                base / name, data=answers, defaults=True, template=TemplateSource.at(template_dir)
            )
            for name, answers in VARIANTS.items()
        }


def manifests(project: Path, env: str, tag: str) -> list[dict[str, Any]]:
    """What `make deploy ENV=env IMAGE_TAG=tag` would apply."""
    path = f"{Path(require_tool('kubectl')).parent}:{os.environ['PATH']}"
    built = run(
        "make",
        "--no-print-directory",
        "manifests",
        f"ENV={env}",
        f"IMAGE_TAG={tag}",
        cwd=project,
        env={"PATH": path},
    )
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_second_deploy_with_a_new_tag_changes_no_immutable_field(
    projects: dict[str, Path], variant: str, env: str
) -> None:
    first = manifests(projects[variant], env, "1a2b3c4")
    second = manifests(projects[variant], env, "5d6e7f8")
    # the tag really changed what is applied, and every object is there both times
    assert yaml.safe_dump_all(first) != yaml.safe_dump_all(second)
    assert "5d6e7f8" in yaml.safe_dump_all(second) and "1a2b3c4" not in yaml.safe_dump_all(second)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in first) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in second
    )
    assert immutable_changes(first, second) == []
    # training is the CronJob's template (mutable), never an applied Job
    kinds = {d["kind"] for d in second}
    assert "CronJob" in kinds and "Job" not in kinds
    assert immutable_changes(first, first) == []


def test_the_check_sees_a_job_that_carries_the_tag(projects: dict[str, Path]) -> None:
    """0.1.0 applied a training Job with the tagged image: the second deploy was refused."""
    first = manifests(projects["default"], "prod", "1a2b3c4")
    second = manifests(projects["default"], "prod", "5d6e7f8")

    def as_job(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cronjob = next(d for d in docs if d["kind"] == "CronJob")
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "churn-model-train"},
            "spec": cronjob["spec"]["jobTemplate"]["spec"],
        }
        return [*docs, job]

    assert immutable_changes(as_job(first), as_job(second)) == [
        "Job/churn-model-train: spec.template"
    ]
    deployment = next(d for d in second if d["kind"] == "Deployment")
    relabelled = yaml.safe_load(yaml.safe_dump(deployment))
    relabelled["spec"]["selector"]["matchLabels"]["version"] = "5d6e7f8"
    assert immutable_changes(first, [relabelled]) == ["Deployment/churn-model: spec.selector"]
