from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from libs import sealing
from libs.settings import ServiceSettings
from services.dossier import domain

MiB = 2**20
# RabbitMQ 3.10 refuses any message over 128 MiB (max_message_size): a reply must stay well under.
BROKER_FRAME_LIMIT = 128 * MiB


class DossierSettings(ServiceSettings):
    # AES-256 key sealing every document's content and title at rest (DOC_11): 32 bytes,
    # base64url without padding. Kept out of reprs so that it never reaches a log.
    dossier_content_key: str = Field(repr=False)
    # Its id, stored with every document key it wraps. To rotate without downtime, in two
    # deploys: (1) add the new key to DOSSIER_READABLE_KEYS under a new id, so that every replica
    # reads what it will wrap; (2) make it DOSSIER_CONTENT_KEY with its id and move the old one
    # into DOSSIER_READABLE_KEYS. The dossier re-wraps every document key in the background
    # (`python -m services.dossier.keys` shows what is left); then the old key can go.
    dossier_content_key_id: str = Field(default="k1", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # Master keys read, never written with: {"id": "key"}, JSON in the environment.
    dossier_readable_keys: dict[str, str] = Field(default_factory=dict, repr=False)
    # How long the re-wrapping pass sleeps when nothing is left to re-wrap (it keeps looking:
    # a replica still on the old settings may wrap with the old key during a rolling deploy).
    rewrap_idle_seconds: float = Field(default=30.0, gt=0)
    # The largest document accepted in one message, decoded (a deposit over it is refused:
    # invalid_input; larger ones are uploaded in parts).
    max_document_bytes: int = Field(default=10 * MiB, ge=1)
    # Documents uploaded in parts (BeginDocumentUpload): the largest, and the size of a part.
    max_upload_bytes: int = Field(default=512 * MiB, ge=1)
    part_bytes: int = Field(default=4 * MiB, ge=1024, le=16 * MiB)
    # An upload not completed by then is dropped with its parts.
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=60)
    # A read stops adding documents once its reply would pass this many bytes, and returns a
    # cursor for the rest.
    read_reply_budget_bytes: int = Field(default=32 * MiB, ge=1)

    @field_validator("dossier_content_key")
    @classmethod
    def _is_an_aes_256_key(cls, value: str) -> str:
        return sealing.check_key(value, "dossier_content_key")

    @field_validator("dossier_readable_keys")
    @classmethod
    def _readable_are_aes_256_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key_id, key in value.items():
            sealing.check_key(key, f"dossier_readable_keys[{key_id!r}]")
        return value

    @model_validator(mode="after")
    def _current_is_not_also_readable(self) -> Self:
        if self.dossier_content_key_id in self.dossier_readable_keys:
            raise ValueError("dossier_content_key_id also names a readable key: one id, one key")
        return self

    @model_validator(mode="after")
    def _replies_fit_the_broker(self) -> Self:
        if self.read_reply_budget_bytes > BROKER_FRAME_LIMIT // 2:
            raise ValueError(
                "read_reply_budget_bytes must stay at most half the broker's 128 MiB message limit"
            )
        if domain.max_reply_size(self.part_bytes) > self.read_reply_budget_bytes:
            raise ValueError("part_bytes is too large for read_reply_budget_bytes")
        if domain.max_reply_size(self.max_document_bytes) > self.read_reply_budget_bytes:
            raise ValueError(
                "max_document_bytes is too large for read_reply_budget_bytes: one document"
                " (in base64, with its metadata) must fit in a read's reply"
            )
        return self
