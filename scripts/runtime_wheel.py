"""Build the runtime's wheel (runtime/) the way a template release carries it.

    python scripts/runtime_wheel.py DIR     # writes DIR/mlopsify_runtime-X.Y.Z-py3-none-any.whl

The build is reproducible (hatchling with a fixed SOURCE_DATE_EPOCH): the same sources give
the same bytes, so `make check-template` can tell whether the shipped release carries the
runtime of this tree, and a project's lock pins the wheel by its hash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "runtime"
# Any fixed date: the wheel's file times, not a claim about when it was built.
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01
VENDOR_DIR = "vendor"


def runtime_version() -> str:
    namespace: dict[str, str] = {}
    exec((RUNTIME / "src/mlopsify_runtime/_version.py").read_text(encoding="utf-8"), namespace)
    return namespace["__version__"]


def wheel_name(version: str | None = None) -> str:
    return f"mlopsify_runtime-{version or runtime_version()}-py3-none-any.whl"


def build_runtime_wheel(target: Path) -> Path:
    """Build the wheel into ``target`` (created); returns its path."""
    target.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    with tempfile.TemporaryDirectory(prefix="mlopsify-runtime-") as scratch:
        # Build from a clean copy: caches and editable-install leftovers never reach the wheel.
        source = Path(scratch) / "runtime"
        shutil.copytree(
            RUNTIME, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
        )
        # uv writes a `.gitignore` of `*` beside what it builds: only the wheel is taken.
        built = Path(scratch) / "dist"
        subprocess.run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", str(built), str(source)],
            check=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
        if not (built / wheel_name()).is_file():
            raise SystemExit(f"the runtime build did not write {wheel_name()}")
        return Path(shutil.copy2(built / wheel_name(), target / wheel_name()))


if __name__ == "__main__":
    print(build_runtime_wheel(Path(sys.argv[1])))
