from __future__ import annotations

import binascii

from pydantic import Field, field_validator

from libs.settings import ServiceSettings
from libs.tokens import b64d


class DossierSettings(ServiceSettings):
    # AES-256 key sealing every document's content at rest (DOC_11): 32 bytes, base64url
    # without padding. Kept out of reprs so that it never reaches a log.
    dossier_content_key: str = Field(repr=False)

    @field_validator("dossier_content_key")
    @classmethod
    def _is_an_aes_256_key(cls, value: str) -> str:
        try:
            raw = b64d(value)
        except (binascii.Error, ValueError):
            raise ValueError("dossier_content_key is not base64url") from None
        if len(raw) != 32:
            raise ValueError(
                f"dossier_content_key must decode to 32 bytes (AES-256), not {len(raw)}"
            )
        return value
