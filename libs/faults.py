"""Whose fault is a failure: the infrastructure's (wait, it will pass) or the message's (park it).

A message must never be parked because the database or the broker was away, and never be retried
for ever because of its own defect. Everything a consumer or a command handler raises goes through
`is_transient`; only the failures listed here are waited out, everything else is the message's.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError, DeliveryError

# PostgreSQL SQLSTATE classes that say "not now", whatever the statement:
# 08 connection exception, 53 insufficient resources, 57P operator intervention (shutdown,
# cannot connect now), 40001/40P01 serialization failure and deadlock (the transaction may simply
# be run again), 55P03 lock not available.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03")


def is_transient(exc: BaseException) -> bool:
    """True for a failure of the infrastructure, not of the message being handled."""
    if isinstance(exc, Transient) or getattr(exc, "transient", False) is True:
        return True
    if isinstance(
        exc,
        OSError  # refused, reset, unreachable; ConnectionError is an OSError
        | TimeoutError
        | asyncio.TimeoutError
        | asyncpg.InterfaceError  # the connection was closed under us
        # A connection the server ended mid-statement (shutting down), handed out again before
        # the driver saw it close: "cannot switch to state ...; another operation is in
        # progress" (asyncpg #1069; SQLAlchemy counts it a disconnect, its #13241).
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError
        | AMQPConnectionError
        | ChannelInvalidStateError
        # A publish the broker nacked: it could not store it now (no leader, queue full).
        | DeliveryError,
    ):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    # `raise Wrapped(...) from exc` keeps the nature of what it wraps.
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_transient(cause)


class Transient(Exception):
    """Raised by a handler that depends on something away right now (e.g. another service)."""
