"""A receiving system for the delivery benchmark, in its own process: it answers every POST
with 200 at once and records, per message, the wall-clock moment it arrived and the event's
id and ``occurred_at``. ``GET /dump`` returns the records; ``POST /reset`` clears them.

    .venv/bin/python -m benchmarks.receiver --port 8099
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RECORDS: list[tuple[float, str, str]] = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a gateway would

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("content-length", "0")))
        arrived = time.time()
        if self.path == "/reset":
            with LOCK:
                RECORDS.clear()
            self._answer(b"{}")
            return
        try:
            event = json.loads(data)
            record = (arrived, str(event.get("id")), str(event.get("occurred_at")))
        except ValueError:
            record = (arrived, "", "")
        with LOCK:
            RECORDS.append(record)
        self._answer(b'{"received":true}')

    def do_GET(self) -> None:
        with LOCK:
            body = json.dumps(RECORDS).encode()
        self._answer(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops connections under concurrent senders
    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Server((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
