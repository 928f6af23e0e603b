"""Settings every service reads from its environment (pydantic-settings)."""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from libs.sealing import check_key
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
    # Bytes of requests worked on at once (libs/budget.py): a request costs a few times its size
    # while it is handled, and prefetch counts messages, not bytes. Larger requests wait their
    # turn; one larger than this runs alone. 8 MiB: one 5 MB document at a time (its base64 is
    # 6.7 MB), which deposits as fast as two (the work is the CPU's) for 15 MB less at peak.
    request_bytes_at_once: int = Field(8 * 1024 * 1024, ge=1)
    # Deliveries in hand at once on a large lane (libs/contracts/rpc.py): with
    # `max_message_bytes`, the most its documents can take before they are handled.
    large_prefetch: int = Field(2, ge=1)
    # Technical rows kept (libs.maintenance), and how often each replica prunes.
    outbox_retention_days: float = 7
    inbox_retention_days: float = 30
    request_retention_days: float = 7
    prune_interval_seconds: float = 3600
    # Observability (docs/observability.md). The key under which INS values are hashed in logs
    # (32 bytes, base64url; the same for every service, a secret): unset, each process draws
    # its own and pseudonyms cannot be followed from one service to another.
    log_pseudonym_key: str | None = Field(None, repr=False)
    # Where spans go (OTLP over HTTP, e.g. http://otel-collector:4318/v1/traces); unset: no
    # tracing at all. The share of new traces kept (a caller's decision is followed).
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    @field_validator("log_pseudonym_key", "otlp_endpoint", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_pseudonym_key")
    @classmethod
    def _key_shape(cls, value: str | None) -> str | None:
        return None if value is None else check_key(value, "log_pseudonym_key")

    # False in production: migrations are their own step (`python -m libs.migrate`, a job) and
    # a service whose schema is behind refuses to start instead of migrating it.
    migrate_on_start: bool = True
    # The passwords of the two URLs, when a deployment keeps them apart as secret files
    # (`database_password`, `amqp_password` in SECRETS_DIR): put into the URLs.
    database_password: str | None = Field(default=None, repr=False)
    amqp_password: str | None = Field(default=None, repr=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """With SECRETS_DIR set (e.g. /run/secrets, where compose and Kubernetes mount a
        container's secrets), a setting may also be a file named after it, e.g.
        `dossier_content_key`; the environment still comes first."""
        directory = os.environ.get("SECRETS_DIR")
        if directory and os.path.isdir(directory):
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _passwords_into_urls(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for url, password in (("database_url", "database_password"), ("amqp_url", "amqp_password")):
            if data.get(password):
                given = data.get(url) or cls.model_fields[url].default
                data = {**data, url: with_password(given, data[password])}
        return data


def with_password(url: str, password: str) -> str:
    """`url` with its user's password set to `password`."""
    parts = urlsplit(url)
    netloc = f"{parts.username or ''}:{quote(password, safe='')}@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
