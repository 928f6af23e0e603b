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

    @field_validator("messaging_content_key")
    @classmethod
    def _is_an_aes_256_key(cls, value: str) -> str:
        return sealing.check_key(value, "messaging_content_key")

    @model_validator(mode="after")
    def _replies_fit_the_broker(self) -> Self:
        if self.list_reply_budget_bytes > BROKER_FRAME_LIMIT // 2:
            raise ValueError(
                "list_reply_budget_bytes must stay at most half the broker's 128 MiB message limit"
            )
        if domain.max_reply_size() > self.list_reply_budget_bytes:
            raise ValueError("list_reply_budget_bytes is smaller than one message at its largest")
        return self
