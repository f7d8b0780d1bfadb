"""The HTTP stack's own limit for benchmarks/serving.py: the service's stack (FastAPI, uvicorn with
httptools and uvloop, one worker) with one route that returns a constant and reads nothing.

    python bare_asgi.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

BODY = b'{"prediction":0}'


async def constant(_: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = FastAPI()
app.add_route("/predict", constant, methods=["POST"])
app.add_route("/ready", constant, methods=["GET"])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        server_header=False,
    )
