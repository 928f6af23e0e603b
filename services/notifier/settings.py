from __future__ import annotations

from libs.mail import MailSettings
from libs.settings import SmsSettings


class NotifierSettings(SmsSettings, MailSettings):
    # First retry after a failed send; doubles on each failure, up to mail_retry_max_seconds.
    mail_retry_seconds: float = 30.0
    mail_retry_max_seconds: float = 3600.0
    # A channel still failing after this many attempts is given up: the alert stays in the
    # inbox, its delivery says `failed`, and ops see it (log `alert_delivery_failed`, metric).
    delivery_max_attempts: int = 20
    # How long a claimed mail is the claiming worker's: a crashed worker's claims come back then.
    delivery_lease_seconds: float = 60.0
    # How often the delivery worker looks for due mails when no NOTIFY woke it (safety net).
    mail_poll_seconds: float = 1.0
    # Finished mail rows (sent, or closed for want of an address) are deleted this long after.
    mail_retention_days: float = 30.0
    mail_prune_seconds: float = 3600.0
    # Bursts (docs/notifier.md): in a window of `digest_window_seconds` from a holder's first
    # access alert, the first `alerts_before_digest` go out one by one, the rest in one digest
    # at the window's end, queued by a sweep every `digest_sweep_seconds`.
    alerts_before_digest: int = 3
    digest_window_seconds: float = 600.0
    digest_sweep_seconds: float = 5.0
