"""Every name a rendered overlay gives Kubernetes passes Kubernetes' own validation rules.

Project names with capitals, underscores, dots, a leading digit (taken from the directory
name, as `mlopsify new DIR --defaults` does) and more than 63 characters all render, pass the
render matrix's checks, and become names the API server accepts. The rules are those of
k8s.io/apimachinery/pkg/util/validation (IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label,
IsQualifiedName, IsValidLabelValue), with the per-kind choices of the API server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import RenderedVariants, makefile_text, require_tool, run
from test_render_matrix import check_project

# k8s.io/apimachinery/pkg/util/validation/validation.go
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(rf"{DNS1123_LABEL.pattern}(\.{DNS1123_LABEL.pattern})*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# The distribution reference grammar of an image path component (docker/distribution).
IMAGE_COMPONENT = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*")
LONG = "Very_Long.Project-Name" + "-x" * 30  # 82 characters
# directory name -> answers (no project_name: it comes from the directory, as with `new`)
NAMES: dict[str, dict[str, Any]] = {
    "ML-Service": {},
    "credit_risk": {},
    "A_B": {"ci_provider": "github"},
    "model.v2": {"ci_provider": "jenkins"},
    "2024-churn": {},
    "long": {"project_name": LONG},
}


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and DNS1123_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and DNS1123_SUBDOMAIN.fullmatch(value) is not None


def is_dns1035_label(value: str) -> bool:
    return len(value) <= 63 and DNS1035_LABEL.fullmatch(value) is not None


def is_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return (not prefix or is_dns1123_subdomain(prefix)) and (
        len(name) <= 63 and QUALIFIED_NAME.fullmatch(name) is not None
    )


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and LABEL_VALUE.fullmatch(value) is not None


def name_errors(doc: dict[str, Any]) -> list[str]:
    """What the API server would refuse in the names of one object."""
    kind, meta = doc["kind"], doc["metadata"]
    name = meta["name"]
    errors = []
    rule = {"Namespace": is_dns1123_label, "Service": is_dns1035_label}.get(
        kind, is_dns1123_subdomain
    )
    if not rule(name):
        errors.append(f"{kind} name {name!r}")
    if kind == "CronJob" and len(name) > 52:  # the controller appends 11 characters
        errors.append(f"CronJob name {name!r} is longer than 52")
    if "namespace" in meta and not is_dns1123_label(meta["namespace"]):
        errors.append(f"namespace {meta['namespace']!r}")
    for labels in label_maps(doc):
        errors += [f"label key {k!r}" for k in labels if not is_label_key(k)]
        errors += [f"label {k}={v!r}" for k, v in labels.items() if not is_label_value(str(v))]
    return errors


def label_maps(node: Any) -> Iterator[dict[str, Any]]:
    """Every labels, matchLabels and Service selector map inside an object."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"labels", "matchLabels"} and isinstance(value, dict):
                yield value
            elif key == "selector" and isinstance(value, dict) and "matchLabels" not in value:
                yield value  # a Service's selector is a plain label map
            yield from label_maps(value)
    elif isinstance(node, list):
        for item in node:
            yield from label_maps(item)


@pytest.fixture(scope="module")
def projects(rendered: RenderedVariants) -> dict[str, Path]:
    # with the tracking server (use_tracking_server), whose names come from the project's too
    return {
        directory: rendered({"use_tracking_server": True, **answers}, name=directory)
        for directory, answers in NAMES.items()
    }


def test_the_rules_accept_and_refuse_what_kubernetes_does() -> None:
    assert is_dns1123_label("ml-service") and is_dns1123_label("2024-churn")
    assert not any(
        map(is_dns1123_label, ["ML-Service", "credit_risk", "a.b", "-a", "a-", "a" * 64])
    )
    assert is_dns1123_subdomain("a.b-c") and not is_dns1123_subdomain("a..b")
    assert is_dns1035_label("a-1") and not is_dns1035_label("1-a")
    assert is_label_key("app.kubernetes.io/name") and not is_label_key("a_/b")
    assert is_label_value("") and is_label_value("A_b.c") and not is_label_value("a_")
    assert name_errors({"kind": "Service", "metadata": {"name": "A_B", "labels": {"x": "y-"}}}) == [
        "Service name 'A_B'",
        "label x='y-'",
    ]


@pytest.mark.parametrize("directory", NAMES)
def test_project_name_renders_completely(projects: dict[str, Path], directory: str) -> None:
    answers = check_project(projects[directory])
    expected = NAMES[directory].get("project_name", directory)
    assert answers["project_name"] == expected, "the directory name is the default project name"
    k8s_name = answers["k8s_namespace"]  # the default namespace is the Kubernetes name
    assert is_dns1035_label(k8s_name) and len(k8s_name) <= 40
    assert answers["image_name"] == k8s_name
    assert answers["package_name"].isidentifier()


def test_names_are_made_the_documented_way(projects: dict[str, Path]) -> None:
    namespaces = {d: check_project(p)["k8s_namespace"] for d, p in projects.items()}
    assert namespaces == {
        "ML-Service": "ml-service",
        "credit_risk": "credit-risk",
        "A_B": "a-b",
        "model.v2": "model-v2",
        "2024-churn": "ml-2024-churn",
        # cut at 31 characters, then 8 hex digits of the SHA-256 of the whole label, so two
        # long names that share a beginning stay apart (tests/test_names.py)
        "long": "very-long-project-name-x-x-x-x-a4957b09",
    }
    full = "very-long-project-name" + "-x" * 30
    assert hashlib.sha256(full.encode()).hexdigest().startswith("a4957b09")


@pytest.mark.parametrize("directory", NAMES)
def test_every_overlay_names_only_what_kubernetes_accepts(
    projects: dict[str, Path], directory: str
) -> None:
    kubectl = require_tool("kubectl")
    project = projects[directory]
    answers = check_project(project)
    errors = []
    # every environment's overlay and the shared tracking server (its image is named after the project)
    for env in ("dev", "staging", "prod", "tracking"):
        path = "deploy/k8s/tracking" if env == "tracking" else f"deploy/k8s/overlays/{env}"
        built = run(kubectl, "kustomize", path, cwd=project).stdout
        docs = [doc for doc in yaml.safe_load_all(built) if doc]
        assert docs
        errors += [f"{env}: {error}" for doc in docs for error in name_errors(doc)]
        for doc in docs:
            for image in re.findall(r"image: (\S+)", yaml.safe_dump(doc)):
                path = image.rsplit(":", 1)[0].split("/", 1)[1]
                assert all(IMAGE_COMPONENT.fullmatch(c) for c in path.split("/")), image
    assert not errors, errors
    # a Job made by `make retrain` from the CronJob: its name is also its job-name label
    job = f"{answers['k8s_namespace']}-train-{9_999_999_999}"
    assert is_dns1123_label(job), job
    makefile = makefile_text(project)
    assert f"{answers['k8s_namespace']}-train-$$(date -u +%s)" in makefile
