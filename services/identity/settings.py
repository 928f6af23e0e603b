from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from libs.mail import MailSettings
from libs.settings import SmsSettings
from libs.tokens import current_signing_key, jwks_keys


class IdentitySettings(SmsSettings, MailSettings):
    # Only identity holds its signing keys: a private JWKS (JSON, `python -m libs.tokens new-key`)
    # whose first key signs; all of them are published in IDENTITY_JWKS.
    identity_signing_keys: str
    # Operators (the health insurance's agents) sign in with their own Ed25519 keys:
    # {"operator id": "public key, base64url"}; JSON in the environment.
    operator_public_keys: dict[str, str] = Field(default_factory=dict)
    # Holder sign-in (SPC_03). Code requests per INS and per caller (broker user) per window:
    # with one broker user per kind of client, the per-caller limit brakes a flood from one
    # kind of client as a whole, not one person.
    code_requests_per_ins: int = 5
    code_requests_per_caller: int = 1000
    code_rate_window_seconds: float = 3600.0
    # Wrong codes (across codes) within the window before the holder's sign-in is locked.
    sign_in_max_failures: int = 5
    sign_in_failure_window_seconds: float = 3600.0
    sign_in_lockout_seconds: float = 900.0
    # How often expired codes, challenges, counters and locks are deleted.
    prune_interval_seconds: float = 60.0

    @model_validator(mode="after")
    def _signing_key_is_published(self) -> Self:
        kid = current_signing_key(self.identity_signing_keys)["kid"]
        if kid not in {key["kid"] for key in jwks_keys(self.identity_jwks, private=False)}:
            raise ValueError(
                f"identity's signing key {kid} is not in IDENTITY_JWKS: every token it signed"
                " would be refused (`python -m libs.tokens jwks` prints the JWKS to publish)"
            )
        return self
