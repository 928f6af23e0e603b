"""notifier: tells the holder of every access to their record, in the space and by e-mail.

python -m services.notifier
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs import spaces
from libs.maintenance import Periodic
from libs.runtime import Runtime
from services.notifier import handlers, service
from services.notifier.mailer import MailWorker
from services.notifier.settings import NotifierSettings

NAME = "notifier"
Settings = NotifierSettings


def build(settings: NotifierSettings | None = None) -> Runtime[NotifierSettings]:
    settings = settings or NotifierSettings()
    runtime = Runtime(
        NAME,
        settings,
        Path(__file__).parent / "migrations",
        # The space's status (libs/spaces.py), so that a closed space's inbox is not read.
        shared_migrations=spaces.MIGRATIONS,
    )
    handlers.register(runtime)
    worker = MailWorker(runtime, settings)
    runtime.add_background(worker.start, worker.stop)
    # Bursts: each digest is queued once its window has ended (state in PostgreSQL).
    digests = Periodic(
        "notifier-digests",
        settings.digest_sweep_seconds,
        lambda: service.queue_due_digests(runtime),
    )
    runtime.add_background(digests.start, digests.stop)
    return runtime


def app() -> FastStream:
    return build().app()
