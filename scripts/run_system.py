"""`make run`: the six services as separate processes, a local SMTP server and SMS provider,
then the demo.

Settings (environment variables; two runs with different ones share a machine without meeting):

    DATABASE_URL  the run's database, as its administrator (default
                  postgresql://postgres@127.0.0.1:5432/dmp); created when missing
    AMQP_URL      the run's virtual host, as the broker's administrator (default
                  amqp://guest:guest@127.0.0.1:5672/); created when missing; the run's broker
                  users are named `<vhost>.<party>` outside the default vhost
    SMTP_PORT     the demo's SMTP server, where mails to holders land (default 2525)
    SMS_PORT      the demo's SMS provider (scripts/sms_sink.py), where SMS to holders land
                  (default: a free port; its URL and a fresh key go to identity)
    RUN_DIR       the run's keys, passwords, actors, logs and mails (default .run)

Keys live in RUN_DIR/keys.json (made once, so tokens and encrypted documents survive restarts);
service logs in RUN_DIR/logs/<service>.log; mails received in RUN_DIR/mail/, SMS in RUN_DIR/sms/
(one JSON file each). Ctrl-C stops
everything. `python -m scripts.run_system reset` (make reset) drops the run's data, clock, broker
users, queues and RUN_DIR: the next `make run` starts from nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from libs.bus import authority
from libs.bus.rpc import RpcClient
from libs.client import Client
from libs.provision import Environment, drop_database_roles, provision
from libs.tokens import b64e, key_set, new_keypair, new_signing_key, public_jwks
from scripts import demo, processes
from scripts.sms_sink import SmsServer
from scripts.smtp_sink import SmtpServer

RUN = Path(os.environ.get("RUN_DIR", ".run"))
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dmp")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SMTP_PORT = int(os.environ.get("SMTP_PORT", "2525"))
SMS_PORT = int(os.environ["SMS_PORT"]) if os.environ.get("SMS_PORT") else None
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
                    "purge_proof_key": b64e(os.urandom(32)),
                    "log_pseudonym_key": b64e(os.urandom(32)),
                }
            )
        )
        path.chmod(0o600)
    loaded: dict[str, str] = json.loads(path.read_text())
    for made_later in ("messaging_content_key", "purge_proof_key", "log_pseudonym_key"):
        if made_later not in loaded:  # made by an older version
            loaded[made_later] = b64e(os.urandom(32))
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


def _rabbitmqctl() -> authority.RabbitCtl:
    ctl = authority.local_rabbitmqctl()
    if ctl is None:
        raise SystemExit("rabbitmqctl is needed to create the services' broker users")
    return ctl


def bus_prefix(amqp_url: str) -> str:
    """Broker users are global: outside the default vhost, the run's are its own."""
    vhost = authority.vhost_of(amqp_url)
    return "" if vhost == "/" else f"{vhost}."


async def provision_environment(database_url: str, amqp_url: str) -> Environment:
    """Broker users and database roles of this run, their passwords kept in RUN_DIR (0600) so
    that a restart reuses them."""
    ctl = _rabbitmqctl()
    vhost = authority.vhost_of(amqp_url)
    if vhost != "/":
        with contextlib.suppress(subprocess.CalledProcessError):  # already there
            authority.CtlAdmin(ctl).add_vhost(vhost, urlsplit(amqp_url).username or "guest")
    path = RUN / "environment.json"
    previous = Environment.from_json(path.read_text()) if path.exists() else None
    if previous and (previous.amqp_url, previous.database_url) != (amqp_url, database_url):
        previous = None
    environment = await provision(
        amqp_url, database_url, ctl, bus_prefix=bus_prefix(amqp_url), previous=previous
    )
    path.write_text(environment.to_json())
    path.chmod(0o600)
    return environment


async def main() -> None:
    # The administrator's URLs: used to provision, then only by the demo's clock and tap.
    database_url, amqp_url, smtp_port = DATABASE_URL, AMQP_URL, SMTP_PORT
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    k = keys()
    await ensure_database(database_url)
    environment = await provision_environment(database_url, amqp_url)

    smtp = SmtpServer(port=smtp_port, spool=RUN / "mail")
    smtp.__enter__()
    # A fresh key each run: the services are started with it below.
    sms = SmsServer(port=SMS_PORT, api_key=secrets.token_urlsafe(24), spool=RUN / "sms")
    sms.__enter__()
    common = {
        "identity_jwks": public_jwks(k["identity_signing_keys"]),
        "identity_signing_keys": k["identity_signing_keys"],
        "operator_public_keys": {OPERATOR: k["operator_public"]},
        "dossier_content_key": k["dossier_content_key"],
        "messaging_content_key": k["messaging_content_key"],
        "purge_proof_key": k["purge_proof_key"],
        "log_pseudonym_key": k["log_pseudonym_key"],  # every service's (libs/logging.py)
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "sms_gateway_url": sms.url,
        "sms_api_key": sms.api_key,  # identity's and the notifier's (processes.SECRET_OWNERS)
        # The demo moves time forward; a production deployment keeps "system".
        "clock_mode": "adjustable",
        "sweep_interval_seconds": 1,
    }
    running = processes.start(
        lambda name: {**common, **environment.service_settings(name)}, RUN / "logs"
    )
    print(f"Started {', '.join(f'{n} (pid {p.pid})' for n, p in running.items())}.")
    print(f"Logs in {RUN / 'logs'}/; mails to holders land in {RUN / 'mail'}/ (SMTP :{smtp_port}).")
    print(f"SMS to holders land in {RUN / 'sms'}/ (SMS provider API {sms.url}).")

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
        played = await demo.play(
            client,
            smtp.mailbox,
            database_url=database_url,
            amqp_url=environment.bus_url(authority.OPS),
            operator_id=OPERATOR,
            operator_private=k["operator_private"],
        )
        actors = RUN / "actors.json"
        actors.touch(mode=0o600)  # card keys: the demo's, but keys all the same
        actors.write_text(json.dumps(played["actors"], indent=2))
        print(
            "\nThe system keeps running. Watch events with"
            " `.venv/bin/python -m libs.bus.tap '#'`; move time with"
            " `.venv/bin/python -m libs.clock advance 10y`. Ctrl-C stops everything."
        )
        await stop.wait()
    finally:
        await rpc.close()
        processes.stop(running)
        sms.__exit__()
        smtp.__exit__()
        print("Stopped.")


async def reset() -> None:
    """Drop what the run made: its database (data and demo clock), its database roles, its
    broker users, queues and exchanges (its vhost, unless the default), and RUN_DIR."""
    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    await drop_database_roles(urlunsplit(parts._replace(path="/postgres")), f"{name}_")
    ctl = _rabbitmqctl()
    vhost = authority.vhost_of(AMQP_URL)
    authority.remove(ctl, bus_prefix(AMQP_URL))
    if vhost != "/":
        with contextlib.suppress(subprocess.CalledProcessError):
            ctl(["delete_vhost", vhost])
    else:
        for queue in _queues(vhost):
            ctl(["delete_queue", "-p", vhost, queue])
    shutil.rmtree(RUN, ignore_errors=True)
    print(f"Reset: database {name}, its roles, broker users and queues of {vhost}, {RUN}/.")


def _queues(vhost: str) -> list[str]:
    """The system's queues in a shared vhost: its services', their dead letters, ops'."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    owners = (*authority.SERVICES, "ops")
    return [q for q in listed if q.split(".", 1)[0] in owners]


if __name__ == "__main__":
    asyncio.run(reset() if sys.argv[1:] == ["reset"] else main())
