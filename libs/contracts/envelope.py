"""The envelope every event travels in, and the base of every event payload.

An event on the bus is one JSON document: the envelope fields plus a `payload` whose schema is
named by (`type`, `version`). Payload models are frozen and forbid unknown fields, so a producer
that drifts from the contract is caught at the consumer and dead-lettered with the reason.
Old versions stay registered so that messages still in queues remain readable after an upgrade.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(Contract):
    """Base of every event payload. Subclasses set OWNER, TYPE and VERSION."""

    OWNER: ClassVar[str]
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    @classmethod
    def routing_key(cls) -> str:
        # `<owner>.<event>.v<n>`, e.g. `dossier.document_deposited.v1`
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.TYPE).lower()
        return f"{cls.OWNER}.{snake}.v{cls.VERSION}"


class Envelope(Contract):
    event_id: UUID = Field(default_factory=uuid4)
    type: str
    version: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None
    holder_key: str
    payload: dict[str, Any]


E = TypeVar("E", bound=Event)

_REGISTRY: dict[tuple[str, int], type[Event]] = {}


def register(cls: type[E]) -> type[E]:
    key = (cls.TYPE, cls.VERSION)
    if key in _REGISTRY:
        raise RuntimeError(f"event {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def event_class(type_: str, version: int) -> type[Event]:
    try:
        return _REGISTRY[(type_, version)]
    except KeyError:
        raise LookupError(f"unknown event type {type_} v{version}") from None


def all_events() -> list[type[Event]]:
    return list(_REGISTRY.values())


def envelope_for(
    event: Event,
    *,
    holder_key: str,
    occurred_at: datetime,
    correlation_id: str,
    causation_id: str | None = None,
) -> Envelope:
    return Envelope(
        type=event.TYPE,
        version=event.VERSION,
        occurred_at=occurred_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
        holder_key=holder_key,
        payload=event.model_dump(mode="json"),
    )


def open_envelope(envelope: Envelope) -> Event:
    """The typed payload of an envelope; raises LookupError or pydantic.ValidationError."""
    return event_class(envelope.type, envelope.version).model_validate(envelope.payload)
