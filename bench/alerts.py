"""Alerts per second, from `AccessLogged` on the bus to the mail accepted by the SMTP server
(NTF_01, NTF_04), and what the SMTP client alone does:

    .venv/bin/python -m bench.alerts                 # 2,000 holders, one access each
    .venv/bin/python -m bench.alerts --holders 500   # a quicker look

In a fresh database and virtual host (dropped afterwards), identity and the notifier as they run
(each its own role, broker user and connections, in this process) and a real SMTP server
(aiosmtpd). `--holders` holders are registered with an e-mail address (identity tells the
notifier their channels); then one `AccessLogged` per holder is published as access publishes it
(a professional's read, granted) and the clock runs until the SMTP server has accepted one mail
per holder. One access each, so that no burst is folded into a digest: this measures the path of
a single alert.

Beside it, the SMTP client alone on the same server, `--mails` mails each way: the former way (the
standard library's `smtplib`, a new connection per mail, in a thread) and the present one
(`libs.mail.Mailer`: aiosmtplib on the event loop, one kept connection).
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import time
from datetime import date
from typing import Any

import aio_pika

from bench.bench import wait_until
from libs.bus import topology
from libs.bus.publisher import broker_user
from libs.bus.rpc import RpcClient
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.envelope import envelope_for
from libs.mail import Mailer, MailSettings, message_for
from libs.tokens import key_set, new_keypair, new_signing_key, public_jwks
from tests.support import infra
from tests.support.events import access_logged
from tests.support.people import new_nir
from tests.support.smtp import SmtpServer
from tests.support.system import build_service

OPERATOR = "bench-operator"


async def _end_to_end(holders: int) -> tuple[float, float]:
    """(alerts/s from the first AccessLogged published to the last mail accepted, publish/s)."""
    signing = key_set(new_signing_key())
    operator_private, operator_public = new_keypair()
    with infra.servers() as servers, SmtpServer() as smtp:
        async with (
            infra.fresh_database(servers.database_url, "dmp_bench") as database_url,
            infra.fresh_vhost(servers) as amqp_url,
        ):
            values: dict[str, Any] = {
                "database_url": database_url,
                "amqp_url": amqp_url,
                "identity_jwks": public_jwks(signing),
                "identity_signing_keys": signing,
                "operator_public_keys": {OPERATOR: operator_public},
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "log_level": "WARNING",
                "db_pool_size": 8,
            }
            runtimes = [build_service(name, values) for name in ("identity", "notifier")]
            for runtime in runtimes:
                await runtime.start()
            rpc = RpcClient(infra.client_url(amqp_url), name="bench-alerts", timeout=30)
            await rpc.connect()
            try:
                client = Client(rpc)
                operator = (
                    await client.sign_in_with_card("operator", OPERATOR, operator_private)
                ).token
                people = []
                for n in range(holders):
                    ins = new_nir(sex=1 + n % 2, year=70 + n % 30)
                    await client.send(
                        cmd.RegisterHolder(
                            nir=ins,
                            first_name="Bench",
                            last_name="Alerts",
                            birth_date=date(1980, 5, 1),
                            email=f"alerts.{ins}@example.org",
                        ),
                        token=operator,
                    )
                    people.append(ins)
                # The notifier has heard every holder's channels (ContactChanged) before the run.
                notifier = runtimes[1]
                async with notifier.pool.acquire() as conn:

                    async def contacts_known() -> bool:
                        return bool(await conn.fetchval("SELECT count(*) FROM contacts") >= holders)

                    await wait_until(contacts_known, 300, 0.1)
                mailed_before = len(smtp.mailbox.messages)
                as_access = infra.party_url(amqp_url, "access")
                connection = await aio_pika.connect(as_access)
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=False)

                def message(ins: str) -> tuple[aio_pika.Message, str]:
                    event = access_logged(ins, actor_id="10000000001")
                    envelope = envelope_for(
                        event, holder_key=ins, occurred_at=event.at, correlation_id="bench"
                    )
                    body = aio_pika.Message(
                        envelope.model_dump_json().encode(),
                        message_id=str(envelope.event_id),
                        delivery_mode=2,
                        user_id=broker_user(as_access),
                    )
                    return body, event.routing_key()

                messages = [message(ins) for ins in people]
                started = time.perf_counter()
                # 64 publishes in flight, each confirmed, as the outbox relay publishes.
                for start in range(0, len(messages), 64):
                    await asyncio.gather(
                        *(
                            exchange.publish(body, routing_key=key)
                            for body, key in messages[start : start + 64]
                        )
                    )
                published = time.perf_counter() - started
                await connection.close()

                async def all_mailed() -> bool:
                    return len(smtp.mailbox.messages) - mailed_before >= holders

                await wait_until(all_mailed, 600, 0.05)
                elapsed = time.perf_counter() - started
            finally:
                await rpc.close()
                for runtime in reversed(runtimes):
                    await runtime.stop()
    return holders / elapsed, holders / published


def _stdlib_send(port: int, n: int) -> None:
    """The former way: a new SMTP connection per mail (smtplib, blocking)."""
    message = message_for("dmp@example.org", "x@example.org", "Accès", "corps", f"bench-{n}")
    with smtplib.SMTP("127.0.0.1", port) as connection:
        connection.sendmail("dmp@example.org", ["x@example.org"], message)


async def _clients(mails: int) -> tuple[float, float]:
    with SmtpServer() as smtp:
        started = time.perf_counter()
        for n in range(mails):
            await asyncio.to_thread(_stdlib_send, smtp.port, n)
        former = mails / (time.perf_counter() - started)
        mailer = Mailer(
            MailSettings.model_validate(
                {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "identity_jwks": "{}"}
            )
        )
        started = time.perf_counter()
        for n in range(mails):
            await mailer.send(
                to="x@example.org",
                subject="Accès",
                body="corps",
                message_id=f"bench-{n}",
            )
        present = mails / (time.perf_counter() - started)
        await mailer.close()
    return former, present


async def main(holders: int, mails: int) -> None:
    former, present = await _clients(mails)
    alerts, published = await _end_to_end(holders)
    print(f"alerts: {holders:,} holders, one access each (no digest)")
    print(f"  AccessLogged published (raw aio-pika)       {published:10,.0f} /s")
    print(f"  AccessLogged -> mail accepted by SMTP       {alerts:10,.0f} alerts/s")
    print(f"SMTP client alone, {mails:,} mails, same server:")
    print(f"  before: smtplib, a connection per mail      {former:10,.0f} mails/s")
    print(f"  now: aiosmtplib, one kept connection        {present:10,.0f} mails/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--holders", type=int, default=2_000)
    parser.add_argument("--mails", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(main(args.holders, args.mails))
