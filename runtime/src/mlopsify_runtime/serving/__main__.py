"""`python -m <package>.serving`: one uvicorn worker on HOST:PORT (default 127.0.0.1:8000).

One worker a container, scaled by replicas: with more workers uvicorn was slower (see
docs/runtime/serving.md). ACCESS_LOG=1 turns on access logs; metrics already count every request.
"""

from __future__ import annotations

import logging
import os

import uvicorn

from .app import create_app


def main() -> None:
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
