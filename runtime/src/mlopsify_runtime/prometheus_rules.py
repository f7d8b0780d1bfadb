"""The Prometheus rules file of a Kubernetes PrometheusRule: its ``spec``, for promtool and `make monitor`.

A project with Kubernetes keeps its recording and alert rules in one place, the PrometheusRule the
cluster runs (deploy/k8s/components/monitoring/prometheusrule.yaml); `make rules` and `make monitor`
generate monitoring/prometheus/rules.yml from it with this module, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

HEADER = "# Generated from {source} by `make rules`: edit that file, not this one.\n"


class RulesError(ValueError):
    """The input is not a PrometheusRule whose spec has rule groups."""


def rules_of(manifest: Any, source: str) -> dict[str, Any]:
    """The ``spec`` of the PrometheusRule ``manifest`` (read from ``source``), checked to hold ``groups``."""
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("kind") != "PrometheusRule"
        or not isinstance(spec, dict)
        or not isinstance(spec.get("groups"), list)
    ):
        raise RulesError(
            f"{source} is not a PrometheusRule with spec.groups: give the file of deploy/k8s/components/monitoring"
        )
    return spec


def write_rules(source: Path, target: Path) -> None:
    """Write the rules of the PrometheusRule in ``source`` to ``target`` as a Prometheus rules file."""
    try:
        manifest = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RulesError(f"{source} cannot be read: {str(error).splitlines()[0]}") from None
    spec = rules_of(manifest, str(source))
    # Wide lines: PromQL stays one line per expression, as in the PrometheusRule.
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000)
    target.write_text(HEADER.format(source=source) + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the PrometheusRule manifest")
    parser.add_argument("target", type=Path, help="the rules file to write")
    args = parser.parse_args(argv)
    try:
        write_rules(args.source, args.target)
    except RulesError as error:
        raise SystemExit(f"prometheus_rules: {error}") from None


if __name__ == "__main__":
    main()
