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

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from libs.bus import authority
from libs.clock import ensure_clock_schema

SERVICES = authority.SERVICES

# Settings only the services named may hold (besides their own URLs): how `make run`, the tests
# and deploy/compose.yaml hand out secrets.
SECRET_OWNERS: dict[str, tuple[str, ...]] = {
    "identity_signing_keys": ("identity",),
    "operator_public_keys": ("identity",),
    "dossier_content_key": ("dossier",),
    "messaging_content_key": ("messaging",),
    "purge_proof_key": ("retention",),
    # The SMS provider's key: identity's sign-in codes (and the notifier's, once it sends SMS).
    "sms_api_key": ("identity", "notifier"),
    # The key INS values are hashed under in logs (libs/logging.py): every service's, the same
    # for all (so that one holder is one pseudonym across services), and nobody else's.
    "log_pseudonym_key": SERVICES,
}


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
    admin: authority.BrokerAdmin | authority.RabbitCtl,
    *,
    bus_prefix: str = "",
    db_prefix: str | None = None,
    previous: Environment | None = None,
    extra_services: tuple[str, ...] = (),
) -> Environment:
    """Apply everything; reuses `previous` passwords so running services keep working."""
    await authority.declare_shared(amqp_admin_url)
    vhost = authority.vhost_of(amqp_admin_url)
    bus_passwords = authority.apply(
        admin,
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


# --- For a deployment: `python -m libs.provision new-env | apply` ------------------------------
#
# A deployment (deploy/compose.yaml, Kubernetes) keeps every password in its own secret store
# and hands each container only its own. `new-env` makes them once; the provisioning job gets
# them all (and the administrators'), applies them, and exits before any service starts.


def password_variable(kind: str, party: str) -> str:
    """`BUS_PASSWORD_PRACTICE_SOFTWARE`, `DB_PASSWORD_DOSSIER`: where a deployment keeps them."""
    return f"{kind}_PASSWORD_{party.upper().replace('-', '_')}"


def new_env() -> str:
    """Fresh secrets for a deployment's `.env`: administrators' and parties' passwords,
    identity's signing keys and the content keys."""
    from libs.tokens import b64e, key_set, new_signing_key, public_jwks

    signing_keys = key_set(new_signing_key())
    values = {
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "RABBITMQ_PASSWORD": secrets.token_hex(24),
        **{password_variable("BUS", p): secrets.token_hex(24) for p in authority.parties()},
        **{password_variable("DB", s): secrets.token_hex(24) for s in SERVICES},
        "IDENTITY_JWKS": public_jwks(signing_keys),
        "IDENTITY_SIGNING_KEYS": signing_keys,
        "DOSSIER_CONTENT_KEY": b64e(secrets.token_bytes(32)),
        "MESSAGING_CONTENT_KEY": b64e(secrets.token_bytes(32)),
        "PURGE_PROOF_KEY": b64e(secrets.token_bytes(32)),
        "LOG_PSEUDONYM_KEY": b64e(secrets.token_bytes(32)),
    }
    lines = ["# Secrets made by `python -m libs.provision new-env`: never commit them."]
    return "\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n"


async def apply_from(variables: Mapping[str, str]) -> Environment:
    """Provision with the administrators' URLs and every party's password from `variables`."""
    needed = [
        "AMQP_ADMIN_URL",
        "RABBITMQ_MANAGEMENT_URL",
        "DATABASE_ADMIN_URL",
        *(password_variable("BUS", p) for p in authority.parties()),
        *(password_variable("DB", s) for s in SERVICES),
    ]
    missing = [name for name in needed if not variables.get(name)]
    if missing:
        raise SystemExit(f"provision: missing {', '.join(missing)}")
    previous = Environment(
        variables["AMQP_ADMIN_URL"],
        variables["DATABASE_ADMIN_URL"],
        variables.get("BUS_USER_PREFIX", ""),
        variables.get("DB_ROLE_PREFIX", f"{database_name(variables['DATABASE_ADMIN_URL'])}_"),
        {p: variables[password_variable("BUS", p)] for p in authority.parties()},
        {s: variables[password_variable("DB", s)] for s in SERVICES},
    )
    return await provision(
        previous.amqp_url,
        previous.database_url,
        authority.ManagementApi(variables["RABBITMQ_MANAGEMENT_URL"]),
        bus_prefix=previous.bus_prefix,
        db_prefix=previous.db_prefix,
        previous=previous,
    )


# Secrets a container reads as files (deploy/compose.yaml's `secrets:`), from the variables of
# deploy/.env: each service's two passwords and the secrets SECRET_OWNERS gives it, the
# database administrator's password, and the broker administrator's user as definitions.
OPTIONAL_SECRETS = ("SMS_API_KEY", "SMTP_PASSWORD")  # empty when unused
# Public keys (identity's only in SECRET_OWNERS), yet configuration: an environment variable.
NOT_FILES = ("OPERATOR_PUBLIC_KEYS",)
BROKER_ADMIN_DEFINITIONS = "rabbitmq_admin_definitions.json"


def secret_file_names() -> list[str]:
    """The variables of deploy/.env written as secret files (each as its lower-case name)."""
    owned = [key.upper() for key in SECRET_OWNERS if key.upper() not in NOT_FILES]
    passwords = [password_variable(kind, s) for s in SERVICES for kind in ("DB", "BUS")]
    return sorted({"POSTGRES_PASSWORD", *passwords, *owned, *OPTIONAL_SECRETS})


def write_secret_files(variables: Mapping[str, str], directory: str) -> list[str]:
    """One file per secret (readable inside the containers it is mounted in: compose mounts
    the file as it is; the directory, 0700, keeps it from the host's other users)."""
    folder = os.path.abspath(directory)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    missing = [n for n in secret_file_names() if n not in OPTIONAL_SECRETS and not variables.get(n)]
    if missing or not variables.get("RABBITMQ_PASSWORD"):
        raise SystemExit(f"secret-files: missing {', '.join(missing or ['RABBITMQ_PASSWORD'])}")
    contents = {name.lower(): variables.get(name, "") for name in secret_file_names()}
    # No provider's key: one for compose's SMS stand-in (scripts/sms_sink.py), which checks it.
    contents["sms_api_key"] = contents["sms_api_key"] or secrets.token_urlsafe(24)
    admin = authority.admin_definitions(
        variables.get("RABBITMQ_ADMIN_USER", "dmp"), variables["RABBITMQ_PASSWORD"]
    )
    contents[BROKER_ADMIN_DEFINITIONS] = json.dumps(admin, indent=2)
    for name, value in contents.items():
        path = os.path.join(folder, name)
        with open(path, "w", encoding="utf-8") as file:
            file.write(value)
        os.chmod(path, 0o644)
    return sorted(contents)


def _read_env_file(path: str) -> dict[str, str]:
    values = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, _, value = line.partition("=")
                values[name.strip()] = value
    return values


def main(argv: list[str]) -> None:
    if argv[:1] == ["new-env"]:
        sys.stdout.write(new_env())
    elif argv[:1] == ["secret-files"] and len(argv) == 3:
        written = write_secret_files(_read_env_file(argv[1]), argv[2])
        print(f"{len(written)} secret files in {argv[2]}: {', '.join(written)}")
    elif argv[:1] == ["apply"]:
        environment = asyncio.run(apply_from(os.environ))
        parties = ", ".join(environment.bus_prefix + p for p in authority.parties())
        roles = ", ".join(environment.role(s) for s in SERVICES)
        print(f"provisioned broker users {parties}; database roles {roles}")
    else:
        raise SystemExit(
            "usage: python -m libs.provision new-env | apply | secret-files ENV_FILE DIRECTORY"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
