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

import base64
import contextlib
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

import aio_pika

from libs.bus import topology

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")
CLIENTS = ("patient-app", "practice-software", "operator-console")
OPS = "ops"


class RabbitCtl(Protocol):
    """Runs `rabbitmqctl -q <args>` against one broker, `stdin` as its input; raises
    `subprocess.CalledProcessError` when it fails."""

    def __call__(self, args: list[str], stdin: bytes | None = None) -> None: ...


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


@runtime_checkable
class BrokerAdmin(Protocol):
    """What provisioning needs of a broker's administration: through `rabbitmqctl` on the
    broker's host (`CtlAdmin`: `make run`, the local tests) or its management HTTP API
    (`ManagementApi`: a deployment, a container)."""

    def add_vhost(self, vhost: str, admin_user: str) -> None: ...

    def delete_vhost(self, vhost: str) -> None: ...

    def load(self, definitions: dict[str, Any]) -> None:
        """Import definitions (users, permissions, policies): adds or updates, never deletes."""

    def delete_users(self, users: list[str]) -> None: ...


class CtlAdmin:
    def __init__(self, ctl: RabbitCtl) -> None:
        self.ctl = ctl

    def add_vhost(self, vhost: str, admin_user: str) -> None:
        self.ctl(["add_vhost", vhost])
        self.ctl(["set_permissions", "-p", vhost, admin_user, ".*", ".*", ".*"])

    def delete_vhost(self, vhost: str) -> None:
        self.ctl(["delete_vhost", vhost])

    def load(self, definitions: dict[str, Any]) -> None:
        # One call whatever the number of users (each `rabbitmqctl` call starts a VM, ~1 s),
        # from stdin: no file of password hashes, and none the broker's OS user cannot read.
        self.ctl(["import_definitions"], stdin=json.dumps(definitions).encode())

    def delete_users(self, users: list[str]) -> None:
        for user in users:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.ctl(["delete_user", user])


class ManagementApi:
    """The management plugin's HTTP API, e.g. `http://admin:secret@rabbitmq:15672`."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.base = urlunsplit(parts._replace(netloc=_host_port(parts), path="", query=""))
        credentials = f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}"
        self.authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.timeout = timeout

    def _call(self, method: str, path: str, body: object = None) -> None:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self.authorization, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except urllib.error.HTTPError as exc:
            if not (method == "DELETE" and exc.code == 404):
                detail = exc.read().decode(errors="replace")[:500]
                raise RuntimeError(f"{method} {path}: {exc.code} {detail}") from None

    def add_vhost(self, vhost: str, admin_user: str) -> None:
        name = quote(vhost, safe="")
        self._call("PUT", f"/api/vhosts/{name}", {})
        self._call(
            "PUT",
            f"/api/permissions/{name}/{quote(admin_user, safe='')}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )

    def delete_vhost(self, vhost: str) -> None:
        self._call("DELETE", f"/api/vhosts/{quote(vhost, safe='')}")

    def load(self, definitions: dict[str, Any]) -> None:
        self._call("POST", "/api/definitions", definitions)

    def delete_users(self, users: list[str]) -> None:
        if users:
            self._call("POST", "/api/users/bulk-delete", {"users": users})


def _host_port(parts: SplitResult) -> str:
    host = parts.hostname or "127.0.0.1"
    return f"{host}:{parts.port}" if parts.port else host


def as_admin(admin: BrokerAdmin | RabbitCtl) -> BrokerAdmin:
    return admin if isinstance(admin, BrokerAdmin) else CtlAdmin(admin)


def local_rabbitmqctl() -> RabbitCtl | None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return None

    def run(args: list[str], stdin: bytes | None = None) -> None:
        subprocess.run([ctl, "-q", *args], input=stdin, check=True, capture_output=True)

    return run


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return "/" if path in ("", "/") else unquote(path[1:])


def as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(
    vhost: str,
    prefix: str,
    passwords: dict[str, str] | None,
    extra_services: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every party's user and permissions, the shared exchanges, `ops.unrouted` and its
    bounds, as RabbitMQ definitions: what `apply` imports (the tests, `make run`, the
    provisioning job), and, with no passwords, what a deployment loads at the broker's boot
    (`python -m libs.bus.authority definitions`, deploy/rabbitmq/definitions.json).

    Without `passwords` every user is made without a usable password (an empty hash: no login
    succeeds) until provisioning sets it: password hashes are secrets, never in a file that is
    committed. Each service declares its own queues at start (`topology.declare_queue`)."""
    users, permissions, topic_permissions = [], [], []
    for grant in grants(extra_services):
        user = prefix + grant.party
        users.append(
            {
                "name": user,
                "password_hash": password_hash(passwords[grant.party]) if passwords else "",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "",  # no management, no administrator
            }
        )
        permissions.append(
            {
                "user": user,
                "vhost": vhost,
                "configure": grant.configure,
                "write": grant.write,
                "read": grant.read,
            }
        )
        topic_permissions.append(
            {
                "user": user,
                "vhost": vhost,
                "exchange": topology.EVENTS_EXCHANGE,
                "write": grant.topic_write,
                "read": grant.topic_read,
            }
        )
    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        **shared_topology(vhost),
        "policies": [
            {
                "vhost": vhost,
                "name": "ops-unrouted-bounds",
                "pattern": f"^{re.escape(topology.UNROUTED_QUEUE)}$",
                "apply-to": "queues",
                "definition": topology.UNROUTED_POLICY,
                "priority": 0,
            }
        ],
    }


def shared_topology(vhost: str) -> dict[str, list[dict[str, Any]]]:
    """What `topology.declare_exchanges` declares, as definitions: the exchanges the
    administrator owns (services only check they exist) and `ops.unrouted`."""

    def exchange(name: str, kind: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "vhost": vhost,
            "type": kind,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": arguments or {},
        }

    return {
        "exchanges": [
            exchange(topology.UNROUTED_EXCHANGE, "fanout"),
            exchange(
                topology.EVENTS_EXCHANGE,
                "topic",
                {"alternate-exchange": topology.UNROUTED_EXCHANGE},
            ),
            exchange(topology.DEAD_EXCHANGE, "direct"),
            exchange(topology.COMMANDS_EXCHANGE, "direct"),
            exchange(topology.INTERNAL_EXCHANGE, "direct"),
        ],
        "queues": [
            {
                "name": topology.UNROUTED_QUEUE,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": {"x-queue-type": "quorum"},
            }
        ],
        "bindings": [
            {
                "source": topology.UNROUTED_EXCHANGE,
                "vhost": vhost,
                "destination": topology.UNROUTED_QUEUE,
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {},
            }
        ],
    }


def admin_definitions(user: str, password: str, vhost: str = "/") -> dict[str, Any]:
    """The broker's administrator, for a deployment whose broker loads definitions at boot
    (then RabbitMQ makes no default user): a secret, made per environment by
    `python -m libs.provision secret-files`, never committed."""
    return {
        "users": [
            {
                "name": user,
                "password_hash": password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "administrator",
            }
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
        ],
    }


def deployment_definitions(vhost: str = "/", prefix: str = "") -> dict[str, Any]:
    """deploy/rabbitmq/definitions.json: loaded at the broker's boot, users without passwords
    (the provisioning job sets them); a test checks the committed file is this."""
    return definitions(vhost, prefix, None)


def parties(extra_services: tuple[str, ...] = ()) -> list[str]:
    return [grant.party for grant in grants(extra_services)]


def apply(
    admin: BrokerAdmin | RabbitCtl,
    vhost: str,
    prefix: str,
    passwords: dict[str, str] | None = None,
    extra_services: tuple[str, ...] = (),
) -> dict[str, str]:
    """Create (or update) every party's user and permissions; returns their passwords."""
    passwords = dict(passwords or {})
    for party in parties(extra_services):
        passwords.setdefault(party, secrets.token_hex(24))
    as_admin(admin).load(definitions(vhost, prefix, passwords, extra_services))
    return passwords


def remove(
    admin: BrokerAdmin | RabbitCtl, prefix: str, extra_services: tuple[str, ...] = ()
) -> None:
    as_admin(admin).delete_users([prefix + party for party in parties(extra_services)])


async def declare_shared(admin_url: str) -> None:
    """The exchanges and the ops queues, declared once by the administrator, not by services."""
    connection = await aio_pika.connect_robust(admin_url)
    try:
        await topology.declare_exchanges(await connection.channel())
    finally:
        await connection.close()


def main(argv: list[str]) -> None:
    if argv[:1] != ["definitions"] or len(argv) > 3:
        raise SystemExit("usage: python -m libs.bus.authority definitions [VHOST [USER_PREFIX]]")
    document = deployment_definitions(*argv[1:])
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
