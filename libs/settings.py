"""Settings every service reads from its environment (pydantic-settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.tokens import DEFAULT_ISSUER


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/dmp"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Identity's public JWKS (JSON, `python -m libs.tokens jwks`): every service verifies tokens
    # with it, and accepts any of its keys (two during a rotation).
    identity_jwks: str
    # Who signs tokens: identity writes it in each token, every service checks it.
    identity_issuer: str = DEFAULT_ISSUER
    # Unacknowledged deliveries per consumer channel: bounds memory and concurrency.
    prefetch: int = 64
    # Connections per service replica (PostgreSQL's default cap is 100 for the whole server).
    db_pool_size: int = 10
    rpc_timeout_seconds: float = 5.0
    # "adjustable" lets a demo or a test move time forward for all services at once; never in
    # production, where the clock is the system's.
    clock_mode: Literal["system", "adjustable"] = "system"
    log_level: str = "INFO"
    graceful_timeout_seconds: float = 10.0
    # Broker users are named `<prefix><service>` (e.g. "dossier"); a prefix lets several
    # deployments (or test runs) share one broker, whose users are not per virtual host.
    bus_user_prefix: str = ""
    # How long an event is held, retrying, while the database (or another service) is away,
    # before it is put back at its queue's tail (never given back with a failure: see runtime).
    hold_seconds: float = 30.0
    # A queue with deliveries in hand and none finished for this long is stalled: not ready.
    stall_seconds: float = 60.0
    # HTTP readiness/liveness probes for orchestrators (GET /readyz, /livez); None: no server.
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    # The largest request or event body taken (a 10 MiB document is about 14 MiB in base64);
    # far below the broker's frame limit (128 MiB), so no reply can approach it either.
    max_message_bytes: int = 32 * 1024 * 1024
    # Technical rows kept (libs.maintenance), and how often each replica prunes.
    outbox_retention_days: float = 7
    inbox_retention_days: float = 30
    request_retention_days: float = 7
    prune_interval_seconds: float = 3600


class SmsSettings(ServiceSettings):
    """A service that sends SMS through the provider's HTTP API (libs/sms.py): where messages
    are posted and the account's key (a secret: identity's and the notifier's only). Without
    both, an SMS cannot go: it is logged as impossible. `sms_sender`: the sender id phones
    show."""

    sms_gateway_url: str | None = None
    sms_api_key: str | None = None
    sms_sender: str = "MonEspaceSante"
    sms_timeout_seconds: float = 10.0

    @field_validator("sms_gateway_url", "sms_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # A deployment's `.env` leaves them empty when no provider is used.
        return None if isinstance(value, str) and not value.strip() else value
