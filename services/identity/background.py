"""identity's background work: sending sign-in codes off the request path, and the janitor.

- `CodeSender` (the `messages.Sender`): RequestHolderCode answers before the code goes, by
  e-mail (SMTP) or by SMS (the provider's HTTP API, libs/sms.py), so the reply takes the same
  time whether or not a code was sent (no timing oracle on who exists). A failed send is
  logged, never raised into the request. An SMS the provider could not take now is retried a
  few times with the same idempotency key (sent once); a refused one is not. A code lost to a
  crash is not retried: the code lives ten minutes and the holder simply asks again.
- `janitor`: every `prune_interval_seconds`, deletes expired codes and challenges, ended rate
  windows and sign-in locks that have run out (used codes and challenges are deleted when used).
  Replicas may all run it: the deletes are idempotent.
"""

from __future__ import annotations

import asyncio
import secrets

import structlog

from libs.mail import Mailer
from libs.maintenance import Periodic
from libs.runtime import Runtime
from libs.sms import SmsUnavailable, gateway_for, mask_number
from services.identity.domain import SignInPolicy
from services.identity.messages import Channel
from services.identity.repository import prune
from services.identity.settings import IdentitySettings

log = structlog.get_logger()


class CodeSender:
    """identity's `messages.Sender`: sends by e-mail or SMS in background tasks; `stop` lets
    those in flight finish (bounded).

    `sms_attempts`: tries of an SMS the provider could not take now, `sms_retry_delay` seconds
    apart at first, doubling (or what the provider's Retry-After says, at most `stop_timeout`).
    """

    def __init__(
        self,
        settings: IdentitySettings,
        *,
        stop_timeout: float = 10.0,
        sms_attempts: int = 3,
        sms_retry_delay: float = 0.5,
    ) -> None:
        self._settings = settings
        self._stop_timeout = stop_timeout
        self._sms_attempts = sms_attempts
        self._sms_retry_delay = sms_retry_delay
        self._sending: set[asyncio.Task[None]] = set()
        self._gateway = gateway_for(settings)
        self._mailer = Mailer(settings)

    def submit(self, channel: Channel, to: str, subject: str, body: str) -> None:
        """Send `body` to `to` (an e-mail address, or an E.164 number for "sms", which ignores
        `subject`) after the caller has moved on; never raises for the send itself."""
        if channel not in ("email", "sms"):
            raise ValueError(f"no such channel: {channel!r}")
        task = asyncio.create_task(
            self._send(channel, to, subject, body), name=f"identity-code-{channel}"
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, channel: Channel, to: str, subject: str, body: str) -> None:
        try:
            if channel == "sms":
                await self._send_sms(to, body)
            else:
                await self._send_mail(to, subject, body)
        except Exception as exc:
            # The error names no number (libs.sms masks it) and no text.
            event = "code_sms_failed" if channel == "sms" else "code_mail_failed"
            log.warning(event, error=repr(exc))

    async def _send_mail(self, to: str, subject: str, body: str) -> None:
        await self._mailer.send(
            to=to, subject=subject, body=body, message_id=f"code-{secrets.token_hex(8)}"
        )

    async def _send_sms(self, to: str, text: str) -> None:
        if self._gateway is None:
            log.warning(
                "code_sms_impossible",
                to=mask_number(to),
                reason="no SMS gateway configured (SMS_GATEWAY_URL, SMS_API_KEY)",
            )
            return
        key = f"code-{secrets.token_hex(8)}"  # the same for every try: the provider sends once
        delay = self._sms_retry_delay
        for attempt in range(1, self._sms_attempts + 1):
            try:
                await self._gateway.send(to, text, idempotency_key=key)
                return
            except SmsUnavailable as exc:
                if attempt == self._sms_attempts:
                    raise
                wait = delay if exc.retry_after is None else exc.retry_after
                await asyncio.sleep(min(wait, self._stop_timeout))
                delay *= 2

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """Let the sends in flight go (bounded), so a code just promised is not lost; then
        give up on the rest and close the SMS client and the SMTP connection."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=self._stop_timeout)
        late = set(self._sending)
        if late:
            log.warning("code_sends_abandoned", count=len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late)
        if self._gateway is not None:
            await self._gateway.close()
        await self._mailer.close()


def janitor(runtime: Runtime[IdentitySettings], policy: SignInPolicy, interval: float) -> Periodic:
    async def prune_once() -> None:
        deleted = await prune(runtime.pool, runtime.now(), policy)
        if any(deleted.values()):
            log.info("sign_in_rows_pruned", **deleted)

    return Periodic("identity-janitor", interval, prune_once)
