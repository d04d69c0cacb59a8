"""A real HTTP server on 127.0.0.1 for the download tests: Range support, cut connections, a mode
that ignores Range."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    """URL path -> body."""
    cut_after: int | None = None
    """Close the connection after this many body bytes ..."""
    cuts_left: int = 0
    """... for this many more responses."""
    ignore_range: bool = False
    """Answer every GET with 200 and the whole body."""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of each request."""


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args):
        pass

    def do_GET(self):
        st = self.state
        path = self.path.split("?")[0]
        st.requests.append((self.path, self.headers.get("Range")))
        if path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", path[len("/redirect"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path not in st.files:
            self.send_error(404)
            return
        body = st.files[path]
        start = 0
        rng = self.headers.get("Range")
        if rng and not st.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if st.cuts_left > 0 and st.cut_after is not None:
            st.cuts_left -= 1
            self.wfile.write(chunk[:st.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def http_server():
    """(base URL, state) of a server running for one test."""
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()
