"""Monitoring of rendered projects, checked by the tools their users run.

For every variant with monitoring: promtool checks the rules and the local Prometheus
configuration and runs the rules' unit tests; every alert has a unit test that fires it and
one that keeps it silent, a severity, a summary, a description and a runbook that exists;
the ServiceMonitor and the PrometheusRule of the kustomize component validate against the
prometheus-operator CRD schemas (vendored in tests/fixtures/crd by
scripts/vendor_crd_schemas.py). With Kubernetes the PrometheusRule is the rules' one source:
monitoring/prometheus/rules.yml is made from its spec, as `make rules` makes it, and git ignores it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    RULES_FILE,
    RenderedVariants,
    listening_port,
    require_tool,
    run,
    wait_for,
    with_made_rules,
)

CRD_SCHEMAS = Path(__file__).parent / "fixtures" / "crd"
ALERTS = {
    "ModelTargetDown",
    "ModelHighErrorRate",
    "ModelLatencySLOBreach",
    "ModelFeatureDrift",
    "ModelLiveQualityBelowGate",
    "ModelNoPredictions",
    "ModelStale",
}
VARIANTS = {
    "classification-k8s": {"task_type": "classification", "use_kubernetes": True},
    "regression-k8s": {"task_type": "regression", "use_kubernetes": True},
    "regression-plain": {
        "task_type": "regression",
        "use_kubernetes": False,
        # an answer of a release before 0.4.0: the directory of one page per alert
        "runbook_base_url": "https://git.example.com/ml/svc/-/blob/main/docs/runbooks",
    },
}
# metrics the service exports (serving and monitoring modules) and the recording rules
SERVICE_METRICS = {
    "up",
    "model_requests_total",
    "model_request_duration_seconds_bucket",
    "model_predictions_total",
    "model_info",
    "model_trained_timestamp_seconds",
    "model_feature_drift",
    "model_live_quality",
    "model_feedback_total",
    "model_alert_threshold",
}


@pytest.fixture(scope="module")
def projects(
    rendered: RenderedVariants, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """One project per variant, from the session's rendered variants; a Kubernetes one is a copy
    with the rules.yml its user makes (`make rules`)."""
    made = tmp_path_factory.mktemp("made-rules")
    return {
        name: with_made_rules(rendered(answers), made / name)
        if answers["use_kubernetes"]
        else rendered(answers)
        for name, answers in VARIANTS.items()
    }


def rules_of(project: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load((project / RULES_FILE).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_promtool_checks_rules_and_config(projects: dict[str, Path], variant: str) -> None:
    promtool = require_tool("promtool")
    prometheus_dir = projects[variant] / "monitoring/prometheus"
    checked = run(promtool, "check", "rules", "rules.yml", cwd=prometheus_dir)
    assert f"SUCCESS: {len(rules_of(projects[variant]))} rules found" in checked.stdout
    config = run(promtool, "check", "config", "prometheus.yml", cwd=prometheus_dir)
    assert "SUCCESS" in config.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_promtool_unit_tests_pass(projects: dict[str, Path], variant: str) -> None:
    promtool = require_tool("promtool")
    tested = run(
        promtool, "test", "rules", "rules_test.yml", cwd=projects[variant] / "monitoring/prometheus"
    )
    assert "SUCCESS" in tested.stdout


def test_a_broken_expectation_fails_the_unit_tests(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    """The unit tests compare labels and annotations: a wrong expected value fails promtool."""
    promtool = require_tool("promtool")
    source = projects["classification-k8s"] / "monitoring/prometheus"
    (tmp_path / "rules.yml").write_text((source / "rules.yml").read_text())
    broken = (
        (source / "rules_test.yml").read_text().replace("severity: critical", "severity: info", 1)
    )
    (tmp_path / "rules_test.yml").write_text(broken)
    failed = run(promtool, "test", "rules", "rules_test.yml", cwd=tmp_path, check=False)
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout + failed.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_alert_is_tested_firing_and_silent(projects: dict[str, Path], variant: str) -> None:
    tests = yaml.safe_load(
        (projects[variant] / "monitoring/prometheus/rules_test.yml").read_text()
    )["tests"]
    firing, silent = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules_of(projects[variant]) if "alert" in rule}
    assert alerts == ALERTS
    assert firing == ALERTS
    assert silent == ALERTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_alert_has_severity_annotations_and_a_runbook(
    projects: dict[str, Path], variant: str
) -> None:
    project = projects[variant]
    page = {"regression-plain": "https://git.example.com/ml/svc/-/blob/main/docs/runbooks.md"}.get(
        variant, "docs/runbooks.md"
    )
    runbooks = (project / "docs/runbooks.md").read_text()
    # GitHub, GitLab and mkdocs all make a heading's anchor of its text in lowercase
    sections = {part.split("\n", 1)[0]: part for part in runbooks.split("\n## ")[1:]}
    for rule in rules_of(project):
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"{page}#{name.lower()}"
        runbook = sections[name]
        assert "\n### What to check\n" in runbook and "\n### What to do\n" in runbook, name
        assert f"[{name}](#{name.lower()})" in runbooks
        # the thresholds come from params.yaml through model_alert_threshold, never a literal
        if name not in {"ModelTargetDown", "ModelNoPredictions"}:
            assert f'alert="{name}"' in rule["expr"], name


@pytest.mark.parametrize("variant", VARIANTS)
def test_rules_select_the_project_job(projects: dict[str, Path], variant: str) -> None:
    for rule in rules_of(projects[variant]):
        for selector in re.findall(r"\b(\w+)\{([^}]*)\}", rule["expr"]):
            metric, labels = selector
            if metric in SERVICE_METRICS:
                assert 'job="demo-project"' in labels, rule


@pytest.mark.parametrize("variant", VARIANTS)
def test_local_prometheus_scrapes_the_service_on_loopback(
    projects: dict[str, Path], variant: str
) -> None:
    config = yaml.safe_load(
        (projects[variant] / "monitoring/prometheus/prometheus.yml").read_text()
    )
    (scrape,) = config["scrape_configs"]
    assert scrape["job_name"] == "demo-project"
    assert scrape["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]
    assert config["rule_files"] == ["rules.yml"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_dashboard_queries_known_metrics(projects: dict[str, Path], variant: str) -> None:
    grafana = projects[variant] / "monitoring/grafana"
    dashboard = json.loads((grafana / "dashboards/model-service.json").read_text())
    recorded = {rule["record"] for rule in rules_of(projects[variant]) if "record" in rule}
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    titles = {panel["title"] for panel in panels}
    for wanted in (
        "Requests per second",
        "Error ratio",
        "Latency of /predict",
        "Predictions per second",
        "Feature drift (PSI)",
        "Live quality",
        "Model in service",
    ):
        assert wanted in titles
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", target["expr"]))
            assert names <= SERVICE_METRICS | recorded, (panel["title"], names)
            assert 'job="$job"' in target["expr"]
    provider = yaml.safe_load((grafana / "provisioning/dashboards/dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://127.0.0.1:9090"


def build_overlay(project: Path, overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of an overlay of the project, as documents."""
    kubectl = require_tool("kubectl")
    built = run(kubectl, "kustomize", f"deploy/k8s/overlays/{overlay}", cwd=project)
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in documents if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("overlay", ["dev", "staging", "prod"])
@pytest.mark.parametrize("variant", ["classification-k8s", "regression-k8s"])
def test_overlays_include_the_monitoring_component_valid_against_the_crds(
    projects: dict[str, Path], variant: str, overlay: str, tmp_path: Path
) -> None:
    checker = require_tool("check-jsonschema")
    project = projects[variant]
    documents = build_overlay(project, overlay)
    service = one(documents, "Service")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        doc = one(documents, kind)
        path = tmp_path / f"{kind}.yaml"
        path.write_text(yaml.safe_dump(doc))
        run(checker, "--schemafile", CRD_SCHEMAS / f"{kind.lower()}_v1.json", path, cwd=tmp_path)
        assert doc["metadata"]["namespace"] == service["metadata"]["namespace"]
    rule = one(documents, "PrometheusRule")
    # the rules.yml that promtool and `make monitor` read is made from what the cluster runs
    assert rule["spec"] == yaml.safe_load((project / RULES_FILE).read_text())
    monitor = one(documents, "ServiceMonitor")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "demo-project"  # the job
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["http"]
    assert "http" in [port["name"] for port in service["spec"]["ports"]]
    # the PrometheusRule's groups are valid rules for promtool too
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(rule["spec"]))
    run(require_tool("promtool"), "check", "rules", "spec.yml", cwd=tmp_path)


def test_the_crd_schemas_refuse_unknown_and_mistyped_fields(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    checker = require_tool("check-jsonschema")
    documents = build_overlay(projects["regression-k8s"], "dev")
    monitor, rule = one(documents, "ServiceMonitor"), one(documents, "PrometheusRule")
    endpoint = monitor["spec"]["endpoints"][0]
    endpoint["intervall"] = endpoint.pop("interval")
    rule["spec"]["groups"][1]["rules"][0]["for"] = "five minutes"
    outputs = []
    for doc in (monitor, rule):
        path = tmp_path / f"bad-{doc['kind']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        schema = CRD_SCHEMAS / f"{doc['kind'].lower()}_v1.json"
        failed = run(checker, "--schemafile", schema, path, cwd=tmp_path, check=False)
        assert failed.returncode == 1, failed.stdout
        outputs.append(failed.stdout)
    assert "'intervall' was unexpected" in outputs[0]
    assert "'five minutes' does not match" in outputs[1]


def test_overlays_have_no_monitoring_without_it(rendered: RenderedVariants) -> None:
    project = rendered({"use_monitoring": False})
    kinds = {doc["kind"] for doc in build_overlay(project, "prod")}
    assert "Deployment" in kinds
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


def test_no_monitoring_files_without_monitoring(rendered: RenderedVariants) -> None:
    project = rendered({"use_monitoring": False})
    files = {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if ".git" not in path.parts
    }
    assert not [
        name for name in files if "monitoring" in name or "runbooks" in name or "reference" in name
    ]
    assert not [name for name in files if name.endswith(("drift.py", "feedback.py"))]
    assert "runbook_base_url" not in (project / ".copier-answers.yml").read_text()


def test_make_rules_runs_promtool(projects: dict[str, Path]) -> None:
    require_tool("promtool")
    done = run("make", "rules", cwd=projects["regression-plain"])
    assert done.stdout.count("SUCCESS") >= 3
    listed = run("make", "help", cwd=projects["regression-plain"]).stdout
    assert "monitor" in listed and "rules" in listed


def test_kubernetes_projects_make_rules_yml_from_the_prometheusrule(
    rendered: RenderedVariants,
) -> None:
    """Not rendered, ignored by git, and made by `make rules` and `make monitor` before they run."""
    project = rendered(VARIANTS["classification-k8s"])
    assert not (project / RULES_FILE).exists()
    assert run("git", "check-ignore", RULES_FILE, cwd=project).stdout == f"{RULES_FILE}\n"
    step = (
        ".venv/bin/python -m mlopsify_runtime.prometheus_rules "
        f"deploy/k8s/components/monitoring/prometheusrule.yaml {RULES_FILE}"
    )
    for target in ("rules", "monitor"):
        planned = run("make", "-n", target, cwd=project).stdout.splitlines()
        assert planned[0] == step, planned
    plain = rendered(VARIANTS["regression-plain"])
    assert run("git", "check-ignore", RULES_FILE, cwd=plain, check=False).returncode == 1
    assert "prometheus_rules" not in run("make", "-n", "rules", cwd=plain).stdout


def test_make_monitor_starts_prometheus_on_loopback_with_the_rules(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    require_tool("prometheus")
    project = projects["classification-k8s"]
    log = (tmp_path / "monitor.log").open("wb")
    process = subprocess.Popen(
        ["make", "monitor", "PROMETHEUS_PORT=0"],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        port = listening_port(process, tmp_path / "monitor.log", timeout=30)

        def rule_groups() -> list[dict[str, Any]]:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/rules", timeout=2
            ) as answer:
                groups: list[dict[str, Any]] = json.loads(answer.read())["data"]["groups"]
            return groups

        groups = wait_for("make monitor to answer", rule_groups, timeout=30)
        loaded = [rule for group in groups for rule in group["rules"]]
        assert len(loaded) == len(rules_of(project))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        log.close()
    assert (project / ".prometheus").is_dir()
    assert ".prometheus/" in (project / ".gitignore").read_text()
