"""Real peers on loopback: an SMTP server (aiosmtpd) and an HTTP warehouse receiver."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from email import message_from_bytes
from email.message import Message
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port

# What tests/support/stack.py gives every shop as WAREHOUSE_SECRET.
WAREHOUSE_SECRET = "test-warehouse-secret"
README = Path(__file__).resolve().parents[2] / "README.md"

SignatureVerifier = Callable[[bytes, Mapping[str, str], bytes], bool]


def readme_signature_verifier() -> SignatureVerifier:
    """``verify_shop_signature`` exactly as README.md shows receivers: the receiver
    below runs the documented code, so the documentation cannot drift from the shop."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Verifying the warehouse signature") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README.md: no python block under 'Verifying the warehouse signature'"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(README), "exec"), namespace)
    return namespace["verify_shop_signature"]  # type: ignore[no-any-return]


class SmtpSink:
    """Accepts every message and keeps it.

    ``tls``: a server context for implicit TLS (``smtps://``) or, with
    ``starttls=True``, for STARTTLS. ``credentials``: a user and password the
    server accepts over AUTH; every attempt (with whether TLS was on) is kept in
    ``logins``.
    """

    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        starttls: bool = False,
        credentials: tuple[str, str] | None = None,
        auth_require_tls: bool = True,
    ) -> None:
        self.messages: list[Message] = []
        self.logins: list[dict[str, Any]] = []
        self.credentials = credentials
        self.port = free_port()
        self.scheme = "smtps" if tls is not None and not starttls else "smtp"
        server_kwargs: dict[str, Any] = {}
        if starttls:
            server_kwargs["tls_context"] = tls
        if credentials is not None:
            server_kwargs.update(authenticator=self._authenticate, auth_require_tls=auth_require_tls)
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=None if starttls else tls,
            **server_kwargs,
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
        self.logins.append({"ok": ok, "tls": session.ssl is not None})
        return AuthResult(success=ok)

    def url_for(self, host: str = "127.0.0.1", user: str = "", query: str = "") -> str:
        """This server's SMTP_URL, reached through ``host`` (a name its certificate may not hold)."""
        userinfo = f"{user}:{self.credentials[1] if self.credentials else ''}@" if user else ""
        return f"{self.scheme}://{userinfo}{host}:{self.port}{'?' + query if query else ''}"

    @property
    def url(self) -> str:
        return self.url_for()

    def to(self, address: str) -> list[Message]:
        """Messages to ``address``, whatever display name the To header gives it."""
        return [m for m in self.messages if parseaddr(m["To"])[1] == address]

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class WarehouseReceiver:
    """Records every POST (body, headers); answers 200, or ``fail_next`` 503s first.

    Like a real receiver it checks the signature as README.md tells receivers
    to, and answers 401 to one that fails (kept in ``rejected``).
    """

    def __init__(self, secret: str = WAREHOUSE_SECRET) -> None:
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.fail_next = 0
        self.secret = secret
        self.lock = threading.Lock()
        verify = readme_signature_verifier()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    record = {"headers": dict(self.headers), "raw": body, "at": time.monotonic()}
                    if not verify(receiver.secret.encode(), self.headers, body):
                        receiver.rejected.append(record)
                        self.send_response(401)
                        self.end_headers()
                        return
                    receiver.requests.append({"json": json.loads(body), **record})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"accepted": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/shipments"

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.requests]

    def __enter__(self) -> WarehouseReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
