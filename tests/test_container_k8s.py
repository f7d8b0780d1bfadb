"""The container and Kubernetes parts of rendered projects, checked by the real tools.

For each variant: hadolint and checkov pass the Dockerfile; every kustomize overlay builds
with `kubectl kustomize`, validates with `kubernetes-validate --strict` for Kubernetes 1.29
to 1.33 and passes checkov's Kubernetes checks, with zero failures. No API server runs here:
`kubectl apply` cannot be exercised (the Makefile targets that call it are checked for what
they would run); tests/test_image_build.py builds and runs the image for real with buildah.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, RenderedVariants, makefile_text, require_tool, run

from mlopsify import InvalidAnswerError, TemplateSource, new_project

ENVIRONMENTS = ("dev", "staging", "prod")
K8S_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"project_name": "churn-model"},
    "py310-regression": {
        "project_name": "house-prices",
        "python_version": "3.10",
        "task_type": "regression",
        "container_registry": "ghcr.example.org/team/ml",
        "k8s_namespace": "pricing",
        "use_tracking_server": True,
        "dvc_remote_kind": "s3",  # the tracking server keeps artifacts in its bucket
    },
    "py313-no-k8s": {"python_version": "3.13", "use_kubernetes": False},
}


@pytest.fixture(scope="module")
def projects(rendered: RenderedVariants) -> dict[str, Path]:
    """Every variant, from the session's rendered variants (read only)."""
    return {name: rendered(answers) for name, answers in VARIANTS.items()}


def answers_of(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def kustomizations(project: Path) -> dict[str, str]:
    """What the checkers read: every environment's overlay, and the shared MLflow tracking
    server when the project has one (use_tracking_server)."""
    found = {env: f"deploy/k8s/overlays/{env}" for env in ENVIRONMENTS}
    if answers_of(project).get("use_tracking_server"):
        found["tracking"] = "deploy/k8s/tracking"
    return found


def build_overlay(project: Path, env: str) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    built = run(kubectl, "kustomize", f"deploy/k8s/overlays/{env}", cwd=project).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


def checkov(target: Path, *frameworks: str) -> dict[str, dict[str, int]]:
    """checkov's summary per framework for the files under ``target`` (offline, JSON)."""
    completed = run(
        require_tool("checkov"),
        "-d",
        target,
        "--framework",
        *frameworks,
        "-o",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
        cwd=target,
        check=False,
    )
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = {report["check_type"]: report["summary"] for report in reports}
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert completed.returncode == 0 and not failed, (
        f"checkov failed: {failed}\n{completed.stderr[-3000:]}"
    )
    return summary


# ------------------------------------------------------------------ Dockerfile


def dockerfiles(project: Path) -> list[str]:
    """The project's Dockerfiles: the service's, and the tracking server's when it has one."""
    tracking = (
        ["deploy/tracking/Dockerfile"] if answers_of(project).get("use_tracking_server") else []
    )
    return ["Dockerfile", *tracking]


@pytest.mark.parametrize("variant", VARIANTS)
def test_dockerfile_passes_hadolint(projects: dict[str, Path], variant: str) -> None:
    project = projects[variant]
    for dockerfile in dockerfiles(project):
        run(require_tool("hadolint"), "--failure-threshold", "warning", dockerfile, cwd=project)


@pytest.mark.parametrize("variant", VARIANTS)
def test_dockerfile_is_multi_stage_non_root_and_pinned(
    projects: dict[str, Path], variant: str
) -> None:
    project = projects[variant]
    answers = answers_of(project)
    text = (project / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)
    assert [stage for _, stage in bases] == ["serve-deps", "train", "serve"], (
        "serve must stay the last stage"
    )
    for image, _ in bases:
        assert re.fullmatch(
            rf"python:{re.escape(answers['python_version'])}\.\d+-slim-bookworm", image
        ), image
    final = text.split(" AS serve\n", 1)[1]
    assert re.search(r"^USER 10001:10001$", final, re.M), (
        "the serving stage runs as a numeric non-root user"
    )
    assert "HEALTHCHECK --interval" in final and "/health/ready" in final
    assert "COPY --from=serve-deps /opt/venv /opt/venv" in final
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final), (
        "no build tools in the final stage"
    )
    assert 'CMD ["python", "-m", "mlopsify_runtime.serving"]' in final
    assert (project / ".dockerignore").read_text().startswith("# The build context holds only")


def extra_names(text: str, extra: str) -> set[str]:
    """The distribution names of one extra of a pyproject.toml (a regex: tomllib is 3.11+)."""
    found = re.search(rf"^{re.escape(extra)} = \[(.*?)\]\n", text, re.M | re.S)
    assert found, f"no {extra} extra"
    requirements = [
        line.strip().strip(",").strip('"')
        for line in found[1].replace(", ", "\n").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return {
        re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_serving_image_installs_only_a_serving_extra(
    projects: dict[str, Path], variant: str
) -> None:
    """The serving stage installs `serve` (a compiled model) or `serve-sklearn`: no training stack."""
    project = projects[variant]
    text = (project / "pyproject.toml").read_text()
    runtime = (ROOT / "runtime" / "pyproject.toml").read_text()
    assert '"mlopsify-runtime[serve]==' in text and '"mlopsify-runtime[serve-sklearn]==' in text
    assert extra_names(text, "serve") == {"mlopsify-runtime"}
    assert extra_names(text, "serve-sklearn") == {"mlopsify-runtime", "scikit-learn"}
    compiled = extra_names(runtime, "serve")
    assert {"fastapi", "uvicorn", "prometheus-client", "onnxruntime", "numpy"} <= compiled
    # The compiled image runs the ONNX model: nothing of scikit-learn's stack, nor of training's.
    training = {"mlflow", "mlflow-skinny", "dvc", "pandas"}
    assert not compiled & {"scikit-learn", "scipy", "skops", *training}
    assert extra_names(runtime, "serve-sklearn") == {"mlopsify-runtime", "scikit-learn", "skops"}
    dockerfile = (project / "Dockerfile").read_text()
    # the chosen extra at the versions of uv.lock, hashes checked (tests/test_supply_chain_lock.py)
    assert "ARG SERVE_LOCK=requirements-serve.lock.txt" in dockerfile  # make image passes its own
    assert (
        'pip install --no-cache-dir --require-hashes --no-deps --find-links vendor -r "$SERVE_LOCK"'
        in dockerfile
    )
    assert "pip install --no-cache-dir --no-deps ." in dockerfile


@pytest.mark.checkers
@pytest.mark.parametrize("variant", VARIANTS)
def test_dockerfile_passes_checkov(projects: dict[str, Path], variant: str, tmp_path: Path) -> None:
    found = dockerfiles(projects[variant])
    for number, dockerfile in enumerate(found):
        (tmp_path / str(number)).mkdir()
        shutil.copy2(projects[variant] / dockerfile, tmp_path / str(number) / "Dockerfile")
    summary = checkov(tmp_path, "dockerfile")
    assert summary["dockerfile"]["failed"] == 0
    assert summary["dockerfile"]["passed"] > 50 * len(found)


# ------------------------------------------------------------------ Kubernetes


def kubernetes_variants() -> list[str]:
    return [name for name, answers in VARIANTS.items() if answers.get("use_kubernetes", True)]


def test_no_deploy_directory_without_kubernetes(projects: dict[str, Path]) -> None:
    project = projects["py313-no-k8s"]
    assert not (project / "deploy").exists()
    makefile = makefile_text(project)
    assert "kubectl" not in makefile and "\nimage: " in makefile


@pytest.mark.parametrize("variant", kubernetes_variants())
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overlay_builds_with_its_namespace_tag_replicas_and_resources(
    projects: dict[str, Path], variant: str, env: str
) -> None:
    project = projects[variant]
    answers = answers_of(project)
    docs = build_overlay(project, env)
    kinds = sorted(f"{doc['kind']}/{doc['metadata']['name']}" for doc in docs)
    name = answers["image_name"]  # the Kubernetes name (k8s_name), as the image's
    namespace = answers["k8s_namespace"] + ("" if env == "prod" else f"-{env}")
    assert [kind.split("/")[0] for kind in kinds] == sorted(
        [
            "ConfigMap",
            "CronJob",
            "CronJob",  # retraining and batch inference
            "Deployment",
            "HorizontalPodAutoscaler",
            "Namespace",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",  # deny but DNS, serving, MLflow's clients, batch scoring
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            # the monitoring component (tests/test_monitoring_rules.py checks it)
            *(["PrometheusRule", "ServiceMonitor"] if answers["use_monitoring"] else []),
        ]
    )
    by_kind = {doc["kind"]: doc for doc in docs}
    assert by_kind["Namespace"]["metadata"]["name"] == namespace
    assert all(
        doc["metadata"].get("namespace") == namespace for doc in docs if doc["kind"] != "Namespace"
    )
    tag = {"dev": "dev", "staging": "staging", "prod": "0.1.0"}[env]
    image = f"{answers['container_registry']}/{answers['image_name']}"
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"{image}:{tag}"
    job_container = by_kind["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job_container["containers"][0]["image"] == f"{image}-train:{tag}"
    hpa = by_kind["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == {
        "dev": (1, 2),
        "staging": (2, 3),
        "prod": (3, 10),
    }[env]
    assert "replicas" not in by_kind["Deployment"]["spec"], "the HPA owns the replica count"
    # the overlay's inline patches: the serving container's resources, prod's spread over nodes
    assert (
        container["resources"]
        == {
            "dev": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"},
            },
            "staging": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
            "prod": {
                "requests": {"cpu": "500m", "memory": "512Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
        }[env]
    )
    spread = {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/component": "serving",
            }
        },
    }
    assert pod.get("topologySpreadConstraints") == ([spread] if env == "prod" else None)
    # security: what the issue asks of the Deployment
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert (
        security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    )
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {
        probe: container[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe")
    } == {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
    # the Secret is referenced by name, never carried; prod refuses to start without it
    token = next(volume for volume in pod["volumes"] if volume["name"] == "api-token")["secret"]
    assert token == {
        "secretName": f"{name}-api-token",
        "optional": env != "prod",
        "defaultMode": 0o440,
    }
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    assert {"configMapRef": {"name": by_kind["ConfigMap"]["metadata"]["name"]}} in container[
        "envFrom"
    ]
    # dev suspends both schedules (retraining and batch inference); the others run them
    cronjobs = {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "CronJob"}
    assert set(cronjobs) == {f"{name}-retrain", f"{name}-batch"}
    for spec in cronjobs.values():
        assert spec.get("suspend", False) is (env == "dev")


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy's podSelector selects a pod with ``labels`` (the policies use
    matchLabels and `In` expressions only)."""
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), expressions
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_workload_reaches_dns_and_only_what_it_needs(
    projects: dict[str, Path], env: str
) -> None:
    """The union of the rendered policies that select each workload's pods: the service takes its
    port and reaches DNS only; training and batch scoring take nothing and reach MLflow; batch
    scoring also reaches its bucket over HTTPS, but not the cloud's metadata service."""
    docs = build_overlay(projects["default"], env)
    policies = [doc["spec"] for doc in docs if doc["kind"] == "NetworkPolicy"]
    workloads = {
        pod_labels(doc)["app.kubernetes.io/component"]: pod_labels(doc)
        for doc in docs
        if doc["kind"] in ("Deployment", "CronJob")
    }

    def rules(labels: dict[str, str], direction: str) -> list[str]:
        selecting = [policy for policy in policies if selects(policy["podSelector"], labels)]
        # every pod is isolated both ways: what no rule allows is denied
        assert {"Ingress", "Egress"} <= {t for p in selecting for t in p["policyTypes"]}
        found = [rule for policy in selecting for rule in policy.get(direction, [])]
        return sorted(json.dumps(rule, sort_keys=True) for rule in found)

    reach = {
        component: {direction: rules(labels, direction) for direction in ("ingress", "egress")}
        for component, labels in workloads.items()
    }
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    mlflow = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mlflow"}}}],
        "ports": [{"port": 5000, "protocol": "TCP"}],
    }
    bucket = {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }
    service_port = {
        "from": [
            {"podSelector": {}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        ],
        "ports": [{"port": "http", "protocol": "TCP"}],
    }

    def expected(ingress: list[Any], egress: list[Any]) -> dict[str, list[str]]:
        return {
            "ingress": sorted(json.dumps(rule, sort_keys=True) for rule in ingress),
            "egress": sorted(json.dumps(rule, sort_keys=True) for rule in egress),
        }

    assert reach == {
        "serving": expected([service_port], [dns]),
        "training": expected([], [dns, mlflow]),
        "batch-inference": expected([], [dns, mlflow, bucket]),
    }


@pytest.mark.checkers
@pytest.mark.parametrize("variant", kubernetes_variants())
def test_overlays_validate_strictly_for_kubernetes_1_29_to_1_33(
    projects: dict[str, Path], variant: str, tmp_path: Path
) -> None:
    validator = require_tool("kubernetes-validate")
    project = projects[variant]
    for name, kustomization in kustomizations(project).items():
        built = tmp_path / f"{name}.yaml"
        built.write_text(
            run(require_tool("kubectl"), "kustomize", kustomization, cwd=project).stdout
        )
        for version in K8S_VERSIONS:
            result = run(validator, "-k", version, "--strict", built, cwd=tmp_path)
            assert "passed for resource deployment/" in result.stdout + result.stderr


@pytest.mark.checkers
@pytest.mark.parametrize("variant", kubernetes_variants())
def test_overlays_pass_checkov_with_reasoned_skips_only(
    projects: dict[str, Path], variant: str, tmp_path: Path
) -> None:
    project = projects[variant]
    for name, kustomization in kustomizations(project).items():
        (tmp_path / f"{name}.yaml").write_text(
            run(require_tool("kubectl"), "kustomize", kustomization, cwd=project).stdout
        )
    summary = checkov(tmp_path, "kubernetes")
    assert summary["kubernetes"]["failed"] == 0
    assert summary["kubernetes"]["passed"] > 500
    # every skip names a check and gives its reason inline
    skips = re.findall(
        r"checkov\.io/skip\d+: (.*)", "\n".join(p.read_text() for p in tmp_path.glob("*.yaml"))
    )
    assert skips and all(re.fullmatch(r"CKV_K8S_\d+=\S.{20,}", skip) for skip in skips), skips
    assert summary["kubernetes"]["skipped"] == len(skips)


@pytest.mark.checkers
def test_checkov_catches_an_insecure_deployment(projects: dict[str, Path], tmp_path: Path) -> None:
    """The check is real: a Deployment that writes its root filesystem and escalates fails it."""
    docs = build_overlay(projects["default"], "prod")
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    security = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security.update(readOnlyRootFilesystem=False, allowPrivilegeEscalation=True)
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    completed = run(
        require_tool("checkov"),
        "-d",
        tmp_path,
        "--framework",
        "kubernetes",
        "-o",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
        cwd=tmp_path,
        check=False,
    )
    failed = {
        check["check_id"] for check in json.loads(completed.stdout)["results"]["failed_checks"]
    }
    assert {"CKV_K8S_20", "CKV_K8S_22"} <= failed


def test_the_tracking_server_is_there_only_when_asked_for(projects: dict[str, Path]) -> None:
    """use_tracking_server (default no): its component, kustomization, image and make target."""
    parts = (
        "deploy/k8s/components/tracking",
        "deploy/k8s/tracking",
        "deploy/tracking/Dockerfile",
    )
    without = projects["default"]
    assert answers_of(without)["use_tracking_server"] is False
    assert [part for part in parts if (without / part).exists()] == []
    makefile = makefile_text(without)
    assert "tracking-image" not in makefile and "deploy/tracking" not in makefile
    operations = (without / "docs" / "operations.md").read_text()
    assert "`mlopsify add tracking_server`" in operations
    assert "kubectl apply -k deploy/k8s/tracking" not in operations
    with_server = projects["py310-regression"]
    assert all((with_server / part).exists() for part in parts)
    registry = answers_of(with_server)["container_registry"]
    dry = run("make", "--dry-run", "tracking-image", cwd=with_server).stdout
    assert f"--file deploy/tracking/Dockerfile --tag {registry}/house-prices-mlflow:0.1.0 ." in dry
    assert f"docker push {registry}/house-prices-mlflow:0.1.0" in dry
    assert (
        "kubectl apply -k deploy/k8s/tracking" in (with_server / "docs/operations.md").read_text()
    )


def test_the_tracking_server_needs_kubernetes(template_dir: Path, tmp_path: Path) -> None:
    message = (
        "use_tracking_server needs use_kubernetes: the tracking server runs in the cluster;"
        " add Kubernetes first (mlopsify add kubernetes)"
    )
    with pytest.raises(InvalidAnswerError, match=re.escape(message)):
        new_project(
            tmp_path / "p",
            data={"use_kubernetes": False, "use_tracking_server": True},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )


def test_make_manifests_sets_the_image_tag_and_refuses_unknown_environments(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    # `make manifests` writes build/: a copy keeps the shared project as it was rendered.
    project = tmp_path / "project"
    shutil.copytree(projects["py310-regression"], project, symlinks=True)
    answers = answers_of(project)
    env = {"PATH": f"{Path(require_tool('kubectl')).parent}:{os.environ['PATH']}"}
    built = run(
        "make",
        "--no-print-directory",
        "manifests",
        "ENV=staging",
        "IMAGE_TAG=abc1234",
        cwd=project,
        env=env,
    )
    images = set(re.findall(r"image: (\S+)", built.stdout))
    registry = answers["container_registry"]
    assert images == {f"{registry}/house-prices:abc1234", f"{registry}/house-prices-train:abc1234"}
    assert "namespace: pricing-staging" in built.stdout
    for bad in ("ENV=qa", "ENV="):
        refused = run(
            "make", "--no-print-directory", "deploy", bad, cwd=project, env=env, check=False
        )
        assert refused.returncode != 0
        assert (
            "ENV must be one of: dev staging prod (e.g. make deploy ENV=staging)" in refused.stderr
        )
    kubeconfig = project / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    dry = run(
        "make",
        "--dry-run",
        "deploy",
        "ENV=prod",
        "IMAGE_TAG=v1",
        cwd=project,
        env={**env, "KUBECONFIG": str(kubeconfig)},
    )
    assert "kubectl apply -k build/deploy/prod" in dry.stdout
    assert "kubectl -n pricing rollout status deployment/house-prices --timeout=10m" in dry.stdout
    image = run("make", "--dry-run", "image", "push", "IMAGE_TAG=v1", cwd=project).stdout
    assert re.search(
        rf"docker build +--target train --tag {re.escape(registry)}/house-prices-train:v1 \.", image
    )
    assert re.search(
        rf"docker build +--build-arg GIT_COMMIT=\w+ --build-arg SERVE_LOCK=\S+ --build-arg"
        rf" MODEL_RUNTIME=\S* --tag {re.escape(registry)}/house-prices:v1 \.",
        image,
    )
    assert f"docker push {registry}/house-prices:v1" in image


@pytest.mark.parametrize("reserved", ["default", "kube-system"])
def test_a_reserved_namespace_is_refused(template_dir: Path, tmp_path: Path, reserved: str) -> None:
    message = f"k8s_namespace '{reserved}' is reserved by Kubernetes: give the service a namespace of its own"
    with pytest.raises(InvalidAnswerError, match=re.escape(message)):
        new_project(
            tmp_path / "p",
            data={"k8s_namespace": reserved},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )


def admits(peer: dict[str, Any], namespace: str, labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy peer's namespaceSelector selects ``namespace`` (Kubernetes
    labels every namespace with kubernetes.io/metadata.name). A peer without one selects the
    policy's own namespace only: here, `mlflow`."""
    labels = {**labels, "kubernetes.io/metadata.name": namespace}
    selector = peer.get("namespaceSelector")
    if selector is None:
        return namespace == "mlflow"
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), expressions  # all the policies use
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )


def test_the_tracking_server_admits_the_projects_environments_and_ci_runners_only(
    projects: dict[str, Path],
) -> None:
    """The rendered NetworkPolicies (kubectl kustomize), evaluated for namespaces that must and
    must not reach the server; the database admits the server's pods only."""
    project = projects["py310-regression"]
    kubectl = require_tool("kubectl")
    built = run(kubectl, "kustomize", "deploy/k8s/tracking", cwd=project).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"mlflow-default-deny", "mlflow", "mlflow-postgres"}
    environments = {
        doc["metadata"]["name"]
        for env in ENVIRONMENTS
        for doc in build_overlay(project, env)
        if doc["kind"] == "Namespace"
    }
    assert environments == {"pricing-dev", "pricing-staging", "pricing"}
    (server_rule,) = policies["mlflow"]["ingress"]
    assert server_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    ci_runner = {"mlflow-access": "ci-runner"}
    namespaces: dict[str, tuple[dict[str, str], bool]] = {
        **{name: ({}, True) for name in environments},
        "gitlab-runner": (ci_runner, True),  # labelled by the team (docs/security.md)
        "actions-runner-system": ({}, False),  # a runner namespace nobody labelled
        "default": ({}, False),
        "other-team": ({"mlflow-access": "yes"}, False),
        "kube-system": ({}, False),
    }
    admitted = {
        name: any(admits(peer, name, labels) for peer in server_rule["from"])
        for name, (labels, _) in namespaces.items()
    }
    assert admitted == {name: expected for name, (_, expected) in namespaces.items()}
    # the database: the server's pods in its own namespace, no namespace at all from outside
    (database_rule,) = policies["mlflow-postgres"]["ingress"]
    assert database_rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}
    ]
    assert not any(admits(peer, name, {}) for peer in database_rule["from"] for name in namespaces)
    assert policies["mlflow-default-deny"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }


def test_the_tracking_server_runs_the_basic_auth_app_and_workloads_use_their_identity(
    projects: dict[str, Path],
) -> None:
    project = projects["py310-regression"]
    kubectl = require_tool("kubectl")
    built = run(kubectl, "kustomize", "deploy/k8s/tracking", cwd=project).stdout
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(built) if d}
    server = docs["Deployment/mlflow"]["spec"]["template"]["spec"]["containers"][0]
    assert "--app-name=basic-auth" in server["args"]
    secrets = {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in server["env"]
        if "valueFrom" in e
    }
    assert secrets == {
        "PGPASSWORD": ("mlflow-postgres", "password"),
        "MLFLOW_AUTH_ADMIN_USERNAME": ("mlflow-auth", "admin-username"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ("mlflow-auth", "admin-password"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": ("mlflow-auth", "flask-secret-key"),
    }
    ini = docs["ConfigMap/mlflow-auth"]["data"]["basic_auth.ini"]
    assert "\ndefault_permission = NO_PERMISSIONS\n" in ini
    assert "database_uri = postgresql+psycopg2://mlflow@mlflow-postgres:5432/mlflow\n" in ini
    name = answers_of(project)["image_name"]
    for env in ENVIRONMENTS:
        overlay = build_overlay(project, env)
        config = next(d for d in overlay if d["kind"] == "ConfigMap")["data"]
        assert config["REQUIRE_MODEL_SIGNATURE"] == ("false" if env == "dev" else "true"), env
        identities = {}
        for doc in overlay:
            if doc["kind"] in ("Deployment", "CronJob"):
                pod = (
                    doc["spec"]["template"]["spec"]
                    if doc["kind"] == "Deployment"
                    else doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                )
                refs = {
                    e["name"]: e["valueFrom"]["secretKeyRef"]
                    for e in pod["containers"][0]["env"]
                    if e["name"].startswith("MLFLOW_TRACKING_")
                }
                if refs:
                    assert {ref["key"] for ref in refs.values()} == {"username", "password"}
                    (secret,) = {ref["name"] for ref in refs.values()}
                    identities[doc["metadata"]["name"]] = secret
                if doc["metadata"]["name"] == f"{name}-retrain":  # signs what it trains
                    (key,) = [
                        e for e in pod["containers"][0]["env"] if e["name"] == "MODEL_SIGNING_KEY"
                    ]
                    assert key["valueFrom"]["secretKeyRef"] == {
                        "name": f"{name}-model-key",
                        "key": "pem",
                        "optional": True,
                    }
        # the service reaches no registry (its NetworkPolicy: DNS only): no credential for one
        assert identities == {
            f"{name}-batch": f"{name}-mlflow-reader",
            f"{name}-retrain": f"{name}-mlflow-pipeline",
        }
