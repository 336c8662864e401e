"""A tiny handoff-webhook receiver for the support bot example (standard library only).

    python examples/support_bot/webhook_receiver.py --port 8787 [--out handoffs.jsonl]

Point the agent's ``server.webhook.url`` at ``http://127.0.0.1:8787/handoff``. Every POST
is printed (the session summary and the last messages) and appended to ``--out`` as one
JSON line; a helpdesk would open a ticket here instead. With ``--secret-env NAME`` the
``X-Llmos-Signature`` header is checked against the HMAC of the body.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_server(host: str = "127.0.0.1", port: int = 8787, *, out: Path | None = None,
                secret: bytes = b"", quiet: bool = False) -> ThreadingHTTPServer:
    """A server whose ``received`` list holds every payload it accepted (port 0: any free port)."""
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if secret:
                expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Llmos-Signature", "")):
                    self.send_response(401)
                    self.end_headers()
                    return
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            with lock:
                received.append(payload)
                if out is not None:
                    with out.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(payload, ensure_ascii=False) + "\n")
            if not quiet:
                session = payload.get("session", {})
                print(f"handoff: session {session.get('id')} of user {session.get('user_id')} "
                      f"({session.get('turns')} turns)")
                print(f"  summary: {session.get('summary') or '(none yet)'}")
                for message in payload.get("transcript", [])[-4:]:
                    print(f"  {message['role']}: {message['content'][:120]}")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.received = received  # type: ignore[attr-defined]
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--out", type=Path, default=None, help="append each payload here as a JSON line")
    parser.add_argument("--secret-env", default=None, help="environment variable holding the shared secret")
    args = parser.parse_args()
    secret = os.environ.get(args.secret_env, "").encode() if args.secret_env else b""
    server = make_server(args.host, args.port, out=args.out, secret=secret)
    print(f"listening on http://{args.host}:{server.server_address[1]}/handoff")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
