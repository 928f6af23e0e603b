from __future__ import annotations

from pydantic import Field, field_validator

from libs import sealing
from libs.settings import ServiceSettings


class RetentionSettings(ServiceSettings):
    # How often the sweep looks for deadlines that have come.
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    # Deadlines fired per transaction; a full batch is followed by another at once.
    sweep_batch_size: int = Field(default=500, ge=1)
    # RET_01: the key of the keyed hash by which a proof of deletion names the purged INS (32
    # bytes, base64url without padding). Only retention has it: with it, ops find the proof of a
    # given INS; without it, the proofs name no one. Kept out of reprs.
    purge_proof_key: str = Field(repr=False)
    # A purge still unanswered by a service is asked of it again after this long (by the clock
    # the deadlines run on).
    purge_retry_seconds: float = Field(default=600.0, gt=0)

    @field_validator("purge_proof_key")
    @classmethod
    def _is_a_256_bit_key(cls, value: str) -> str:
        return sealing.check_key(value, "purge_proof_key")
