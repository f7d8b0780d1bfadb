"""A stand-in for the review-request APIs of GitLab, GitHub and Azure DevOps, on 127.0.0.1.

No provider can run here: this HTTP server records every POST (path, headers, JSON body) and
answers 201 with what the real APIs answer that the template update job reads: GitLab's
``web_url``, GitHub's ``html_url``, Azure DevOps' ``pullRequestId`` and repository page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

REPLY = {
    "web_url": "http://127.0.0.1/ml/shop-model/-/merge_requests/1",
    "html_url": "http://127.0.0.1/pull/1",
    "pullRequestId": 42,
    "repository": {"webUrl": "https://dev.azure.com/acme/ml/_git/shop-model"},
}


class StandIn(BaseHTTPRequestHandler):
    """Records each POST in ``received``; answers with ``REPLY``."""

    received: ClassVar[list[dict[str, Any]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.received.append({"path": self.path, "headers": headers, "body": body})
        answer = json.dumps(self.reply()).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def reply(self) -> dict[str, Any]:
        """What the stand-in answers to the request just recorded."""
        return REPLY

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@contextmanager
def provider_api(
    stand_in: type[StandIn] = StandIn,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The stand-in's base URL and the list it records requests in, while the block runs."""
    received: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Handler", (stand_in,), {"received": received})
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
