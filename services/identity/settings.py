from __future__ import annotations

from pydantic import Field

from libs.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    # Only identity holds the signing key.
    identity_private_key: str
    # Operators (the health insurance's agents) sign in with their own Ed25519 keys:
    # {"operator id": "public key, base64url"}; JSON in the environment.
    operator_public_keys: dict[str, str] = Field(default_factory=dict)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    mail_from: str = "Mon espace santé <ne-pas-repondre@espace-sante.local>"
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
