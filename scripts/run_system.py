"""`make run`: the six services as separate processes, a local SMTP server, then the demo.

Keys live in .run/keys.json (made once, so tokens and encrypted documents survive restarts);
service logs in .run/logs/<service>.log; mails received in .run/mail/. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.tokens import b64e, new_keypair
from scripts import demo
from scripts.smtp_sink import SmtpServer

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")
RUN = Path(".run")
OPERATOR = "cnam-demo-agent"


def _die_with_parent() -> None:
    # Linux: the services get SIGTERM if this runner dies, however it dies.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def keys() -> dict[str, str]:
    path = RUN / "keys.json"
    if not path.exists():
        identity_private, identity_public = new_keypair()
        operator_private, operator_public = new_keypair()
        path.write_text(
            json.dumps(
                {
                    "identity_private": identity_private,
                    "identity_public": identity_public,
                    "operator_private": operator_private,
                    "operator_public": operator_public,
                    "dossier_content_key": b64e(os.urandom(32)),
                }
            )
        )
        path.chmod(0o600)
    loaded: dict[str, str] = json.loads(path.read_text())
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


async def wait_ready(client: Client, queues: list[str], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        for queue in queues:
            while True:
                try:
                    if (await client.rpc.call(queue, "Ping", {}, timeout=2))["ready"]:
                        break
                except RpcError:
                    pass
                await asyncio.sleep(0.3)


async def main() -> None:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dmp")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    smtp_port = int(os.environ.get("SMTP_PORT", "2525"))
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    k = keys()
    await ensure_database(database_url)

    smtp = SmtpServer(port=smtp_port, spool=RUN / "mail")
    smtp.__enter__()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "IDENTITY_PUBLIC_KEY": k["identity_public"],
        "OPERATOR_PUBLIC_KEYS": json.dumps({OPERATOR: k["operator_public"]}),
        "DOSSIER_CONTENT_KEY": k["dossier_content_key"],
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        # The demo moves time forward; a production deployment keeps "system".
        "CLOCK_MODE": "adjustable",
        "SWEEP_INTERVAL_SECONDS": "1",
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name in SERVICES:
        service_env = dict(env)
        if name == "identity":  # only identity holds the signing key
            service_env["IDENTITY_PRIVATE_KEY"] = k["identity_private"]
        log = (RUN / "logs" / f"{name}.log").open("ab")
        # Popen returns at once: the services run beside this loop, not in it.
        processes[name] = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", f"services.{name}"],
            env=service_env,
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    print(f"Started {', '.join(f'{n} (pid {p.pid})' for n, p in processes.items())}.")
    print(f"Logs in {RUN / 'logs'}/; mails to holders land in {RUN / 'mail'}/ (SMTP :{smtp_port}).")

    rpc = RpcClient(amqp_url, name="demo", timeout=15)
    await rpc.connect()
    client = Client(rpc)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_ready(
            client,
            [f"{n}.commands" for n in SERVICES] + ["access.decide"],
        )
        print("All six services answer. The journey of one holder, through the bus:")
        await demo.play(
            client,
            smtp.mailbox,
            database_url=database_url,
            amqp_url=amqp_url,
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
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                print(f"{name} did not stop in time and was killed")
        smtp.__exit__()
        print("Stopped.")


if __name__ == "__main__":
    asyncio.run(main())
