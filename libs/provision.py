"""Set up an environment's authority: broker users and PostgreSQL roles, one per service.

What an administrator runs once per environment (and the tests once per virtual host and
database), before any service starts. With the administrator's URLs it:

- declares the shared exchanges and `ops.unrouted` (bounded by policy), creates every party's
  broker user with least privileges (`libs.bus.authority`);
- creates, in the database, one login role per service (`<prefix><service>`, no superuser, no
  createdb, no createrole) owning the service's schema, takes the database away from PUBLIC,
  and lets each role connect; no role can read another's schema. The shared demo clock schema
  is the administrator's, readable by every role.

Each service then connects with its own URLs (`Environment.service_settings`), and each client
kind with its own broker user (`Environment.client_url`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from libs.bus import authority, topology
from libs.clock import ensure_clock_schema

SERVICES = authority.SERVICES


@dataclass(frozen=True)
class Environment:
    amqp_url: str  # the administrator's, in the right virtual host
    database_url: str  # the administrator's, on the right database
    bus_prefix: str
    db_prefix: str
    bus_passwords: dict[str, str] = field(default_factory=dict)
    db_passwords: dict[str, str] = field(default_factory=dict)

    def bus_url(self, party: str) -> str:
        return authority.as_user(self.amqp_url, self.bus_prefix + party, self.bus_passwords[party])

    def client_url(self, kind: str = "practice-software") -> str:
        return self.bus_url(kind)

    def role(self, service: str) -> str:
        return self.db_prefix + service

    def db_url(self, service: str) -> str:
        parts = urlsplit(self.database_url)
        netloc = f"{self.role(service)}:{self.db_passwords[service]}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def service_settings(self, service: str) -> dict[str, str]:
        """The settings that make a service itself on the bus and in the database."""
        return {
            "amqp_url": self.bus_url(service),
            "database_url": self.db_url(service),
            "bus_user_prefix": self.bus_prefix,
        }

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Environment:
        return cls(**json.loads(text))


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


async def apply_database_roles(
    admin_url: str,
    prefix: str,
    passwords: dict[str, str] | None = None,
    services: tuple[str, ...] = SERVICES,
    may_create_schemas: tuple[str, ...] = (),
) -> dict[str, str]:
    """One role per service owning its schema; returns the roles' passwords."""
    passwords = dict(passwords or {})
    database = database_name(admin_url)
    conn = await asyncpg.connect(admin_url)
    try:
        # Roles are global to the server: two environments provisioning at once must not race.
        await conn.execute("SELECT pg_advisory_lock(hashtext('dmp-provision'))")
        try:
            await conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await ensure_clock_schema(conn)
            for service in services:
                role = prefix + service
                password = passwords.setdefault(service, secrets.token_hex(24))
                exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(
                    f'{verb} ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
                    f" NOINHERIT PASSWORD '{password}'"
                )
                await conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{role}"')
                if service in may_create_schemas:
                    await conn.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{role}"')
                else:
                    await conn.execute(
                        f'CREATE SCHEMA IF NOT EXISTS "{service}" AUTHORIZATION "{role}"'
                    )
                    await _hand_over(conn, service, role)
                await conn.execute(f'GRANT USAGE ON SCHEMA dmp_clock TO "{role}"')
                await conn.execute(f'GRANT SELECT ON dmp_clock."offset" TO "{role}"')
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('dmp-provision'))")
    finally:
        await conn.close()
    return passwords


async def _hand_over(conn: asyncpg.Connection[asyncpg.Record], schema: str, role: str) -> None:
    """A schema made before roles existed (an older version ran as the administrator) and
    everything in it pass to the service's role, so that its migrations can go on."""
    await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{role}"')
    # Tables first: a table's own sequences follow it (and cannot be handed over alone).
    for kinds, word in ((("r", "p"), "TABLE"), (("v",), "VIEW"), (("S",), "SEQUENCE")):
        for name in await conn.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relkind::text = ANY($2::text[])
                 AND pg_get_userbyid(c.relowner) <> $3""",
            schema,
            list(kinds),
            role,
        ):
            await conn.execute(f'ALTER {word} "{schema}"."{name["relname"]}" OWNER TO "{role}"')


async def drop_database_roles(
    admin_server_url: str, prefix: str, services: tuple[str, ...] = SERVICES
) -> None:
    """After the database itself is dropped (roles owning objects cannot be dropped)."""
    conn = await asyncpg.connect(admin_server_url)
    try:
        for service in services:
            await conn.execute(f'DROP ROLE IF EXISTS "{prefix + service}"')
    finally:
        await conn.close()


async def provision(
    amqp_admin_url: str,
    database_admin_url: str,
    ctl: authority.RabbitCtl,
    *,
    bus_prefix: str = "",
    db_prefix: str | None = None,
    previous: Environment | None = None,
    extra_services: tuple[str, ...] = (),
) -> Environment:
    """Apply everything; reuses `previous` passwords so running services keep working."""
    await authority.declare_shared(amqp_admin_url)
    vhost = authority.vhost_of(amqp_admin_url)
    ctl(
        [
            "set_policy",
            "-p",
            vhost,
            "--apply-to",
            "queues",
            "ops-unrouted-bounds",
            f"^{topology.UNROUTED_QUEUE}$",
            json.dumps(topology.UNROUTED_POLICY),
        ]
    )
    bus_passwords = authority.apply(
        ctl,
        vhost,
        bus_prefix,
        previous.bus_passwords if previous else None,
        extra_services,
    )
    db_prefix = f"{database_name(database_admin_url)}_" if db_prefix is None else db_prefix
    db_passwords = await apply_database_roles(
        database_admin_url,
        db_prefix,
        previous.db_passwords if previous else None,
        services=(*SERVICES, *extra_services),
        may_create_schemas=extra_services,
    )
    return Environment(
        amqp_admin_url, database_admin_url, bus_prefix, db_prefix, bus_passwords, db_passwords
    )
