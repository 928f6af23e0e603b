"""Whose fault a failure is (libs.faults): the infrastructure's is waited out, the message's is
parked. A broker that nacks a publish could not store it now; it says nothing of the message."""

from __future__ import annotations

import asyncpg
import pytest
from aiormq.exceptions import ConnectionClosed, DeliveryError
from pamqp.commands import Basic
from pydantic import BaseModel, ValidationError

from libs.faults import Transient, is_transient


class _Shape(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    try:
        _Shape.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _wrapped(cause: BaseException) -> Exception:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    "failure",
    [
        # Nacked: a quorum queue without a leader, or full.
        DeliveryError(None, Basic.Nack(delivery_tag=1)),
        ConnectionClosed(320, "CONNECTION_FORCED"),
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.SerializationError(),
        asyncpg.CannotConnectNowError(),
        # Seen at the instant the database shut down (docs/faults.md).
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in"),
        Transient("identity away"),
        _wrapped(DeliveryError(None, Basic.Nack(delivery_tag=1))),
    ],
    ids=repr,
)
def test_a_failure_of_the_infrastructure_is_transient(failure: BaseException) -> None:
    assert is_transient(failure)


@pytest.mark.parametrize(
    "failure",
    [
        ValueError("bad"),
        _validation_error(),
        asyncpg.UniqueViolationError(),
        asyncpg.DataError(),
        KeyError("x"),
        _wrapped(ValueError("bad")),
    ],
    ids=repr,
)
def test_a_defect_of_the_message_is_not_transient(failure: BaseException) -> None:
    assert not is_transient(failure)
