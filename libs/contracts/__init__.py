"""Message contracts shared by every service: the only thing services have in common."""

from libs.contracts import events
from libs.contracts.envelope import (
    Contract,
    Envelope,
    Event,
    all_events,
    envelope_for,
    event_class,
    open_envelope,
)

__all__ = [
    "Contract",
    "Envelope",
    "Event",
    "all_events",
    "envelope_for",
    "event_class",
    "events",
    "open_envelope",
]
