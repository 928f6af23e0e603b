from __future__ import annotations

from pydantic import Field

from libs.settings import ServiceSettings


class RetentionSettings(ServiceSettings):
    # How often the sweep looks for deadlines that have come.
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    # Deadlines fired per transaction; a full batch is followed by another at once.
    sweep_batch_size: int = Field(default=500, ge=1)
