"""The rules of time through all six services: the purge ten years after closure or on request
(RET_01, RET_02), the occupational health part (RET_03), authorizations that end (ACC_14).

This module runs on a database and a vhost of its own, as moving the clock years on must not move
the other modules' clock. What a purge leaves is checked the hard way: every row of every table of
every service's schema is searched for the holder's INS and e-mail address, before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import asyncpg
import pytest

from libs.bus.rpc import RpcClient
from libs.bus.tap import EventTap
from libs.client import Client
from libs.clock import advance, offset, parse_duration
from libs.contracts import commands as cmd
from libs.periods import add_calendar_month, add_calendar_years
from libs.runtime import Runtime
from services.retention.domain import PURGE_PARTICIPANTS
from tests.support import infra
from tests.support.actors import b64, sign_in_holder, sign_in_professional
from tests.support.journey import Cast, SignedIn, Stage, sophie
from tests.support.smtp import SmtpServer
from tests.support.system import SERVICES, Keys, build_service, running_system

pytestmark = pytest.mark.e2e

# Ten calendar years are at most 3653 days (three leap days).
TEN_YEARS_AND_A_BIT = timedelta(days=3653, minutes=1)


@pytest.fixture(scope="module")
def values(
    settings_values: dict[str, Any], own_database_url: str, own_amqp_url: str
) -> dict[str, Any]:
    return {**settings_values, "database_url": own_database_url, "amqp_url": own_amqp_url}


@pytest.fixture(scope="module")
async def system(values: dict[str, Any]) -> AsyncIterator[dict[str, Runtime]]:
    async with running_system(
        values, sweep_interval_seconds=0.2, purge_retry_seconds=60
    ) as runtimes:
        yield runtimes


@pytest.fixture(scope="module")
async def tap(system: dict[str, Runtime], own_amqp_url: str) -> AsyncIterator[EventTap]:
    async with EventTap(own_amqp_url, "#") as tap:
        yield tap


@pytest.fixture(scope="module")
async def client(own_amqp_url: str) -> AsyncIterator[Client]:
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.purge", timeout=10.0)
    await rpc.connect()
    yield Client(rpc)
    await rpc.close()


@pytest.fixture
def stage(
    client: Client, tap: EventTap, smtp: SmtpServer, keys: Keys, own_database_url: str
) -> Stage:
    return Stage(client, tap, smtp.mailbox, keys, own_database_url)


async def mentions(database_url: str, *needles: str) -> dict[str, int]:
    """Rows naming any of `needles`, by `schema.table`, in every service's schema: the row as
    text, and each bytea column as text too (an event in an outbox is JSON in a bytea)."""
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            """SELECT table_schema, table_name,
                      array_agg(column_name::text) FILTER (WHERE data_type = 'bytea') AS blobs
               FROM information_schema.columns
               WHERE table_schema = ANY($1::text[])
               GROUP BY table_schema, table_name""",
            list(SERVICES),
        )
        found: dict[str, int] = {}
        for row in columns:
            name = f'"{row["table_schema"]}"."{row["table_name"]}"'
            texts = ["t::text", *(f"encode(t.\"{c}\", 'escape')" for c in row["blobs"] or [])]
            where = " OR ".join(
                f"strpos({x}, ${i + 1}) > 0" for x in texts for i in range(len(needles))
            )
            found[f"{row['table_schema']}.{row['table_name']}"] = await conn.fetchval(
                f"SELECT count(*) FROM {name} t WHERE {where}", *needles
            )
        return found
    finally:
        await conn.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not in time")
        await asyncio.sleep(0.2)


async def a_life_in_the_space(stage: Stage, cast: Cast) -> None:
    """Everything that leaves a trace somewhere: a deposit, reads, a refusal, messages, alerts."""
    await stage.martin_deposits_the_lab_report(cast)
    await stage.read_once_access_knows(cast.sophie.ins, cast.martin.token)
    await stage.bernard_is_refused_reading(cast)
    await stage.sophie_and_martin_write_to_each_other(cast)
    await stage.tap.wait_for("HolderAlerted", ins=cast.sophie.ins, timeout=30)


async def proof_of(stage: Stage, ins: str) -> cmd.PurgeProof | None:
    operator = await stage.operator()
    proofs = await stage.client.send(cmd.GetPurgeProof(ins=ins), token=operator)
    return proofs.proofs[0] if proofs.proofs else None


async def test_ten_years_after_closure_nothing_of_the_holder_is_left_and_the_ins_is_free__RET_01(
    stage: Stage, own_database_url: str
) -> None:
    cast = await stage.cast()
    ins, email = cast.sophie.ins, cast.sophie.email
    await a_life_in_the_space(stage, cast)
    before = await mentions(own_database_url, ins, email)
    for table in (
        "identity.persons",
        "identity.spaces",
        "access.traces",
        "access.authorizations",
        "dossier.documents",
        "messaging.messages",
        "notifier.alerts",
        "retention.deadlines",
    ):
        assert before[table] > 0, table

    await stage.client.send(cmd.CloseSpace(ins=ins), token=cast.sophie.token)
    await stage.tap.wait_for("SpaceClosed", ins=ins)
    await advance(own_database_url, timedelta(days=9 * 365))
    await asyncio.sleep(1)
    assert await proof_of(stage, ins) is None  # archived, not yet purged

    await advance(own_database_url, TEN_YEARS_AND_A_BIT - timedelta(days=9 * 365))
    proof = await eventually(lambda: _completed(stage, ins), timeout=60)

    after = await mentions(own_database_url, ins, email)
    assert {table: n for table, n in after.items() if n} == {}
    # The proof: every service answered, with what it deleted; it names the INS by a keyed hash.
    assert proof.waiting_for == []
    answers = {a.service: a for a in proof.answers}
    assert set(answers) == {*PURGE_PARTICIPANTS, "retention"}
    assert all(a.skipped is None for a in answers.values())
    assert answers["identity"].rows["persons"] == 1
    # At least what was counted before: alerts and traces may still have been on their way then.
    assert answers["dossier"].rows["documents"] >= before["dossier.documents"]
    assert answers["access"].rows["traces"] >= before["access.traces"]
    assert answers["messaging"].rows["messages"] >= before["messaging.messages"]
    assert answers["notifier"].rows["alerts"] >= before["notifier.alerts"]
    assert answers["retention"].rows["deadlines"] >= 1
    assert ins not in proof.model_dump_json() and email not in proof.model_dump_json()
    assert len(proof.ins_key) == 64

    # The INS is free: registered again, it is a new person with a new space.
    operator = await stage.operator()
    again = await stage.client.send(sophie(ins, f"new.{email}"), token=operator)
    assert again.status == "announced"


async def _completed(stage: Stage, ins: str) -> cmd.PurgeProof | None:
    proof = await proof_of(stage, ins)
    return proof if proof is not None and proof.completed_at is not None else None


async def test_an_express_deletion_request_is_answered_at_once_and_done_within_three_months__RET_02(
    stage: Stage, own_database_url: str
) -> None:
    cast = await stage.cast()
    ins, email = cast.sophie.ins, cast.sophie.email
    await a_life_in_the_space(stage, cast)

    asked = await stage.client.send(cmd.RequestSpaceDeletion(ins=ins), token=cast.sophie.token)
    assert asked.status == "closed"
    assert asked.requested_at < asked.purge_due_at <= add_calendar_months(asked.requested_at, 3)
    await stage.tap.wait_for("SpaceDeletionRequested", ins=ins)

    # The holder sees when: the purge, due then, replaced the ten years of archive.
    async def purge_pending() -> list[cmd.Deadline]:
        listed = await stage.client.send(cmd.ListDeadlines(ins=ins), token=cast.sophie.token)
        return [d for d in listed.deadlines if d.kind == "space_purge" and d.status == "pending"]

    # Once retention has heard both the closure and the request, the sooner purge is the one.
    await eventually(
        lambda: _only_when(purge_pending, lambda p: [d.due_at for d in p] == [asked.purge_due_at])
    )

    await advance(own_database_url, asked.purge_due_at - asked.requested_at + timedelta(minutes=1))
    proof = await eventually(lambda: _completed(stage, ins), timeout=60)
    assert proof.waiting_for == []
    assert proof.completed_at - asked.requested_at < timedelta(days=92)
    after = await mentions(own_database_url, ins, email)
    assert {table: n for table, n in after.items() if n} == {}


def add_calendar_months(moment: datetime, months: int) -> datetime:
    for _ in range(months):
        moment = add_calendar_month(moment)
    return moment


async def test_the_occupational_part_goes_forty_years_after_the_last_visit_the_rest_stays__RET_03(
    stage: Stage, own_database_url: str
) -> None:
    cast = await stage.cast()
    ins = cast.sophie.ins

    async def occupational_visit(token: str) -> cmd.Deposited:
        return await stage.client.send(
            cmd.DepositDocument(
                ins=ins,
                document_type="occupational_health",
                title="Visite d'information et de prévention",
                content_b64=b64(b"aptitude: oui"),
            ),
            token=token,
        )

    first = await occupational_visit(cast.martin.token)
    await stage.martin_deposits_the_lab_report(cast)
    await advance(own_database_url, timedelta(days=400))
    martin = await sign_in_professional(stage.client, cast.martin.pro)
    last = await occupational_visit(martin)
    operator = await stage.operator()

    async def occupational_deadlines() -> list[cmd.Deadline]:
        listed = await stage.client.send(cmd.ListDeadlines(ins=ins), token=operator)
        return [d for d in listed.deadlines if d.kind == "occupational_part"]

    def last_visit_counts(found: list[cmd.Deadline]) -> bool:
        pending = [d for d in found if d.status == "pending"]
        return [d.starts_at for d in pending] == [last.deposited_at] and len(found) == 2

    deadlines = await eventually(lambda: _only_when(occupational_deadlines, last_visit_counts))
    [pending] = [d for d in deadlines if d.status == "pending"]
    assert pending.due_at == add_calendar_years(last.deposited_at, 40)

    # Thirty-nine years after the last visit, still kept; forty, gone, and nothing else.
    await advance(own_database_url, parse_duration("39y", last.deposited_at))
    await asyncio.sleep(1)
    assert stage.tap.of_type("DocumentDeleted", ins=ins) == []
    await advance(own_database_url, parse_duration("1y", pending.due_at) + timedelta(minutes=1))
    deleted = await stage.tap.wait_for("DocumentDeleted", count=2, ins=ins, timeout=30)
    assert {e["payload"]["document_id"] for e in deleted} == {
        str(first.document_id),
        str(last.document_id),
    }
    conn = await asyncpg.connect(own_database_url)
    try:
        kept = await conn.fetch("SELECT document_type FROM dossier.documents WHERE ins = $1", ins)
    finally:
        await conn.close()
    assert [r["document_type"] for r in kept] == ["lab_report"]


async def test_a_time_limited_authorization_ends_by_itself_and_the_holder_sees_when__ACC_14__RET_04(
    stage: Stage, own_database_url: str
) -> None:
    cast = await stage.cast()
    ins, sophie_token = cast.sophie.ins, cast.sophie.token
    bernard = cast.bernard.pro.rpps
    shared_now = datetime.now(UTC) + await offset(own_database_url)
    until = (shared_now + timedelta(days=2)).replace(microsecond=0)
    await stage.client.send(
        cmd.AuthorizeProfessional(ins=ins, rpps=bernard, until=until), token=sophie_token
    )
    await stage.read_once_access_knows(ins, cast.bernard.token)

    async def ends() -> list[cmd.Deadline]:
        listed = await stage.client.send(cmd.ListDeadlines(ins=ins), token=sophie_token)
        return [d for d in listed.deadlines if d.kind == "authorization_end"]

    [pending] = await eventually(ends)
    assert (pending.status, pending.due_at, pending.subject) == (
        "pending",
        until,
        f"professional:{bernard}",
    )

    await advance(own_database_url, timedelta(days=3))
    sophie_token = await sign_in_holder(stage.client, stage.mailbox, ins, cast.sophie.email)
    bernard_token = await sign_in_professional(stage.client, cast.bernard.pro)
    [ended] = await eventually(
        lambda: _only_when(ends, lambda found: [d.status for d in found] == ["fired"])
    )
    assert ended.fired_at is not None and ended.fired_at >= until
    refused = await stage.bernard_is_refused_reading(
        Cast(cast.sophie, cast.martin, SignedIn(cast.bernard.pro, bernard_token))
    )
    assert refused.rule == "ACC_05"

    async def gone_from_permissions() -> bool:
        view = await stage.client.send(cmd.ListPermissions(ins=ins), token=sophie_token)
        return bernard not in [a.rpps for a in view.authorized]

    await eventually(gone_from_permissions)


async def test_a_service_away_during_the_purge_is_asked_again_and_purges_when_back__RET_01(
    stage: Stage,
    system: dict[str, Runtime],
    values: dict[str, Any],
    own_database_url: str,
    own_amqp_url: str,
) -> None:
    cast = await stage.cast()
    ins = cast.sophie.ins
    await a_life_in_the_space(stage, cast)
    await stage.client.send(cmd.CloseSpace(ins=ins), token=cast.sophie.token)
    await stage.tap.wait_for("SpaceClosed", ins=ins)

    await system["messaging"].stop()
    try:
        await advance(own_database_url, TEN_YEARS_AND_A_BIT)
        waiting = await eventually(lambda: _waiting_only_for(stage, ins, ["messaging"]), 60)
        assert waiting.completed_at is None and waiting.requests == 1
        # Worse than away: its request is lost (an operator purged the queue by mistake).
        async with await aio_pika.connect(own_amqp_url) as connection:
            channel = await connection.channel()
            queue = await channel.get_queue("messaging.purges", ensure=True)
            await queue.purge()
    finally:
        back = build_service("messaging", values)
        await back.start()
    await asyncio.sleep(1)
    assert (await proof_of(stage, ins)).completed_at is None  # type: ignore[union-attr]
    # Past the retry delay, retention asks messaging, and only messaging, again.
    await advance(own_database_url, timedelta(minutes=2))
    try:
        proof = await eventually(lambda: _completed(stage, ins), timeout=60)
    finally:
        await back.stop()  # the module's last test: the system stops without it
    assert proof.requests == 2
    [_retry_for_messaging_only] = [
        e
        for e in stage.tap.of_type("HolderPurgeRequested", ins=ins)
        if e["payload"]["services"] == ["messaging"]
    ]
    assert proof.waiting_for == []
    assert (await mentions(own_database_url, ins))["messaging.messages"] == 0


async def _waiting_only_for(stage: Stage, ins: str, services: list[str]) -> cmd.PurgeProof | None:
    proof = await proof_of(stage, ins)
    return proof if proof is not None and proof.waiting_for == services else None


async def _only_when(get: Callable[[], Awaitable[Any]], good: Callable[[Any], bool]) -> Any:
    found = await get()
    return found if good(found) else None
