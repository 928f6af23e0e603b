"""A real HTTP server speaking the SMS provider API of `libs/sms.py`, keeping what it receives:
for the demo (`make run`) and the tests.

It checks the bearer key (401 otherwise), validates the request (400: not JSON, a field
missing, a number not E.164, no Idempotency-Key), accepts a message once per idempotency key
(a retried send is answered as the first was, and not kept twice), and can be told to fail:
`fail_next(n, status)` answers `status` to the next n requests, `slow_next(n, seconds)` answers
them late (a client's timeout); either only for the requests to one number if given `to`, so
that tests sharing one server do not take each other's faults. Every request is kept in
`attempts`, accepted or not. Served by stdlib `http.server`, one thread per request; the
inbox is read from the caller's event loop (`SmsInbox.wait_for`).

    python -m scripts.sms_sink [port]    # alone: prints its URL and key, then every SMS
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from libs.sms import E164

PATH = "/v1/messages"


@dataclass(frozen=True)
class Sms:
    sender: str
    to: str
    text: str
    idempotency_key: str
    received_at: datetime
    id: str


@dataclass(frozen=True)
class Attempt:
    """Every request that reached the server, accepted or not."""

    status: int
    authorization: str | None
    idempotency_key: str | None
    to: str | None
    at: datetime


@dataclass
class SmsInbox:
    messages: list[Sms] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    spool: Path | None = None
    on_message: Callable[[Sms], None] | None = None

    def to(self, number: str, text: str = "") -> list[Sms]:
        return [m for m in list(self.messages) if m.to == number and text in m.text]

    async def wait_for(
        self, number: str, count: int = 1, timeout: float = 15.0, text: str = ""
    ) -> list[Sms]:
        """The SMS to `number` (whose text contains `text`), once there are `count`."""
        async with asyncio.timeout(timeout):
            while len(self.to(number, text)) < count:
                await asyncio.sleep(0.05)
        return self.to(number, text)


@dataclass
class _Fault:
    remaining: int
    status: int = 503
    delay: float = 0.0
    retry_after: float | None = None
    to: str | None = None


class SmsServer:
    """Started with `with SmsServer() as server:`; `server.url` and `server.api_key` are what a
    `SmsGateway` is configured with."""

    def __init__(
        self,
        port: int | None = None,
        api_key: str | None = None,
        spool: Path | None = None,
        on_message: Callable[[Sms], None] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.inbox = SmsInbox(spool=spool, on_message=on_message)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._by_key: dict[str, Sms] = {}
        self._http = ThreadingHTTPServer((host, self.port), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="sms-sink", daemon=True
        )

    @property
    def messages(self) -> list[Sms]:
        return self.inbox.messages

    @property
    def attempts(self) -> list[Attempt]:
        return self.inbox.attempts

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        retry_after: float | None = None,
        to: str | None = None,
    ) -> None:
        """The next `count` authorized requests (to `to`, if given) are answered `status`, with
        a Retry-After if given, and not kept."""
        with self._lock:
            self._faults.append(_Fault(count, status=status, retry_after=retry_after, to=to))

    def slow_next(self, count: int = 1, seconds: float = 5.0, to: str | None = None) -> None:
        """The next `count` authorized requests (to `to`, if given) are answered after `seconds`
        (and kept, as by a provider that got the message but answered too late)."""
        with self._lock:
            self._faults.append(_Fault(count, delay=seconds, to=to))

    def _next_fault(self, to: object) -> _Fault | None:
        with self._lock:
            self._faults = [f for f in self._faults if f.remaining > 0]
            for fault in self._faults:
                if fault.to is None or fault.to == to:
                    fault.remaining -= 1
                    return fault
            return None

    def _accept(self, body: dict[str, Any], key: str) -> tuple[Sms, bool]:
        """The message kept for `key`, and whether it is new."""
        with self._lock:
            if key in self._by_key:
                return self._by_key[key], False
            sms = Sms(
                sender=body["from"],
                to=body["to"],
                text=body["text"],
                idempotency_key=key,
                received_at=datetime.now(UTC),
                id=f"sms-{secrets.token_hex(8)}",
            )
            self._by_key[key] = sms
            self.inbox.messages.append(sms)
            count = len(self.inbox.messages)
        if self.inbox.spool is not None:
            self.inbox.spool.mkdir(parents=True, exist_ok=True)
            record = asdict(sms) | {"received_at": sms.received_at.isoformat()}
            (self.inbox.spool / f"{count:05d}.json").write_text(
                json.dumps(record, ensure_ascii=False, indent=2)
            )
        if self.inbox.on_message is not None:
            self.inbox.on_message(sms)
        return sms, True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's client expects

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the inbox is the record

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                authorization = self.headers.get("Authorization")
                key = self.headers.get("Idempotency-Key")
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                to = body.get("to") if isinstance(body, dict) else None
                status, answer, headers = self._handle(authorization, key, body)
                with server._lock:
                    server.inbox.attempts.append(
                        Attempt(
                            int(status),
                            authorization,
                            key,
                            to if isinstance(to, str) else None,
                            datetime.now(UTC),
                        )
                    )
                try:
                    self._answer(status, answer, headers)
                except OSError:
                    pass  # the client gave up (its timeout)

            def _handle(
                self, authorization: str | None, key: str | None, body: Any
            ) -> tuple[int, dict[str, Any], dict[str, str]]:
                if self.path != PATH:
                    return HTTPStatus.NOT_FOUND, {"error": "not_found"}, {}
                if not authorization or not secrets.compare_digest(
                    authorization.encode(), f"Bearer {server.api_key}".encode()
                ):
                    return (
                        HTTPStatus.UNAUTHORIZED,
                        {"error": "unauthorized"},
                        {"WWW-Authenticate": "Bearer"},
                    )
                fault = server._next_fault(body.get("to") if isinstance(body, dict) else None)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                elif fault is not None:
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    return fault.status, {"error": "injected failure"}, headers
                problem = _invalid(body, key)
                if problem:
                    return HTTPStatus.BAD_REQUEST, {"error": problem}, {}
                assert key is not None
                sms, new = server._accept(body, key)
                return (HTTPStatus.ACCEPTED if new else HTTPStatus.OK), {"id": sms.id}, {}

        return Handler

    def __enter__(self) -> SmsServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


def _invalid(body: Any, key: str | None) -> str | None:
    if not key:
        return "Idempotency-Key header missing"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    for name in ("from", "to", "text"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} missing"
    if not E164.fullmatch(body["to"]):
        return "to is not an E.164 number"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str]) -> None:
    port = int(argv[0]) if argv else None

    def show(sms: Sms) -> None:
        print(
            f"{sms.received_at:%H:%M:%S} SMS from {sms.sender} to {sms.to}: {sms.text}", flush=True
        )

    # In a container (deploy/compose.yaml): every interface, and the key identity is given.
    host = os.environ.get("SMS_SINK_HOST", "127.0.0.1")
    key_file = os.environ.get("SMS_API_KEY_FILE")
    api_key = Path(key_file).read_text().strip() if key_file else None
    with SmsServer(port=port, api_key=api_key or None, on_message=show, host=host) as server:
        print(f"SMS provider API at {server.url}, bearer key {server.api_key}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main(sys.argv[1:])
