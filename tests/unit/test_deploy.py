"""deploy/compose.yaml: provisioning first, then each service as itself with its own secrets."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from libs import provision
from libs.bus import authority
from tests.support import compose

SERVICES = provision.SERVICES


def _secrets() -> set[str]:
    """Every `.env` variable that is a secret: passwords and private or content keys."""
    made = compose.parse_env(provision.new_env())
    return {name for name in made if name != "IDENTITY_JWKS"} | {
        key.upper() for key in provision.SECRET_OWNERS
    }


def _own_secrets(service: str) -> set[str]:
    return {
        provision.password_variable("BUS", service),
        provision.password_variable("DB", service),
        *(key.upper() for key, owners in provision.SECRET_OWNERS.items() if service in owners),
    }


def test_every_variable_compose_needs_is_in_env_example_or_made_by_new_env() -> None:
    env = compose.parse_env(compose.ENV_EXAMPLE.read_text()) | compose.parse_env(
        provision.new_env()
    )
    needed = set()
    for service in compose.compose()["services"]:
        for value in compose.raw_environment(service).values():
            needed |= compose.references(value)
    assert needed - env.keys() == set()


def test_no_secret_is_written_in_env_example() -> None:
    example = compose.parse_env(compose.ENV_EXAMPLE.read_text())
    assert {k for k, v in example.items() if v} & _secrets() - {"OPERATOR_PUBLIC_KEYS"} == set()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_container_gets_only_its_own_secrets(service: str) -> None:
    referenced = set()
    for value in compose.raw_environment(service).values():
        referenced |= compose.references(value)
    assert referenced & _secrets() == _own_secrets(service)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_connects_as_itself_once_provisioned(service: str) -> None:
    env = compose.parse_env(provision.new_env()) | compose.parse_env(
        compose.ENV_EXAMPLE.read_text()
    )
    container = compose.environment(service, env)
    amqp, database = urlsplit(container["AMQP_URL"]), urlsplit(container["DATABASE_URL"])
    assert (amqp.username, amqp.password) == (
        service,
        env[provision.password_variable("BUS", service)],
    )
    assert (database.username, database.password) == (
        "dmp_" + service,
        env[provision.password_variable("DB", service)],
    )
    assert container["SERVICE"] == service
    assert compose.compose()["services"][service]["depends_on"] == {
        "provision": {"condition": "service_completed_successfully"}
    }


def test_only_the_provisioning_job_gets_the_administrators_and_every_partys_password() -> None:
    referenced = set()
    for value in compose.raw_environment("provision").values():
        referenced |= compose.references(value)
    assert referenced == {
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        *(provision.password_variable("BUS", p) for p in authority.parties()),
        *(provision.password_variable("DB", s) for s in SERVICES),
    }
