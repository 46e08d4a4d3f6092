"""Real HTTP servers on loopback for the tests' protocol peers (a webhook receiver, a remote
signing service, an OCSP responder): each supplies how it answers a POST; this module runs
the server in a thread for the duration of a ``with`` block."""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (path, lower-cased headers, body) -> (status, headers, body)
Respond = Callable[[str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class Dropped(Exception):
    """Raised by a responder to close the connection without answering (the request was
    read: the sender cannot tell whether it arrived)."""


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connections under concurrent senders
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is expected; anything else is loud."""
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


@contextmanager
def serve(respond: Respond, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve POSTs (and GETs, with an empty body) with ``respond``; yields the base URL.
    With ``tls`` the server speaks HTTPS with that (server-side) context, which may demand
    client certificates."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                status, headers, data = respond(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            except Dropped:
                self.close_connection = True
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST  # a GET reads no body

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        yield f"{'https' if tls else 'http'}://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
