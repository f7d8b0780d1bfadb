"""The serving image's environment made lean at build time: ``python -m mlopsify_runtime.serving.slim``.

The image build's step (Dockerfile, serve-deps stage), after the locked install, in the
environment it slims:

- what a serving process never uses goes: pip and setuptools, tests, type stubs, C headers,
  static libraries, onnxruntime's C/C++ library and offline tools (Python loads its own module,
  which needs neither), NumPy's test-only extension modules, and NumPy's build tools (distutils,
  f2py) unless SciPy is there (it imports f2py);
- the shared objects' symbols are stripped with binutils' ``strip`` (installed in that stage
  only), but not those of the libraries vendored in ``*.libs/``: patchelf rewrote them, and a
  stripped OpenBLAS no longer loads;
- then ``python -m mlopsify_runtime.serving --precompile`` writes the byte-code of what start-up
  imports, which also proves that it still imports. In a process of its own: this one imports
  nothing but the standard library, so that no shared object it strips is loaded (stripping a
  loaded one crashed the build).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# Relative to site-packages.
NEVER_SERVED = (
    "onnxruntime/capi/libonnxruntime.so.*",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "numpy/_core/_simd.*.so",
    "numpy/_core/_*_tests.*.so",
)
BUILD_TOOLS = ("numpy/distutils", "numpy/f2py")  # SciPy imports f2py: kept beside it
NEVER_SERVED_DIRECTORIES = frozenset({"tests", "__pycache__"})
NEVER_SERVED_SUFFIXES = frozenset({".pyi", ".h", ".a", ".pxd"})


def _remove(path: Path) -> int:
    """Delete a file or a directory tree; the bytes it held (0 when it was gone already)."""
    if path.is_symlink() or path.is_file():
        size = path.lstat().st_size
        path.unlink()
        return size
    if not path.is_dir():
        return 0
    size = sum(entry.lstat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())
    shutil.rmtree(path)
    return size


def _walk(prefix: Path) -> tuple[list[Path], list[Path]]:
    """Every directory and every regular file under ``prefix`` (symbolic links not followed)."""
    directories: list[Path] = []
    files: list[Path] = []
    for root, names, file_names in os.walk(prefix):
        directories += [Path(root, name) for name in names]
        files += [Path(root, name) for name in file_names if not Path(root, name).is_symlink()]
    return directories, files


def _is_shared_object(path: Path) -> bool:
    return (path.suffix == ".so" or ".so." in path.name) and not any(part.endswith(".libs") for part in path.parts)


def slim() -> str:
    """Slim this Python's environment; says what went."""
    prefix = Path(sys.prefix)
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "pip", "setuptools"], check=True)
    site = Path(sysconfig.get_path("purelib"))
    doomed = [path for pattern in NEVER_SERVED for path in site.glob(pattern)]
    if not (site / "scipy").is_dir():
        doomed += [site / name for name in BUILD_TOOLS]
    directories, files = _walk(prefix)
    doomed += [path for path in directories if path.name in NEVER_SERVED_DIRECTORIES]
    doomed += [path for path in files if path.suffix in NEVER_SERVED_SUFFIXES]
    freed = sum(_remove(path) for path in doomed)
    shared = [path for path in _walk(prefix)[1] if _is_shared_object(path)]
    before = sum(path.stat().st_size for path in shared)
    if shared:
        subprocess.run(["strip", "--strip-unneeded", *map(str, shared)], check=True)
    stripped = before - sum(path.stat().st_size for path in shared)
    return f"slim: {freed / 1e6:.1f} MB never served removed, {len(shared)} shared objects stripped of {stripped / 1e6:.1f} MB"


def main() -> None:
    print(slim(), flush=True)
    subprocess.run([sys.executable, "-m", "mlopsify_runtime.serving", "--precompile"], check=True)


if __name__ == "__main__":
    main()
