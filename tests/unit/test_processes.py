"""What each service process is given: its own secrets and no other's."""

from __future__ import annotations

from scripts.processes import SECRET_OWNERS, SERVICES, service_environment


def test_each_secret_reaches_only_the_service_that_uses_it() -> None:
    values = {key: f"secret-{key}" for key in SECRET_OWNERS} | {"log_level": "INFO"}
    for name in SERVICES:
        env = service_environment(name, values)
        for key, owners in SECRET_OWNERS.items():
            assert (key.upper() in env) == (name in owners), (name, key)
        assert env["LOG_LEVEL"] == "INFO"
