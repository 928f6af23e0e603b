"""`make run`: the six services as separate processes, a local SMTP server, then the demo.

Keys live in .run/keys.json (made once, so tokens and encrypted documents survive restarts);
service logs in .run/logs/<service>.log; mails received in .run/mail/. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from libs.bus import authority
from libs.bus.rpc import RpcClient
from libs.client import Client
from libs.provision import Environment, provision
from libs.tokens import b64e, key_set, new_keypair, new_signing_key, public_jwks
from scripts import demo, processes
from scripts.smtp_sink import SmtpServer

RUN = Path(".run")
OPERATOR = "cnam-demo-agent"


def keys() -> dict[str, str]:
    path = RUN / "keys.json"
    if not path.exists():
        operator_private, operator_public = new_keypair()
        path.write_text(
            json.dumps(
                {
                    "identity_signing_keys": key_set(new_signing_key()),
                    "operator_private": operator_private,
                    "operator_public": operator_public,
                    "dossier_content_key": b64e(os.urandom(32)),
                    "messaging_content_key": b64e(os.urandom(32)),
                }
            )
        )
        path.chmod(0o600)
    loaded: dict[str, str] = json.loads(path.read_text())
    if "messaging_content_key" not in loaded:  # made by an older version
        loaded["messaging_content_key"] = b64e(os.urandom(32))
        path.write_text(json.dumps(loaded))
    if "identity_signing_keys" not in loaded:  # made when tokens were not yet JWTs
        loaded["identity_signing_keys"] = key_set(new_signing_key())
        path.write_text(json.dumps(loaded))
    return loaded


async def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if not await admin.fetchval("SELECT true FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def provision_environment(database_url: str, amqp_url: str) -> Environment:
    """Broker users and database roles of this run, their passwords kept in .run/ (0600) so
    that a restart reuses them."""
    ctl = authority.local_rabbitmqctl()
    if ctl is None:
        raise SystemExit("rabbitmqctl is needed to create the services' broker users")
    path = RUN / "environment.json"
    previous = Environment.from_json(path.read_text()) if path.exists() else None
    if previous and (previous.amqp_url, previous.database_url) != (amqp_url, database_url):
        previous = None
    environment = await provision(amqp_url, database_url, ctl, previous=previous)
    path.write_text(environment.to_json())
    path.chmod(0o600)
    return environment


async def main() -> None:
    # The administrator's URLs: used to provision, then only by the demo's clock and tap.
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dmp")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    smtp_port = int(os.environ.get("SMTP_PORT", "2525"))
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    k = keys()
    await ensure_database(database_url)
    environment = await provision_environment(database_url, amqp_url)

    smtp = SmtpServer(port=smtp_port, spool=RUN / "mail")
    smtp.__enter__()
    common = {
        "identity_jwks": public_jwks(k["identity_signing_keys"]),
        "identity_signing_keys": k["identity_signing_keys"],
        "operator_public_keys": {OPERATOR: k["operator_public"]},
        "dossier_content_key": k["dossier_content_key"],
        "messaging_content_key": k["messaging_content_key"],
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        # The demo moves time forward; a production deployment keeps "system".
        "clock_mode": "adjustable",
        "sweep_interval_seconds": 1,
    }
    running = processes.start(
        lambda name: {**common, **environment.service_settings(name)}, RUN / "logs"
    )
    print(f"Started {', '.join(f'{n} (pid {p.pid})' for n, p in running.items())}.")
    print(f"Logs in {RUN / 'logs'}/; mails to holders land in {RUN / 'mail'}/ (SMTP :{smtp_port}).")

    rpc = RpcClient(environment.client_url("practice-software"), name="demo", timeout=15)
    await rpc.connect()
    client = Client(rpc)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await processes.wait_ready(client)
        print("All six services answer. The journey of one holder, through the bus:")
        await demo.play(
            client,
            smtp.mailbox,
            database_url=database_url,
            amqp_url=environment.bus_url(authority.OPS),
            operator_id=OPERATOR,
            operator_private=k["operator_private"],
        )
        print(
            "\nThe system keeps running. Watch events with"
            " `.venv/bin/python -m libs.bus.tap '#'`; move time with"
            " `.venv/bin/python -m libs.clock advance 10y`. Ctrl-C stops everything."
        )
        await stop.wait()
    finally:
        await rpc.close()
        processes.stop(running)
        smtp.__exit__()
        print("Stopped.")


if __name__ == "__main__":
    asyncio.run(main())
