"""`python -m <package>.serving`: one uvicorn worker on HOST:PORT (default 127.0.0.1:8000).

One worker a container, scaled by replicas: with more workers uvicorn was slower (see
docs/runtime/serving.md). ACCESS_LOG=1 turns on access logs; metrics already count every request.

`python -m mlopsify_runtime.serving --precompile` ends the image build's step (slim.py, run by
the Dockerfile's serve-deps stage, which first removes what serving never uses and strips the
shared objects). The image never writes byte-code (PYTHONDONTWRITEBYTECODE, a read-only venv),
so the modules the service imports before it is ready get theirs at build time, and only those:
byte-code for the whole venv is about 16 MB of the compiled image, half of it never imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

import uvicorn

from .app import create_app
from .settings import Settings

# What start-up imports besides this module, building the app and onnxruntime: the signature
# check's cryptography and what uvicorn.run picks (measured with -X importtime). Another version
# of a package may lack one of these modules: then there is nothing of it to compile.
START_MODULES = (
    "cryptography.hazmat.backends.openssl.backend",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.serialization",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.supervisors",
)


def precompile() -> str:
    """Write the byte-code of the installed modules start-up imports; says how many.

    With scikit-learn installed (the image of a model that does not compile) everything is
    compiled: unpickling the model imports modules that no list here can name.
    """
    import compileall
    import py_compile
    import sysconfig

    site = sysconfig.get_path("purelib")
    unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH  # the image's files never change
    if importlib.util.find_spec("sklearn") is not None:
        compileall.compile_dir(site, quiet=1, workers=0, invalidation_mode=unchecked)
        return "precompile: every module (scikit-learn serves the model)"
    create_app(Settings())  # building the routes imports more than importing the app does
    importlib.import_module("onnxruntime")  # the compiled model's runtime: a broken one stops the build
    for name in START_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    sources = {getattr(module, "__file__", None) or "" for module in list(sys.modules.values())}
    written = sorted(path for path in sources if path.startswith(site) and path.endswith(".py"))
    for path in written:
        py_compile.compile(path, doraise=True, invalidation_mode=unchecked)
    return f"precompile: {len(written)} modules that start-up imports"


def main() -> None:
    if sys.argv[1:] == ["--precompile"]:
        print(precompile())
        return
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper())
    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=1,
        access_log=os.environ.get("ACCESS_LOG", "0") == "1",
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        timeout_graceful_shutdown=20,
        server_header=False,
    )


if __name__ == "__main__":
    main()
