"""Sending SMS through a provider's HTTP API (httpx): one small interface, `SmsGateway`.

The provider API it speaks (served for real by `scripts/sms_sink.py`, which the demo and the
tests run):

    POST <url>                             the gateway URL as configured, e.g. .../v1/messages
    Authorization: Bearer <api key>
    Idempotency-Key: <key>                 a retried send carries the same key: sent once
    Content-Type: application/json
    {"from": "<sender id>", "to": "+33612345678", "text": "..."}

    2xx                    accepted (the provider sends it)
    4xx but 408 and 429    refused for good (bad key, bad number, bad request): `SmsRefused`
    408, 429, 5xx          the provider cannot take it now: `SmsUnavailable`
    no answer, timeout     `SmsUnavailable` (the message may have gone: retry with the same key)

Callers retry `SmsUnavailable` (with the same idempotency key) and give up on `SmsRefused`.
Redirects are not followed (a 3xx is a misconfigured URL: refused).

Logs carry the outcome and a masked number (its last two digits), never the text: a text may
be a sign-in code or say something about the holder's health.
"""

from __future__ import annotations

import re

import httpx
import structlog

from libs.settings import SmsSettings

log = structlog.get_logger()

E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class SmsError(Exception):
    """An SMS that did not go. `status` is the provider's HTTP status, if it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SmsRefused(SmsError):
    """Permanent: the same request would be refused again; do not retry."""


class SmsUnavailable(SmsError):
    """Temporary: the provider did not take it now; retry later with the same idempotency key.
    `retry_after`: the seconds the provider asked to wait (Retry-After), if it said."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


def mask_number(number: str) -> str:
    """What logs may say of a phone number: its last two digits."""
    return "…" + number[-2:] if len(number) > 2 else "…"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None  # absent, or an HTTP date: the caller's own backoff applies


class SmsGateway:
    """One provider account: a kept-open HTTP client (connections reused), closed by `close`.

    `url`: where messages are posted; `api_key`: sent as a bearer token; `sender`: the sender id
    shown on the phone; `timeout`: seconds for each of connect, write, read and pool wait.
    """

    def __init__(self, url: str, api_key: str, *, sender: str, timeout: float = 10.0) -> None:
        self._url = url
        self._sender = sender
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
        )

    async def send(self, to_e164: str, text: str, *, idempotency_key: str) -> None:
        """Returns once the provider accepted the message; raises `SmsRefused` or
        `SmsUnavailable` otherwise (see the module's table)."""
        to = mask_number(to_e164)
        if not E164.fullmatch(to_e164):
            log.warning("sms_refused", to=to, reason="not an E.164 number")
            raise SmsRefused(f"not an E.164 number (+ and up to 15 digits): {to}")
        try:
            response = await self._client.post(
                self._url,
                json={"from": self._sender, "to": to_e164, "text": text},
                headers={"Idempotency-Key": idempotency_key},
            )
        except httpx.TimeoutException as exc:
            log.warning("sms_unavailable", to=to, reason="timeout")
            raise SmsUnavailable(
                f"the SMS provider did not answer within {self._timeout}s (to {to})"
            ) from exc
        except httpx.TransportError as exc:
            log.warning("sms_unavailable", to=to, reason=type(exc).__name__)
            raise SmsUnavailable(
                f"the SMS provider could not be reached: {type(exc).__name__} (to {to})"
            ) from exc
        status = response.status_code
        if response.is_success:
            log.info("sms_sent", to=to, status=status)
            return
        if status in (408, 429) or status >= 500:
            log.warning("sms_unavailable", to=to, status=status)
            raise SmsUnavailable(
                f"the SMS provider answered {status} (to {to})",
                status=status,
                retry_after=_retry_after(response),
            )
        log.warning("sms_refused", to=to, status=status)
        raise SmsRefused(f"the SMS provider refused the message: {status} (to {to})", status=status)

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> SmsGateway:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def gateway_for(settings: SmsSettings) -> SmsGateway | None:
    """The service's gateway, or None when no provider is configured (an SMS cannot go)."""
    if not (settings.sms_gateway_url and settings.sms_api_key):
        return None
    return SmsGateway(
        settings.sms_gateway_url,
        settings.sms_api_key,
        sender=settings.sms_sender,
        timeout=settings.sms_timeout_seconds,
    )
