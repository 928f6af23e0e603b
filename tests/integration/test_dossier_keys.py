"""The dossier's master key rotated without downtime (DOC_11): replicas on the old, the
intermediate and the new settings serve deposits and reads side by side, every document key is
re-wrapped in the background, and nothing is lost or unreadable at any step."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from libs.bus.rpc import RpcClient
from libs.client import Client
from libs.contracts import commands as cmd
from libs.runtime import Runtime
from libs.tokens import b64e
from services.dossier import keys as dossier_keys
from tests.support import infra
from tests.support.access_stand_in import AccessStandIn, grant
from tests.support.actors import b64
from tests.support.people import new_nir, new_rpps
from tests.support.system import Keys, build_service
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def values(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> dict[str, Any]:
    return {
        **settings_values,
        "amqp_url": own_amqp_url,
        "database_url": own_database_url,
        "rewrap_idle_seconds": 0.1,
    }


@pytest.fixture(scope="module")
async def client(own_amqp_url: str) -> AsyncIterator[Client]:
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.dossier-keys", timeout=10.0)
    await rpc.connect()
    yield Client(rpc)
    await rpc.close()


async def replica(values: dict[str, Any], **settings: Any) -> Runtime:
    runtime = build_service("dossier", {**values, **settings})
    await runtime.start()
    return runtime


async def test_the_master_key_is_rotated_under_load_and_nothing_is_lost__DOC_11(
    values: dict[str, Any], client: Client, keys: Keys, own_amqp_url: str, own_database_url: str
) -> None:
    old, new = values["dossier_content_key"], b64e(secrets.token_bytes(32))
    access = AccessStandIn(own_amqp_url, grant(["*"], include_masked=True))
    await access.start()
    ins = new_nir()
    stored: dict[Any, bytes] = {}

    async def deposit(runtime: Runtime, n: int) -> None:
        token = token_for(
            keys.identity_private,
            sub=new_rpps(),
            kind="professional",
            profession="physician",
            now=runtime.now(),
        )
        content = secrets.token_bytes(2048)
        done = await client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title=f"doc {n}", content_b64=b64(content)
            ),
            token=token,
        )
        stored[done.document_id] = content

    async def everything_reads(runtime: Runtime) -> None:
        token = token_for(
            keys.identity_private, sub=new_rpps(), kind="professional",
            profession="physician", now=runtime.now(),
        )  # fmt: skip
        seen: dict[Any, bytes] = {}
        cursor = None
        while True:
            page = await client.send(
                cmd.ReadDossier(ins=ins, cursor=cursor, page_size=50), token=token
            )
            seen |= {d.document_id: base64.b64decode(d.content_b64) for d in page.documents}
            if (cursor := page.next_cursor) is None:
                break
        assert seen == stored

    try:
        # Before: one master key, k1.
        before = await replica(values)
        await asyncio.gather(*(deposit(before, n) for n in range(10)))
        # Deploy 1: every replica reads k2 before any writes with it.
        step1 = await replica(values, dossier_readable_keys={"k2": new})
        await before.stop()
        # Deploy 2: k2 wraps, k1 is only read; step 1 and step 2 replicas serve side by side,
        # deposits in flight all along, and the background pass re-wraps meanwhile.
        step2 = await replica(
            values,
            dossier_content_key=new,
            dossier_content_key_id="k2",
            dossier_readable_keys={"k1": old},
        )
        await asyncio.gather(*(deposit(step2, n) for n in range(10, 40)))
        await everything_reads(step2)
        await step1.stop()
        async with asyncio.timeout(30):
            while True:
                conn = await asyncpg.connect(own_database_url)
                try:
                    in_use = await dossier_keys.keys_in_use_of(conn, ins)
                finally:
                    await conn.close()
                if set(in_use) == {"k2"}:
                    break
                await asyncio.sleep(0.1)
        assert in_use == {"k2": 40}
        # After: k1 is gone from the settings, and every document still reads.
        after = await replica(values, dossier_content_key=new, dossier_content_key_id="k2")
        await step2.stop()
        await everything_reads(after)
        assert await dossier_keys.main(["--database-url", own_database_url, "--current", "k2"]) == 0
        await after.stop()
    finally:
        await access.stop()
