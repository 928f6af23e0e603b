"""structlog JSON logs; the correlation id of the message being handled rides in a contextvar.

No log line carries an INS in clear: `Pseudonymise` replaces the value of every `ins`,
`holder_key` and `nir` field with a keyed hash (HMAC-SHA256 under `log_pseudonym_key`, the first
16 hex digits, `p:` before them), the same in every service for one person, so ops follow one
holder across services without learning who they are, and nobody without the key can check a
guessed INS against the logs. Any other text that looks like an INS (an error message, a
repr) is replaced the same way. Fields that could carry medical content (titles, subjects,
bodies, contents) are never written: their value is replaced by `[redacted]`. Lines from the
standard library's loggers (faststream, aio-pika) go through the same processors.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# The INS as stored (13 characters, 2A/2B for Corsica, and the key), standing alone in a text.
_INS_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{8}(?![0-9A-Za-z])")
# The logger the runtime gives faststream's broker (libs/runtime.py).
BROKER_LOGGER = "dmp.broker"
PSEUDONYMISED_FIELDS = frozenset({"ins", "holder_key", "nir"})
# Medical content has no business in a log line, whoever tries to write it.
REDACTED_FIELDS = frozenset(
    {"title", "subject", "body", "content", "contents", "text", "payload", "document"}
)


class Pseudonymise:
    """A structlog processor: INS values become keyed hashes; medical fields are dropped."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def pseudonym(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return f"p:{digest[:16]}"

    def _text(self, value: str) -> str:
        return _INS_IN_TEXT.sub(lambda m: self.pseudonym(m.group(0)), value)

    def _value(self, key: str, value: Any, depth: int = 0) -> Any:
        if key in REDACTED_FIELDS and value is not None:
            return "[redacted]"
        if key in PSEUDONYMISED_FIELDS and isinstance(value, str):
            return self.pseudonym(value)
        if isinstance(value, str):
            return self._text(value) if len(value) >= 15 else value
        if depth < 3 and isinstance(value, dict):
            return {k: self._value(str(k), v, depth + 1) for k, v in value.items()}
        if depth < 3 and isinstance(value, list | tuple):
            return [self._value(key, v, depth + 1) for v in value]
        return value

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            event_dict[key] = self._value(key, value)
        return event_dict


def pseudonymiser(key: str | bytes | None) -> Pseudonymise:
    """The processor for a key (base64url as in settings, or raw bytes); without one, a random
    key of this process's own (pseudonyms then differ from one process to the next)."""
    if key is None:
        return Pseudonymise(secrets.token_bytes(32))
    if isinstance(key, str):
        from libs.tokens import b64d

        return Pseudonymise(b64d(key))
    return Pseudonymise(key)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours on the root logger: replaced, not doubled, when logging is configured again."""


def configure_logging(
    service: str,
    level: str = "INFO",
    pseudonym_key: str | None = None,
    *,
    stream: TextIO | None = None,
) -> None:
    """JSON lines on `stream` (stderr unless told), pseudonymised, from structlog and from the
    standard library's loggers alike."""
    stream = sys.stderr if stream is None else stream
    pseudonymise = pseudonymiser(pseudonym_key)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        # Last before rendering: it sees the exception's text and the bound context too.
        pseudonymise,
    ]
    # The standard library's loggers (faststream, aiormq, aio_pika) as JSON, pseudonymised too.
    handler = _Handler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
    # faststream logs every message at INFO: that costs a third of consume throughput.
    for name in ("faststream", BROKER_LOGGER, "aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # faststream's own logger writes plain text past the root logger: through ours instead.
    faststream = logging.getLogger("faststream")
    for own in list(faststream.handlers):
        faststream.removeHandler(own)
    faststream.propagate = True
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    if pseudonym_key is None:
        structlog.get_logger().warning(
            "log_pseudonym_key_unset",
            detail="INS in logs are hashed under a key of this process only: set"
            " LOG_PSEUDONYM_KEY (the same for every service) to follow a holder across them",
        )


def bind_correlation(correlation_id: str | None, **extra: object) -> None:
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id, **extra)


def new_message_context(service: str, **values: object) -> None:
    """Forget the previous message's context (each delivery runs in its own task anyway)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service, **values)
