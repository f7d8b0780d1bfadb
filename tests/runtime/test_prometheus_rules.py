"""The rules file made from a PrometheusRule: exactly its spec, or one line and exit code 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlopsify_runtime.prometheus_rules import main

MANIFEST = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: demo
spec:
  groups:
    - name: demo-alerts
      rules:
        - alert: Down
          expr: up{job="demo"} == 0
          for: 5m
          labels:
            severity: critical
"""


def test_writes_the_spec_as_a_rules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("rule.yaml").write_text(MANIFEST)
    main(["rule.yaml", "rules.yml"])
    assert Path("rules.yml").read_text() == (
        "# Generated from rule.yaml by `make rules`: edit that file, not this one.\n"
        "groups:\n"
        "- name: demo-alerts\n"
        "  rules:\n"
        "  - alert: Down\n"
        '    expr: up{job="demo"} == 0\n'
        "    for: 5m\n"
        "    labels:\n"
        "      severity: critical\n"
    )


@pytest.mark.parametrize(
    "manifest",
    [
        MANIFEST.replace("kind: PrometheusRule", "kind: ServiceMonitor"),
        MANIFEST.replace("  groups:", "  other:"),
        "- a list\n",
    ],
    ids=["other-kind", "no-groups", "not-a-mapping"],
)
def test_anything_else_is_one_line_and_exit_code_1(tmp_path: Path, manifest: str) -> None:
    (tmp_path / "rule.yaml").write_text(manifest)
    done = subprocess.run(
        [sys.executable, "-m", "mlopsify_runtime.prometheus_rules", "rule.yaml", "rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "prometheus_rules: rule.yaml is not a PrometheusRule with spec.groups: "
        "give the file of deploy/k8s/components/monitoring\n"
    )
    assert not (tmp_path / "rules.yml").exists()


def test_a_missing_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["absent.yaml", "rules.yml"])
    assert str(exited.value) == (
        "prometheus_rules: absent.yaml cannot be read: "
        "[Errno 2] No such file or directory: 'absent.yaml'"
    )
