from __future__ import annotations

from libs.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    mail_from: str = "Mon espace santé <ne-pas-repondre@espace-sante.local>"
    # First retry after a failed send; doubles on each failure, up to mail_retry_max_seconds.
    mail_retry_seconds: float = 30.0
    mail_retry_max_seconds: float = 3600.0
    # How often the delivery worker looks for due mails when no NOTIFY woke it (safety net).
    mail_poll_seconds: float = 1.0
    # Finished mail rows (sent, or closed for want of an address) are deleted this long after.
    mail_retention_days: float = 30.0
    mail_prune_seconds: float = 3600.0
