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
