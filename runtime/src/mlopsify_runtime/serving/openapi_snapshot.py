"""The snapshot of the OpenAPI document, docs/openapi.json: the contract, kept in git.

    python -m <package>.serving.openapi_snapshot            writes it (`make openapi`, `make pipeline`)
    python -m <package>.serving.openapi_snapshot --check    exits 1 when it is stale

It describes the defaults of Settings with a bearer token, as production serves it, and
records the feature spec it was built from (`info.x-feature-spec`), so that the tests can
rebuild it with the current code without a trained model.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .app import describe
from .openapi import render
from .settings import Settings
from .spec import FeatureSpec

SNAPSHOT = Path("docs/openapi.json")
MONITORED = True  # the snapshot describes /feedback too: monitoring is on wherever the reference step ran


def snapshot_settings(settings: Settings) -> Settings:
    """The settings the snapshot describes: the defaults, with a bearer token as in production."""
    return replace(settings, api_token="set-in-production")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or --check) the OpenAPI snapshot of the service.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the snapshot differs from the code")
    parser.add_argument("--output", type=Path, default=SNAPSHOT)
    args = parser.parse_args(argv)
    settings = snapshot_settings(Settings())
    if not settings.features_path.is_file():
        print(
            f"{settings.features_path} is missing: run the pipeline (make pipeline) first",
            file=sys.stderr,
        )
        return 1
    text = render(describe(FeatureSpec.from_file(settings.features_path), settings, MONITORED))
    if args.check:
        if not args.output.is_file() or args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is out of date: run `make openapi` and commit it", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
