from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from libs import sealing
from libs.settings import ServiceSettings
from services.messaging import domain

MiB = 2**20
# RabbitMQ 3.10 refuses any message over 128 MiB (max_message_size): a reply must stay well under.
BROKER_FRAME_LIMIT = 128 * MiB


class MessagingSettings(ServiceSettings):
    # AES-256 key sealing every message's subject and body at rest: 32 bytes, base64url without
    # padding. Only this service has it; kept out of reprs so that it never reaches a log.
    messaging_content_key: str = Field(repr=False)
    # A listing of the box stops adding messages once its reply would pass this many bytes, and
    # returns a cursor for the rest.
    list_reply_budget_bytes: int = Field(default=8 * MiB, ge=1)
    # Attachments: each at most this many bytes, this many per message and this many bytes
    # together (the whole request, in base64, must fit `max_message_bytes`), of these types.
    max_attachment_bytes: int = Field(default=10 * MiB, ge=1)
    max_attachments_per_message: int = Field(default=5, ge=0, le=domain.MAX_ATTACHMENTS)
    max_message_attachment_bytes: int = Field(default=20 * MiB, ge=0)
    attachment_types: list[str] = Field(default_factory=lambda: list(domain.ATTACHMENT_TYPES))

    @field_validator("messaging_content_key")
    @classmethod
    def _is_an_aes_256_key(cls, value: str) -> str:
        return sealing.check_key(value, "messaging_content_key")

    @field_validator("attachment_types")
    @classmethod
    def _types_are_known(cls, value: list[str]) -> list[str]:
        unknown = set(value) - set(domain.ATTACHMENT_TYPES)
        if unknown:
            raise ValueError(
                f"attachment_types: {sorted(unknown)} cannot be checked; known:"
                f" {', '.join(domain.ATTACHMENT_TYPES)}"
            )
        return value

    def attachment_limits(self) -> domain.AttachmentLimits:
        return domain.AttachmentLimits(
            max_bytes=self.max_attachment_bytes,
            max_count=self.max_attachments_per_message,
            max_total_bytes=self.max_message_attachment_bytes,
            types=frozenset(self.attachment_types),
        )

    @model_validator(mode="after")
    def _replies_fit_the_broker(self) -> Self:
        if self.list_reply_budget_bytes > BROKER_FRAME_LIMIT // 2:
            raise ValueError(
                "list_reply_budget_bytes must stay at most half the broker's 128 MiB message limit"
            )
        if domain.max_reply_size() > self.list_reply_budget_bytes:
            raise ValueError("list_reply_budget_bytes is smaller than one message at its largest")
        if domain.max_threads_reply_size() > self.list_reply_budget_bytes:
            raise ValueError("list_reply_budget_bytes is smaller than a page of threads")
        # A message with its attachments, in base64, and its texts must fit one request.
        if domain.base64_size(self.max_message_attachment_bytes) + MiB > self.max_message_bytes:
            raise ValueError(
                "max_message_attachment_bytes, in base64 with the texts, must fit in"
                " max_message_bytes"
            )
        if domain.base64_size(self.max_attachment_bytes) + MiB > BROKER_FRAME_LIMIT // 2:
            raise ValueError("max_attachment_bytes must fit a reply well under the broker's limit")
        return self
