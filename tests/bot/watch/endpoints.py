"""The far ends the watchers talk to, on 127.0.0.1 (no network): a webhook receiver (`Hook`, at
`/hooks/TOKEN`) for the alerts, and a scrape of the metrics endpoint (`scrape`, `value`).
"""
from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "T0KEN-s3cret-abc123"


class Hook:
    """A webhook receiver: records each POST, answers `status` (or never, when `hang`)."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.status, self.hang = status, hang
        self.posts: list[tuple[str, dict, dict]] = []  # (path, headers, body)
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append((self.path, dict(self.headers), json.loads(body)))
                if hook.hang:
                    hook.release.wait(10)
                    return
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/{TOKEN}"

    def events(self) -> list[str]:
        return [body["event"] for _, _, body in self.posts]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]
