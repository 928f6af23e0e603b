"""Every command of every queue, fuzzed through the real broker into the real services.

A practice software's broker user sends to the public `<service>.commands` queues through
`dmp.commands`; the internal queues (`access.decide`, `identity.contacts`) are asked by the
service that may ask them, through `dmp.internal`. Each case must end with a clear refusal (a code
from a small set, never `internal_error`, never silence), the queue must still answer `Ping`, and
a refused request must leave every table of every service as it was.

How hypothesis meets the asyncio session loop: see `tests/hostile/harness.py` (examples are drawn
synchronously, then sent concurrently; a failure prints the whole input).
"""

from __future__ import annotations

import asyncpg
import pytest

from libs.bus.rpc import RpcClient
from libs.runtime import Runtime
from tests.hostile import catalog
from tests.hostile.catalog import TARGETS, Target, TokenKind
from tests.hostile.harness import (
    changed,
    draw,
    examples,
    fingerprint,
    ping,
    refusals_outside,
    request_bytes,
    send_all,
    settled,
)
from tests.hostile.strategies import (
    hostile_payloads,
    hostile_tokens,
    malformed_requests,
    refused_by_contract,
)
from tests.support.system import Keys

pytestmark = pytest.mark.hostile

EXAMPLES = examples(30)
# What a refused request may be told. Never `internal_error`, never a timeout.
REFUSED_AT_THE_EDGE = {"malformed_request", "invalid_input"}
# What a request the contract lets through may be told when it is refused further in.
REFUSED_INSIDE = {
    "malformed_request",
    "invalid_input",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "invalid_nir",
    "invalid_nir_key",
    "rate_limited",
    "sign_in_locked",
    "access_denied",
    "access_undecided",
    "space_not_open",
    "space_closed",
    "not_your_box",
    None,  # served: a query that finds nothing is not a failure
}
AUTHENTICATED = [t for t in TARGETS if t.token is not None]


def _rpc(callers: dict[str, RpcClient], target: Target) -> RpcClient:
    return callers[target.caller]


def _token(tokens: dict[TokenKind, str], target: Target) -> str | None:
    return tokens[target.token] if target.token is not None else None


async def test_the_catalog_names_every_command_and_consumer_the_services_register(
    system: dict[str, Runtime],
) -> None:
    commands, events = catalog.registered()
    expected = {q: {t.command for t in TARGETS if t.queue == q} for q in catalog.COMMAND_QUEUES}
    assert commands == expected
    assert {q: set(e) for q, e in events.items()} == {
        q: set(e) for q, e in catalog.EVENT_QUEUES.items()
    }


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_a_payload_the_contract_refuses_is_refused_at_the_edge_and_writes_nothing(
    target: Target,
    callers: dict[str, RpcClient],
    tokens: dict[TokenKind, str],
    admin_db: asyncpg.Connection,
) -> None:
    token = _token(tokens, target)
    bodies = [
        request_bytes(target.command, payload, token)
        for payload in draw(hostile_payloads(target), EXAMPLES)
    ]
    bodies = [b for b in bodies if refused_by_contract(target, b)]
    before = await settled(admin_db)

    outcomes = await send_all(_rpc(callers, target), target.queue, bodies, lambda b: b)

    assert not refusals_outside(outcomes, REFUSED_AT_THE_EDGE)
    assert not changed(before, await fingerprint(admin_db))
    await ping(_rpc(callers, target), target.queue)


@pytest.mark.parametrize("target", AUTHENTICATED, ids=lambda t: t.id)
async def test_a_missing_forged_expired_or_garbage_token_is_refused_and_writes_nothing(
    target: Target,
    callers: dict[str, RpcClient],
    keys: Keys,
    admin_db: asyncpg.Connection,
) -> None:
    """With a payload the contract accepts: only the token stands between it and the effect."""
    cases = draw(hostile_tokens(keys.identity_private), EXAMPLES)
    before = await settled(admin_db)

    outcomes = await send_all(
        _rpc(callers, target),
        target.queue,
        cases,
        lambda token: request_bytes(target.command, target.template, token),
    )

    # A token of the wrong JSON type fails the request's own shape first.
    assert not refusals_outside(outcomes, {"unauthenticated", "malformed_request"})
    assert not changed(before, await fingerprint(admin_db))
    await ping(_rpc(callers, target), target.queue)


@pytest.mark.parametrize("queue", sorted(catalog.COMMAND_QUEUES))
async def test_malformed_requests_and_unknown_commands_are_refused_on_every_queue(
    queue: str,
    callers: dict[str, RpcClient],
    admin_db: asyncpg.Connection,
) -> None:
    target = catalog.COMMAND_QUEUES[queue]
    names = {"Ping", *(t.command for t in TARGETS if t.queue == queue)}
    cases = draw(malformed_requests(names), EXAMPLES)
    before = await settled(admin_db)

    outcomes = await send_all(_rpc(callers, target), queue, cases, lambda b: b)

    assert not refusals_outside(outcomes, {"malformed_request", "unknown_command"})
    assert not changed(before, await fingerprint(admin_db))
    await ping(_rpc(callers, target), queue)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
async def test_a_payload_the_contract_lets_through_is_never_an_internal_error(
    target: Target, callers: dict[str, RpcClient], tokens: dict[TokenKind, str]
) -> None:
    """Fields the contract leaves open (plain `str`) meet the handlers and the database: control
    characters, NUL, non-ASCII digits, huge values must be refused cleanly there too."""
    token = _token(tokens, target)
    bodies = [
        request_bytes(target.command, payload, token)
        for payload in draw(hostile_payloads(target), EXAMPLES * 2)
    ]
    bodies = [b for b in bodies if not refused_by_contract(target, b)]

    outcomes = await send_all(_rpc(callers, target), target.queue, bodies, lambda b: b)

    assert not refusals_outside(outcomes, REFUSED_INSIDE)
    await ping(_rpc(callers, target), target.queue)


# --- pinned cases: inputs that once mattered, checked every run -------------------------------

PINNED = [
    ("access.decide", "Decide", {"ins": "1850575\x00", "action": "read"}),
    ("access.decide", "Decide", {"ins": "１８５０５７５１２３４５６７８", "action": "read"}),
    ("access.commands", "ListPermissions", {"ins": "1850\x00"}),
    ("notifier.commands", "ListAlerts", {"ins": "\x00"}),
    ("retention.commands", "ListDeadlines", {"ins": "1850\x00"}),
    ("retention.commands", "ListDeadlines", {"ins": "é" * 3_000_000}),
    ("access.commands", "AuthorizeProfessional", {"ins": "\x00", "rpps": "\x00"}),
]


@pytest.mark.parametrize(("queue", "command", "payload"), PINNED, ids=lambda v: repr(v)[:40])
async def test_nul_and_foreign_digits_in_open_fields_are_refused_cleanly(
    queue: str,
    command: str,
    payload: dict[str, object],
    callers: dict[str, RpcClient],
    tokens: dict[TokenKind, str],
) -> None:
    target = next(t for t in TARGETS if t.queue == queue and t.command == command)
    outcomes = await send_all(
        _rpc(callers, target),
        queue,
        [payload],
        lambda p: request_bytes(command, p, _token(tokens, target)),
    )
    assert not refusals_outside(outcomes, REFUSED_INSIDE)


@pytest.mark.parametrize("queue", sorted(catalog.COMMAND_QUEUES))
async def test_a_request_of_an_unknown_version_is_refused(
    queue: str, callers: dict[str, RpcClient]
) -> None:
    target = catalog.COMMAND_QUEUES[queue]
    cases = [0, 2, 99, -1]
    outcomes = await send_all(
        _rpc(callers, target), queue, cases, lambda v: request_bytes("Ping", {}, None, version=v)
    )
    # 0 and -1 are not versions at all (malformed); 2 and 99 are versions nobody serves.
    assert not refusals_outside(outcomes, {"malformed_request", "unsupported_version"})
