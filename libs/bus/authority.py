"""Who may do what on the broker: one user per service and per kind of client, least privilege.

Applied by the project itself (`make run`, the tests, `deploy/`), never by hand:

- a **service** configures only its own queues (`<service>.*`), publishes events only under its
  own routing keys (`<service>.*` on `dmp.events`, a topic permission), dead-letters to
  `dmp.dead`, calls other services through `dmp.internal`, replies through the default exchange
  (direct reply-to), and reads only its own queues;
- a **client** (patient app, practice software, operator console) may only publish to
  `dmp.commands` and read its own replies (direct reply-to needs no permission): it can neither
  publish an event nor consume any queue;
- **ops** (tap, dead letters) reads dead-letter queues and events through private queues of its
  own, and replays dead letters through the default exchange.

RabbitMQ validates the `user_id` property against the connection's user, so a consumer knows who
published an event; the runtime believes an event only from its owner's user. Users are named
`<prefix><party>`: users are global to a broker while permissions are per virtual host, so a
prefix keeps deployments (and test runs) sharing one broker apart. `amq.default` write reaches
every queue by name, which is why only services and ops have it, and why consumers check
`user_id` rather than trusting routes.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika

from libs.bus import topology

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")
CLIENTS = ("patient-app", "practice-software", "operator-console")
OPS = "ops"

RabbitCtl = Callable[[list[str]], None]


@dataclass(frozen=True)
class Grant:
    party: str
    configure: str
    write: str
    read: str
    # Topic permissions on dmp.events: which routing keys the party may publish / bind.
    topic_write: str
    topic_read: str


def _any(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$"


def service_grant(party: str, own: str | None = None) -> Grant:
    """`own`: the pattern of the party's queues and routing keys (default `<party>.*`)."""
    own = own or re.escape(party) + r"\..*"
    return Grant(
        party,
        configure=_any(own),
        write=_any(own, r"dmp\.events", r"dmp\.dead", r"dmp\.internal", r"amq\.default"),
        read=_any(own, r"dmp\.events", r"dmp\.dead", r"dmp\.commands", r"dmp\.internal"),
        topic_write=_any(own),
        topic_read=".*",
    )


def grants(extra_services: tuple[str, ...] = ()) -> list[Grant]:
    """Every party's permissions; `extra_services` for test-only services (e.g. `probe`)."""
    nothing = "^$"
    found = [service_grant(s) for s in SERVICES]
    found += [service_grant(s, re.escape(s) + r"[._].*") for s in extra_services]
    found += [
        Grant(client, nothing, _any(r"dmp\.commands"), nothing, nothing, nothing)
        for client in CLIENTS
    ]
    found.append(
        Grant(
            OPS,
            configure=_any(r"ops\.tap\..*"),
            write=_any(r"ops\.tap\..*", r"amq\.default"),
            read=_any(r".*\.dlq", r"dmp\.events", r"ops\..*"),
            topic_write=nothing,
            topic_read=".*",
        )
    )
    return found


def local_rabbitmqctl() -> RabbitCtl | None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return None

    def run(args: list[str]) -> None:
        subprocess.run([ctl, "-q", *args], check=True, capture_output=True)

    return run


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return "/" if path in ("", "/") else path[1:].replace("%2F", "/").replace("%2f", "/")


def as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def apply(
    ctl: RabbitCtl,
    vhost: str,
    prefix: str,
    passwords: dict[str, str] | None = None,
    extra_services: tuple[str, ...] = (),
) -> dict[str, str]:
    """Create (or update) every party's user and permissions; returns their passwords."""
    passwords = dict(passwords or {})
    for grant in grants(extra_services):
        user = prefix + grant.party
        password = passwords.setdefault(grant.party, secrets.token_hex(24))
        try:
            ctl(["add_user", user, password])
        except subprocess.CalledProcessError:
            ctl(["change_password", user, password])  # already there: take this password
        ctl(["set_user_tags", user])  # no management, no administrator
        ctl(["set_permissions", "-p", vhost, user, grant.configure, grant.write, grant.read])
        ctl(
            [
                "set_topic_permissions",
                "-p",
                vhost,
                user,
                topology.EVENTS_EXCHANGE,
                grant.topic_write,
                grant.topic_read,
            ]
        )
    return passwords


def remove(ctl: RabbitCtl, prefix: str, extra_services: tuple[str, ...] = ()) -> None:
    for grant in grants(extra_services):
        try:
            ctl(["delete_user", prefix + grant.party])
        except subprocess.CalledProcessError:
            pass


async def declare_shared(admin_url: str) -> None:
    """The exchanges and the ops queues, declared once by the administrator, not by services."""
    connection = await aio_pika.connect_robust(admin_url)
    try:
        await topology.declare_exchanges(await connection.channel())
    finally:
        await connection.close()
