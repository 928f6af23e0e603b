"""dossier against real PostgreSQL and RabbitMQ.

The access service is played by a stand-in that answers `access.decide` on the real broker, as
the real one would (same quorum queue, reply to the caller's reply-to with its correlation id),
so each test chooses the decision. The module runs on a vhost and a database of its own: the
stand-in never competes with a real access service another module may be running, and no other
dossier's outbox relay publishes this module's events elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import pytest

from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.commands import DOSSIER
from libs.contracts.events import SpaceActivated, SpaceClosed, SpaceOpened
from libs.contracts.rpc import Reply, Request
from libs.runtime import Runtime
from libs.tokens import b64d
from services.dossier import domain
from services.dossier import repository as dossier_repository
from tests.support import infra, tokens
from tests.support.access_stand_in import AccessStandIn, Policy, deny, grant
from tests.support.actors import b64
from tests.support.bus import EventTap, publish_event
from tests.support.people import new_nir, new_rpps
from tests.support.system import Keys, build_service

pytestmark = pytest.mark.integration

MAX_DOCUMENT = 64 * 1024
READ_BUDGET = 256 * 1024


@dataclass
class Running:
    runtime: Runtime


@pytest.fixture(scope="module")
def dossier_values(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> dict[str, Any]:
    return {
        **settings_values,
        "amqp_url": own_amqp_url,
        "database_url": own_database_url,
        "rpc_timeout_seconds": 1.0,
        # Small, so that the cap and the pages are seen with small documents.
        "max_document_bytes": MAX_DOCUMENT,
        "read_reply_budget_bytes": READ_BUDGET,
        "part_bytes": 16 * 1024,
    }


@pytest.fixture(scope="module")
async def dossier(dossier_values: dict[str, Any]) -> AsyncIterator[Running]:
    running = Running(build_service("dossier", dossier_values))
    await running.runtime.start()
    yield running
    await running.runtime.stop()


@pytest.fixture(scope="module")
async def client(own_amqp_url: str) -> AsyncIterator[Client]:
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.dossier", timeout=10.0)
    await rpc.connect()
    yield Client(rpc)
    await rpc.close()


@pytest.fixture
async def access(own_amqp_url: str, dossier: Running) -> AsyncIterator[AccessStandIn]:
    stand_in = AccessStandIn(own_amqp_url)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture(scope="module")
async def db(own_database_url: str, dossier: Running) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(own_database_url)
    yield conn
    await conn.close()


def token_for(
    runtime: Runtime,
    keys: Keys,
    *,
    sub: str | None = None,
    kind: Literal["holder", "professional"] = "professional",
    name: str = "Claire Martin",
) -> str:
    """A physician's token by default (a new RPPS each time)."""
    return tokens.token_for(
        keys.identity_private,
        sub=sub or new_rpps(),
        kind=kind,
        name=name,
        profession="physician" if kind == "professional" else None,
        now=runtime.now(),
    )


def content_key(values: dict[str, Any]) -> bytes:
    return b64d(values["dossier_content_key"])


def sensitive(label: str) -> bytes:
    """A recognisable document body, different in every test."""
    return f"%PDF-1.7 {label}: HbA1c 6.1 %, glycemie 1.02 g/L [{secrets.token_hex(8)}]".encode()


async def documents_of(db: asyncpg.Connection, ins: str) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT * FROM dossier.documents WHERE ins = $1 ORDER BY seq", ins))


async def outbox_of(db: asyncpg.Connection, ins: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM dossier.outbox"
            " WHERE convert_from(body, 'UTF8')::jsonb ->> 'holder_key' = $1",
            ins,
        )
    )


# --- deposit ----------------------------------------------------------------------------------


async def test_granted_deposit_is_stored_encrypted_and_announced_without_content__DOC_11__DOC_02(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
    own_amqp_url: str,
    dossier_values: dict[str, Any],
) -> None:
    ins, rpps = new_nir(), new_rpps()
    token = token_for(dossier.runtime, keys, sub=rpps, name="Claire Martin")
    content = sensitive("lab")
    encoded = base64.b64encode(content).decode()
    access.policy = grant(rule="ACC_06")
    async with EventTap(own_amqp_url, "dossier.#") as tap:
        result = await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="Bilan sanguin", content_b64=b64(content)
            ),
            token=token,
        )
        announced = await tap.wait_for("DocumentDeposited", ins=ins)

    # access was asked, on the caller's behalf, about this very deposit
    [asked] = access.for_holder(ins)
    assert asked.command == "Decide"
    assert asked.token == token
    assert asked.payload == {
        "ins": ins,
        "action": "deposit",
        "document_type": "lab_report",
        "emergency": False,
    }
    assert result.rule == "ACC_06"

    [row] = await documents_of(db, ins)
    assert row["document_id"] == result.document_id
    assert (row["author_id"], row["author_name"], row["decision_rule"]) == (
        rpps,
        "Claire Martin",
        "ACC_06",
    )
    assert row["masked"] is False
    # Neither the content nor the title is anywhere in the row in clear.
    stored = b"".join(bytes(v) for v in row.values() if isinstance(v, bytes))
    assert content not in stored and encoded.encode() not in stored
    assert b"HbA1c" not in stored and b"Bilan" not in stored
    assert "Bilan" not in json.dumps([str(v) for v in row.values()])
    # ... both AES-256-GCM bound to this document of this holder, under a key of its own
    # (wrapped by the service's master key, named by its id), each under its own nonce
    master = content_key(dossier_values)
    assert row["key_id"] == "k1" and master not in bytes(row["wrapped_key"])
    data_key = domain.unwrap_key(
        {"k1": master},
        domain.WrappedKey("k1", row["key_nonce"], row["wrapped_key"]),
        row["document_id"],
        ins,
    )
    assert data_key != master
    assert domain.unseal(
        data_key, row["nonce"], bytes(row["content"]), row["document_id"], ins
    ) == (content)
    assert row["title_nonce"] != row["nonce"]
    assert (
        domain.unseal_title(
            data_key, row["title_nonce"], row["title_sealed"], row["document_id"], ins
        )
        == "Bilan sanguin"
    )
    assert (row["size"], bytes(row["content_sha256"])) == (
        len(content),
        hashlib.sha256(content).digest(),
    )

    [event] = announced
    assert (event["holder_key"], event["version"]) == (ins, 2)
    assert set(event["payload"]) == {
        "document_id",
        "ins",
        "document_type",
        "author_kind",
        "author_id",
        "author_name",
        "deposited_at",
        "prescriber_id",  # MSG_02: an id, None when the deposit names no prescriber
    }
    assert event["payload"]["prescriber_id"] is None
    assert event["payload"]["document_id"] == str(result.document_id)
    assert event["payload"]["author_id"] == rpps
    assert event["payload"]["author_name"] == "Claire Martin"  # a professional's: public
    as_text = json.dumps(event)
    assert encoded not in as_text and "HbA1c" not in as_text and "Bilan" not in as_text


async def test_a_deposit_names_its_prescriber_kept_and_announced_by_id_only__MSG_02(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
    own_amqp_url: str,
) -> None:
    ins, rpps, prescriber = new_nir(), new_rpps(), new_rpps()
    token = token_for(dossier.runtime, keys, sub=rpps, name="Claire Martin")
    access.policy = grant(rule="ACC_06")
    async with EventTap(own_amqp_url, "dossier.#") as tap:
        await client.send(
            cmd.DepositDocument(
                ins=ins,
                document_type="lab_report",
                title="Bilan sanguin",
                content_b64=b64(sensitive("lab")),
                prescriber_id=prescriber,
            ),
            token=token,
        )
        [event] = await tap.wait_for("DocumentDeposited", ins=ins)
    [row] = await documents_of(db, ins)
    assert row["prescriber_id"] == prescriber
    assert event["payload"]["prescriber_id"] == prescriber and "Bilan" not in json.dumps(event)


async def test_a_holders_deposit_announces_no_name_of_theirs__DOC_05(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    keys: Keys,
    own_amqp_url: str,
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys, sub=ins, kind="holder", name="Sophie Leroy")
    async with EventTap(own_amqp_url, "dossier.#") as tap:
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="holder_document", title="Photo", content_b64=b64(b"img")
            ),
            token=token,
        )
        [event] = await tap.wait_for("DocumentDeposited", ins=ins)
    assert (event["payload"]["author_kind"], event["payload"]["author_name"]) == ("holder", None)
    assert "Sophie" not in json.dumps(event)


async def test_two_deposits_of_the_same_content_are_sealed_differently__DOC_11(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    content = sensitive("twice")
    for _ in range(2):
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="prescription", title="O", content_b64=b64(content)
            ),
            token=token,
        )
    first, second = await documents_of(db, ins)
    assert first["nonce"] != second["nonce"]
    assert bytes(first["content"]) != bytes(second["content"])


async def test_denied_deposit_stores_nothing_and_publishes_nothing__ACC_08(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
    own_amqp_url: str,
) -> None:
    blocked_ins, other_ins = new_nir(), new_nir()
    token = token_for(dossier.runtime, keys)
    async with EventTap(own_amqp_url, "dossier.#") as tap:
        access.policy = deny(rule="ACC_08", reason="the holder blocked this professional")
        with pytest.raises(RpcError) as refused:
            await client.send(
                cmd.DepositDocument(
                    ins=blocked_ins, document_type="lab_report", title="T", content_b64=b64(b"x")
                ),
                token=token,
            )
        # A later granted deposit is published: an event of the denied one would be before it.
        access.policy = grant()
        await client.send(
            cmd.DepositDocument(
                ins=other_ins, document_type="lab_report", title="T", content_b64=b64(b"y")
            ),
            token=token,
        )
        await tap.wait_for("DocumentDeposited", ins=other_ins)
        assert tap.of_type("DocumentDeposited", ins=blocked_ins) == []
    assert refused.value.code == "access_denied"
    assert "ACC_08" in refused.value.message and "blocked" in refused.value.message
    assert await documents_of(db, blocked_ins) == []
    assert await outbox_of(db, blocked_ins) == []


async def test_access_timing_out_is_a_denial_and_stores_nothing(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    await access.stop()  # the queue is there, nobody answers
    started = time.monotonic()
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="T", content_b64=b64(b"x")
            ),
            token=token,
        )
    assert refused.value.code == "access_undecided"
    assert "timeout" in refused.value.message
    assert time.monotonic() - started < 5.0  # the dossier's own 1 s deadline, not the client's
    with pytest.raises(RpcError) as not_read:
        await client.send(cmd.ReadDossier(ins=ins), token=token)
    assert not_read.value.code == "access_undecided"
    assert await documents_of(db, ins) == []
    assert await outbox_of(db, ins) == []


async def test_access_unavailable_is_a_denial_and_stores_nothing(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    await access.stop()
    await access.delete_queue()
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="T", content_b64=b64(b"x")
            ),
            token=token,
        )
    assert refused.value.code == "access_undecided"
    assert "unavailable" in refused.value.message
    assert await documents_of(db, ins) == []
    assert await outbox_of(db, ins) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"content_b64": "not base64!"}, "base64"),
        ({"content_b64": ""}, "empty"),
        ({"document_type": "horoscope"}, "unknown document type"),
        ({"title": ""}, "title"),
        ({"ins": None}, "ins"),
        ({"title": "Bilan\x00"}, "U+0000"),
        ({"title": "Bilan\u202e"}, "U+202E"),
        ({"title": "\x1b[2J"}, "title"),
        ({"media_type": "application/pdf\x00"}, "media_type"),
        ({"media_type": "a/" + "b" * 200}, "media_type"),
        ({"media_type": "text/plain; charset=utf-8"}, "media_type"),
        ({"ins": "１８５０５７５１２３４５６７８"}, "ins"),
        ({"content_b64": base64.b64encode(b"x" * (MAX_DOCUMENT + 1)).decode()}, "limit"),
    ],
)
async def test_malformed_deposit_gets_a_clear_invalid_input_error__DOC_01(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
    change: dict[str, Any],
    expected: str,
) -> None:
    ins = new_nir()
    payload = {
        "ins": ins,
        "document_type": "lab_report",
        "title": "Bilan",
        "content_b64": base64.b64encode(b"ok").decode(),
        **change,
    }
    with pytest.raises(RpcError) as refused:
        await client.rpc.call(
            DOSSIER, "DepositDocument", payload, token=token_for(dossier.runtime, keys)
        )
    assert refused.value.code == "invalid_input"
    assert expected in refused.value.message
    # Refused before anyone was asked: no access trace, no alert (an access that did not happen).
    assert access.for_holder(ins) == []
    assert await documents_of(db, ins) == []


async def test_a_document_at_the_cap_is_accepted__DOC_01(
    client: Client, dossier: Running, access: AccessStandIn, keys: Keys
) -> None:
    ins = new_nir()
    content = secrets.token_bytes(MAX_DOCUMENT)
    token = token_for(dossier.runtime, keys)
    await client.send(
        cmd.DepositDocument(
            ins=ins, document_type="lab_report", title="Gros", content_b64=b64(content)
        ),
        token=token,
    )
    [document] = (await client.send(cmd.ReadDossier(ins=ins), token=token)).documents
    assert base64.b64decode(document.content_b64) == content


async def test_a_request_without_a_valid_token_is_refused_and_access_not_asked(
    client: Client, dossier: Running, access: AccessStandIn
) -> None:
    ins = new_nir()
    for token in (None, "forged.token"):
        with pytest.raises(RpcError) as refused:
            await client.rpc.call(
                DOSSIER,
                "DepositDocument",
                {"ins": ins, "document_type": "lab_report", "title": "T", "content_b64": "eA=="},
                token=token,
            )
        assert refused.value.code == "unauthenticated"
        with pytest.raises(RpcError) as not_read:
            await client.rpc.call(DOSSIER, "ReadDossier", {"ins": ins}, token=token)
        assert not_read.value.code == "unauthenticated"
    assert access.for_holder(ins) == []


# --- read -------------------------------------------------------------------------------------


async def test_read_returns_only_the_types_in_scope_newest_first_decrypted__ACC_07__DOC_06(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
) -> None:
    ins = new_nir()
    author = token_for(dossier.runtime, keys, name="Paul Durand")
    reader = token_for(dossier.runtime, keys)
    contents = {name: sensitive(name) for name in ("lab1", "rx", "lab2", "lab3")}
    ids = {}
    for name, document_type in (
        ("lab1", "lab_report"),
        ("rx", "prescription"),
        ("lab2", "lab_report"),
        ("lab3", "lab_report"),
    ):
        done = await client.send(
            cmd.DepositDocument(
                ins=ins, document_type=document_type, title=name, content_b64=b64(contents[name])
            ),
            token=author,
        )
        ids[done.document_id] = name
    lab2 = next(document_id for document_id, name in ids.items() if name == "lab2")
    holder = token_for(dossier.runtime, keys, sub=ins, kind="holder")
    await client.send(cmd.MaskDocument(ins=ins, document_id=lab2), token=holder)
    assert access.requests[-1].payload["action"] == "mask"  # access decided it

    async def read(policy: Policy) -> tuple[str, list[str]]:
        access.policy = policy
        result = await client.send(cmd.ReadDossier(ins=ins), token=reader)
        for item in result.documents:
            name = ids[item.document_id]
            assert item.title == name
            assert base64.b64decode(item.content_b64) == contents[name]
            assert item.author_name == "Paul Durand"
        return result.rule, [item.title for item in result.documents]

    assert await read(grant(["lab_report"], rule="ACC_07")) == ("ACC_07", ["lab3", "lab1"])
    assert await read(grant(["prescription"])) == ("ACC_06", ["rx"])
    assert await read(grant(["vaccination"])) == ("ACC_06", [])
    assert await read(grant(["*"])) == ("ACC_06", ["lab3", "rx", "lab1"])
    assert await read(grant(["*"], include_masked=True, rule="ACC_04")) == (
        "ACC_04",
        ["lab3", "lab2", "rx", "lab1"],
    )
    asked = [r.payload for r in access.for_holder(ins) if r.payload["action"] == "read"]
    assert asked and all(p == {"ins": ins, "action": "read", "emergency": False} for p in asked)


async def test_a_read_comes_in_pages_newest_first_each_asked_of_access__ACC_03(
    client: Client, dossier: Running, access: AccessStandIn, keys: Keys
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    deposited = [
        (
            await client.send(
                cmd.DepositDocument(
                    ins=ins, document_type="lab_report", title=f"n{i}", content_b64=b64(b"x")
                ),
                token=token,
            )
        ).document_id
        for i in range(5)
    ]
    asked_before = len(access.for_holder(ins))
    pages, cursor = [], None
    while True:
        page = await client.send(cmd.ReadDossier(ins=ins, cursor=cursor, page_size=2), token=token)
        pages.append([d.title for d in page.documents])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [["n4", "n3"], ["n2", "n1"], ["n0"]]
    assert len(access.for_holder(ins)) == asked_before + 3  # each page is an access
    assert len(deposited) == 5


async def test_a_read_reply_stays_within_its_byte_budget_and_a_cursor_gives_the_rest(
    client: Client, dossier: Running, access: AccessStandIn, keys: Keys
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    contents = [secrets.token_bytes(MAX_DOCUMENT - 100) for _ in range(5)]
    for i, content in enumerate(contents):
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title=f"g{i}", content_b64=b64(content)
            ),
            token=token,
        )
    seen: list[bytes] = []
    cursor = None
    pages = 0
    while True:
        payload: dict[str, Any] = {"ins": ins} | ({"cursor": cursor} if cursor else {})
        raw = await client.rpc.call_raw(
            DOSSIER,
            Request(
                command="ReadDossier",
                token=token,
                correlation_id=uuid.uuid4().hex,
                payload=payload,
            )
            .model_dump_json()
            .encode(),
        )
        assert len(raw) <= READ_BUDGET + 1024  # the reply's own envelope
        page = Reply.model_validate_json(raw).result
        assert page is not None
        pages += 1
        seen += [base64.b64decode(d["content_b64"]) for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages > 1  # the default page size (20) would have taken all five
    assert seen == contents[::-1]


@pytest.mark.parametrize("cursor", ["nope", "djE6MTI6eA", "A" * 81])
async def test_a_cursor_it_did_not_give_is_refused_before_access_is_asked(
    client: Client, dossier: Running, access: AccessStandIn, keys: Keys, cursor: str
) -> None:
    ins = new_nir()
    with pytest.raises(RpcError) as refused:
        # Raw, as a hostile client sends it: the contract would refuse the long one before.
        await client.rpc.call(
            DOSSIER,
            "ReadDossier",
            {"ins": ins, "cursor": cursor},
            token=token_for(dossier.runtime, keys),
        )
    assert refused.value.code == "invalid_input"
    assert access.for_holder(ins) == []


async def test_denied_read_returns_an_error_and_no_document_data__ACC_08(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    keys: Keys,
) -> None:
    ins = new_nir()
    content = sensitive("denied-read")
    await client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="lab_report",
            title="Serologie confidentielle",
            content_b64=b64(content),
        ),
        token=token_for(dossier.runtime, keys),
    )
    access.policy = deny(rule="ACC_08", reason="the holder blocked this professional")
    request = Request(
        command="ReadDossier",
        token=token_for(dossier.runtime, keys),
        correlation_id=uuid.uuid4().hex,
        payload={"ins": ins},
    )
    raw = await client.rpc.call_raw(DOSSIER, request.model_dump_json().encode())
    reply = Reply.model_validate_json(raw)
    assert reply.ok is False and reply.result is None
    assert reply.error is not None and reply.error.code == "access_denied"
    assert "ACC_08" in reply.error.message
    for leak in (content, base64.b64encode(content), b"Serologie", b"lab_report"):
        assert leak not in raw


async def test_a_deposit_survives_a_restart_of_the_service__DOC_11(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    keys: Keys,
    dossier_values: dict[str, Any],
) -> None:
    ins = new_nir()
    content = sensitive("restart")
    done = await client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="discharge_letter",
            title="Lettre de sortie",
            content_b64=b64(content),
            media_type="text/plain",
        ),
        token=token_for(dossier.runtime, keys),
    )
    await dossier.runtime.stop()
    dossier.runtime = build_service("dossier", dossier_values)
    await dossier.runtime.start()

    result = await client.send(cmd.ReadDossier(ins=ins), token=token_for(dossier.runtime, keys))
    [document] = result.documents
    assert document.document_id == done.document_id
    assert document.media_type == "text/plain"
    assert base64.b64decode(document.content_b64) == content


# --- the space's lifecycle --------------------------------------------------------------------


async def space_status(db: asyncpg.Connection, ins: str) -> str | None:
    status: str | None = await db.fetchval(
        "SELECT status FROM dossier.space_lifecycle WHERE ins = $1", ins
    )
    return status


async def wait_for_status(db: asyncpg.Connection, ins: str, status: str) -> None:
    async with asyncio.timeout(15):
        while await space_status(db, ins) != status:
            await asyncio.sleep(0.05)


async def test_after_space_closed_deposits_are_refused_before_asking_access__RET_05__ACC_17(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
    own_amqp_url: str,
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    now = dossier.runtime.now()
    await publish_event(
        own_amqp_url,
        SpaceOpened(ins=ins, opened_at=now - timedelta(days=1)),
        holder_key=ins,
        occurred_at=now - timedelta(days=1),
    )
    await wait_for_status(db, ins, "open")
    await client.send(
        cmd.DepositDocument(
            ins=ins, document_type="lab_report", title="before", content_b64=b64(b"x")
        ),
        token=token,
    )

    await publish_event(
        own_amqp_url,
        SpaceClosed(ins=ins, closed_at=now, requested_by=f"holder:{ins}"),
        holder_key=ins,
        occurred_at=now,
    )
    await wait_for_status(db, ins, "closed")
    asked_before = len(access.for_holder(ins))
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="after", content_b64=b64(b"y")
            ),
            token=token,
        )
    assert refused.value.code == "space_closed"
    assert "closed" in refused.value.message
    with pytest.raises(RpcError) as not_read:
        await client.send(cmd.ReadDossier(ins=ins), token=token)
    assert not_read.value.code == "space_closed"
    assert len(access.for_holder(ins)) == asked_before  # refused without asking access
    assert len(await documents_of(db, ins)) == 1  # the one deposited before

    # An opening older than the closure, delivered late, does not reopen the space.
    late = await publish_event(
        own_amqp_url,
        SpaceOpened(ins=ins, opened_at=now - timedelta(hours=1)),
        holder_key=ins,
        occurred_at=now - timedelta(hours=1),
    )
    async with asyncio.timeout(15):
        while not await db.fetchval(
            "SELECT count(*) FROM dossier.inbox WHERE consumer = $1 AND message_id = $2",
            "dossier.space-lifecycle",
            late,
        ):
            await asyncio.sleep(0.05)
    assert await space_status(db, ins) == "closed"
    with pytest.raises(RpcError) as still_refused:
        await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="late", content_b64=b64(b"z")
            ),
            token=token,
        )
    assert still_refused.value.code == "space_closed"


# --- the former DMP's record (SPC_08) ---------------------------------------------------------


def _legacy(ins: str, export_id: str, contents: dict[str, bytes]) -> cmd.ImportLegacyRecord:
    return cmd.ImportLegacyRecord(
        ins=ins,
        export_id=export_id,
        exported_at=datetime(2021, 6, 30, tzinfo=UTC),
        documents=[
            cmd.LegacyDocument(
                legacy_id=legacy_id,
                document_type="vaccination",
                title=f"Vaccin {legacy_id}",
                media_type="application/pdf",
                content_b64=b64(content),
                authored_at=datetime(2019, 3, 4, 10, 0, tzinfo=UTC),
                author_name="Dr Ancien",
            )
            for legacy_id, content in contents.items()
        ],
    )


async def test_a_former_record_waits_for_activation_then_is_served_unchanged__SPC_08(
    client: Client,
    dossier: Running,
    access: AccessStandIn,
    db: asyncpg.Connection,
    keys: Keys,
    own_amqp_url: str,
) -> None:
    ins = new_nir()
    operator = tokens.token_for(
        keys.identity_private, sub="agent", kind="operator", now=dossier.runtime.now()
    )
    holder = token_for(dossier.runtime, keys, sub=ins, kind="holder")
    contents = {"DMP-1": sensitive("dtp"), "DMP-2": sensitive("ror")}
    access.policy = grant(rule="ACC_01", include_masked=True)
    async with EventTap(own_amqp_url, "dossier.#") as tap:
        imported = await client.send(_legacy(ins, "EXP-1", contents), token=operator)
        assert (imported.imported, imported.already_there, imported.status) == (2, 0, "staged")
        announced = await tap.wait_for("LegacyRecordImported", ins=ins)
    assert announced[0]["payload"]["documents"] == 2
    assert "Vaccin" not in json.dumps(announced[0]) and "Ancien" not in json.dumps(announced[0])
    assert access.for_holder(ins) == []  # the operator writes, never reads: access not asked
    # Not served before the holder activates the space.
    assert (await client.send(cmd.ReadDossier(ins=ins), token=holder)).documents == []

    await publish_event(
        own_amqp_url,
        SpaceActivated(ins=ins, activated_at=dossier.runtime.now()),
        holder_key=ins,
        occurred_at=dossier.runtime.now(),
    )
    async with asyncio.timeout(15):
        while await db.fetchval(
            "SELECT count(*) FROM dossier.documents WHERE ins = $1 AND staged", ins
        ):
            await asyncio.sleep(0.05)
    page = await client.send(cmd.ReadDossier(ins=ins), token=holder)
    served = {d.title: d for d in page.documents}
    assert set(served) == {"Vaccin DMP-1", "Vaccin DMP-2"}
    for legacy_id, content in contents.items():
        document = served[f"Vaccin {legacy_id}"]
        assert base64.b64decode(document.content_b64) == content
        assert document.author_name == "Dr Ancien"
        assert document.deposited_at == datetime(2019, 3, 4, 10, 0, tzinfo=UTC)
    hashes = {r["legacy_id"]: bytes(r["content_sha256"]) for r in await documents_of(db, ins)}
    assert hashes == {k: hashlib.sha256(v).digest() for k, v in contents.items()}

    # After activation, a further import is served at once.
    later = await client.send(_legacy(ins, "EXP-2", {"DMP-3": sensitive("hpv")}), token=operator)
    assert later.status == "imported"


async def test_a_former_record_imported_twice_is_there_once_and_never_altered__SPC_08(
    client: Client, dossier: Running, db: asyncpg.Connection, keys: Keys
) -> None:
    ins = new_nir()
    operator = tokens.token_for(
        keys.identity_private, sub="agent", kind="operator", now=dossier.runtime.now()
    )
    contents = {"DMP-1": sensitive("a"), "DMP-2": sensitive("b")}
    await client.send(_legacy(ins, "EXP-1", contents), token=operator)
    again = await client.send(_legacy(ins, "EXP-1", contents), token=operator)
    assert (again.imported, again.already_there) == (0, 2)
    altered = {**contents, "DMP-2": sensitive("changed"), "DMP-9": sensitive("new")}
    with pytest.raises(RpcError) as refused:
        await client.send(_legacy(ins, "EXP-1", altered), token=operator)
    assert refused.value.code == "conflict"
    assert len(await documents_of(db, ins)) == 2  # nothing of the refused request


async def test_only_the_operator_imports_a_former_record_and_bad_input_writes_nothing__SPC_08(
    client: Client, dossier: Running, db: asyncpg.Connection, keys: Keys
) -> None:
    ins = new_nir()
    operator = tokens.token_for(
        keys.identity_private, sub="agent", kind="operator", now=dossier.runtime.now()
    )
    with pytest.raises(RpcError) as forbidden:
        await client.send(
            _legacy(ins, "EXP-1", {"DMP-1": b"x"}),
            token=token_for(dossier.runtime, keys, sub=ins, kind="holder"),
        )
    assert forbidden.value.code == "forbidden"
    good = _legacy(ins, "EXP-1", {"DMP-1": b"ok", "DMP-2": b"ok too"})
    broken = [
        good.documents[1].model_copy(update={"content_b64": "@@not base64@@"}),
        good.documents[1].model_copy(update={"content_b64": ""}),
        good.documents[1].model_copy(update={"document_type": "insurance_claim"}),
        good.documents[1].model_copy(update={"content_b64": b64(b"x" * (MAX_DOCUMENT + 1))}),
    ]
    for document in broken:
        with pytest.raises(RpcError) as refused:
            await client.send(
                good.model_copy(update={"documents": [good.documents[0], document]}),
                token=operator,
            )
        assert refused.value.code == "invalid_input", document
    assert await documents_of(db, ins) == []


async def test_a_listing_filters_by_type_period_and_author_and_one_document_is_fetched__ACC_07(
    client: Client, dossier: Running, access: AccessStandIn, keys: Keys
) -> None:
    ins = new_nir()
    martin, bernard = new_rpps(), new_rpps()
    by = {
        martin: token_for(dossier.runtime, keys, sub=martin, name="Martin"),
        bernard: token_for(dossier.runtime, keys, sub=bernard, name="Bernard"),
    }
    ids: dict[str, Any] = {}
    start = dossier.runtime.now()
    for name, document_type, author in (
        ("lab", "lab_report", martin),
        ("rx", "prescription", bernard),
        ("img", "imaging_report", martin),
    ):
        done = await client.send(
            cmd.DepositDocument(
                ins=ins, document_type=document_type, title=name, content_b64=b64(sensitive(name))
            ),
            token=by[author],
        )
        ids[name] = done.document_id
    reader = token_for(dossier.runtime, keys)
    access.policy = grant(["lab_report", "prescription"])

    async def titles(**filters: Any) -> list[str | None]:
        page = await client.send(cmd.ReadDossier(ins=ins, **filters), token=reader)
        return [d.title for d in page.documents]

    assert await titles() == ["rx", "lab"]
    assert await titles(document_types=["lab_report", "imaging_report"]) == ["lab"]  # in scope only
    assert await titles(author_id=bernard) == ["rx"]
    assert await titles(since=start) == ["rx", "lab"]
    assert await titles(until=start) == []

    one = await client.send(cmd.GetDocument(ins=ins, document_id=ids["lab"]), token=reader)
    assert (one.title, base64.b64decode(one.content_b64)[:12]) == ("lab", sensitive("lab")[:12])
    for hidden in (ids["img"], uuid.uuid4()):  # out of scope, or no such document: the same
        with pytest.raises(RpcError) as refused:
            await client.send(cmd.GetDocument(ins=ins, document_id=hidden), token=reader)
        assert refused.value.code == "not_found"


async def test_the_care_history_is_shown_for_its_last_24_months__DOC_08(
    client: Client, dossier: Running, access: AccessStandIn, db: asyncpg.Connection, keys: Keys
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    ids = []
    for title in ("recent", "old"):
        done = await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="care_history", title=title, content_b64=b64(b"soins")
            ),
            token=token,
        )
        ids.append(done.document_id)
    now = dossier.runtime.now()
    for document_id, age in zip(ids, (timedelta(days=700), timedelta(days=745)), strict=True):
        await db.execute(
            "UPDATE dossier.documents SET deposited_at = $2 WHERE document_id = $1",
            document_id,
            now - age,
        )
    page = await client.send(cmd.ReadDossier(ins=ins), token=token)
    assert [d.title for d in page.documents] == ["recent"]
    with pytest.raises(RpcError) as old:
        await client.send(cmd.GetDocument(ins=ins, document_id=ids[1]), token=token)
    assert old.value.code == "not_found"


async def test_an_upload_never_completed_is_dropped_with_its_parts_when_it_expires__DOC_01(
    client: Client, dossier: Running, access: AccessStandIn, db: asyncpg.Connection, keys: Keys
) -> None:
    ins = new_nir()
    token = token_for(dossier.runtime, keys)
    content = os.urandom(40_000)
    upload = await client.send(
        cmd.BeginDocumentUpload(
            ins=ins,
            document_type="imaging_report",
            title="Scanner",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        ),
        token=token,
    )
    await client.send(
        cmd.UploadDocumentPart(
            upload_id=upload.upload_id, index=0, content_b64=b64(content[: upload.part_bytes])
        ),
        token=token,
    )
    # Nothing is asked of access before completion (no trace, no alert for half a document).
    assert all(r.payload.get("ins") != ins for r in access.requests)
    parts = "SELECT count(*) FROM dossier.document_parts WHERE document_id = $1"
    assert await db.fetchval(parts, upload.upload_id) == 1
    await db.execute(
        "UPDATE dossier.uploads SET expires_at = now() - interval '1 second' WHERE upload_id = $1",
        upload.upload_id,
    )
    async with dossier.runtime.pool.acquire() as conn:
        assert await dossier_repository.prune_uploads(conn, dossier.runtime.now()) >= 1
    assert await db.fetchval(parts, upload.upload_id) == 0
    with pytest.raises(RpcError) as gone:
        await client.send(cmd.CompleteDocumentUpload(upload_id=upload.upload_id), token=token)
    assert gone.value.code == "not_found"
