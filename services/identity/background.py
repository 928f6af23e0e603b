"""identity's background work: sending sign-in codes off the request path, and the janitor.

- `CodeMailer`: RequestHolderCode answers before the mail goes, so the reply takes the same time
  whether or not a code was sent (no timing oracle on who exists). A code mail lost to a crash
  is not retried: the code lives ten minutes and the holder simply asks again.
- `janitor`: every `prune_interval_seconds`, deletes expired codes and challenges, ended rate
  windows and sign-in locks that have run out (used codes and challenges are deleted when used).
  Replicas may all run it: the deletes are idempotent.
"""

from __future__ import annotations

import asyncio
import secrets

import structlog

from libs.mail import send_mail
from libs.maintenance import Periodic
from libs.runtime import Runtime
from services.identity.domain import SignInPolicy
from services.identity.repository import prune
from services.identity.settings import IdentitySettings

log = structlog.get_logger()


class CodeMailer:
    def __init__(self, settings: IdentitySettings, *, stop_timeout: float = 10.0) -> None:
        self._settings = settings
        self._stop_timeout = stop_timeout
        self._sending: set[asyncio.Task[None]] = set()

    def submit(self, to: str, code: str) -> None:
        task = asyncio.create_task(self._send(to, code), name="identity-code-mail")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, to: str, code: str) -> None:
        settings = self._settings
        try:
            await send_mail(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.mail_from,
                to=to,
                subject="Mon espace santé : votre code de connexion",
                body=f"Votre code de connexion à usage unique : {code}\n"
                "Il expire dans 10 minutes. Un nouveau code remplace le précédent.",
                message_id=f"code-{secrets.token_hex(8)}",
            )
        except Exception as exc:
            log.warning("code_mail_failed", error=repr(exc))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """Let the mails in flight go (bounded), so a code just promised is not lost."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=self._stop_timeout)


def janitor(runtime: Runtime[IdentitySettings], policy: SignInPolicy, interval: float) -> Periodic:
    async def prune_once() -> None:
        deleted = await prune(runtime.pool, runtime.now(), policy)
        if any(deleted.values()):
            log.info("sign_in_rows_pruned", **deleted)

    return Periodic("identity-janitor", interval, prune_once)
