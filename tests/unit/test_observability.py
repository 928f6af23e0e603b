"""The alert rules and the dashboard name only metrics the services expose; the log processor
hides every INS; trace context survives being saved with an outbox row."""

from __future__ import annotations

import importlib
import io
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from libs import telemetry
from libs.logging import configure_logging, pseudonymiser
from libs.metrics import exposed_names
from libs.runtime import Runtime
from libs.tokens import key_set, new_signing_key, public_jwks
from tests.support.system import SERVICES

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
DOC = ROOT / "docs" / "observability.md"
KEY = "l0gPs3udOnYmK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bF"
INS = "287069912345678"

# Series the services expose (Prometheus' own, e.g. `up`, are not theirs).
_OURS = re.compile(r"\b((?:dmp|faststream|access|notifier)_[a-z0-9_]+)\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_SELECTOR_LABELS = re.compile(r"\b([a-z_]+)\s*(?:=~|!=|!~|=)\s*\"")
# Labels a query may group by that come from Prometheus (the scrape) or histograms.
_TARGET_LABELS = {"instance", "job", "le", "pod", "namespace"}


@cache
def _registries() -> dict[str, CollectorRegistry]:
    """Each service as built (no connection made), as it registers its metrics."""
    signing = key_set(new_signing_key())
    values: dict[str, Any] = {
        "identity_jwks": public_jwks(signing),
        "identity_signing_keys": signing,
        "operator_public_keys": {},
        "dossier_content_key": "kO7n0Zr0m4v3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "messaging_content_key": "m3sS4g1nGk3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhAx",
        "purge_proof_key": "pUrG3pr00fK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "log_pseudonym_key": KEY,
    }
    built = {}
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.main")
        runtime: Runtime = module.build(module.Settings(**values))
        built[name] = runtime.metrics
    return built


def _exposed() -> set[str]:
    return set().union(*(exposed_names(r) for r in _registries().values()))


def _labels() -> dict[str, set[str]]:
    """Label names of every exposed series (a histogram's `le` included)."""
    found: dict[str, set[str]] = {}
    for registry in _registries().values():
        for collector in list(registry._collector_to_names):
            names = registry._collector_to_names[collector]
            labels = set(getattr(collector, "_labelnames", ()))
            for name in names:
                found.setdefault(name, set()).update(labels | {"le"})
    return found


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        if isinstance(variable.get("query"), dict):
            queries.append(variable["query"]["query"])
    return queries


def _check_query(query: str, exposed: set[str], labels: dict[str, set[str]]) -> list[str]:
    problems = []
    named = set(_OURS.findall(query))
    problems += [f"{name} is not exposed (in {query!r})" for name in named - exposed]
    available = set().union(*(labels.get(name, set()) for name in named)) | _TARGET_LABELS
    for group in _BY.findall(query):
        for label in (part.strip() for part in group.split(",")):
            if label and label not in available:
                problems.append(f"no metric of {query!r} has the label {label}")
    for label in _SELECTOR_LABELS.findall(query):
        if label not in available:
            problems.append(f"no metric of {query!r} has the label {label}")
    return problems


def test_every_metric_the_alert_rules_name_is_exposed_with_the_labels_they_use() -> None:
    exposed, labels = _exposed(), _labels()
    problems = [p for rule in _rules() for p in _check_query(rule["expr"], exposed, labels)]
    assert problems == []


def test_every_metric_the_dashboard_names_is_exposed_with_the_labels_it_uses() -> None:
    exposed, labels = _exposed(), _labels()
    queries = _dashboard_queries()
    assert len(queries) >= 15
    problems = [p for query in queries for p in _check_query(query, exposed, labels)]
    assert problems == []


def test_the_rules_file_has_the_prometheus_rule_structure() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["alert"], str) and re.fullmatch(r"[A-Za-z_]\w*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            if "for" in rule:
                assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", rule["for"]), rule["for"]
            for key in ("labels", "annotations"):
                assert all(isinstance(v, str) for v in rule.get(key, {}).values())
    alerts = {rule["alert"] for rule in _rules()}
    # What the deployment issue asks for, at least.
    assert {"DeadLetters", "OutboxLagging", "ConsumerStalled", "ServiceNotReady"} <= alerts
    assert {"AlertDeliveriesGivenUp", "AlertDeliveriesFailing"} <= alerts


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_of_ours_is_documented() -> None:
    doc = DOC.read_text()
    ours = {
        name
        for name in _exposed()
        if not name.startswith("faststream_") and not name.endswith("_created")
    }
    bases = {re.sub(r"_(bucket|sum|count)$", "", name) for name in ours}
    assert {name for name in bases if name not in doc} == set()


# --- logs ------------------------------------------------------------------------------------


def test_the_ins_becomes_a_keyed_pseudonym_wherever_it_is_logged() -> None:
    stream = io.StringIO()
    configure_logging("tests", "INFO", KEY, stream=stream)
    try:
        log = structlog.get_logger()
        log.info("deadline_recorded", ins=INS, holder_key=INS, kind="space_opening")
        log.info("nested", found={"ins": INS, "others": [INS]})
        log.warning("failed", error=f"UniqueViolation: Key (ins)=({INS}) already exists")
        log.info("careless", title="Bilan sanguin", subject="Ma sérologie", body="négatif")
        try:
            raise ValueError(f"no space for {INS}")
        except ValueError:
            log.exception("crashed")
        import logging

        logging.getLogger("faststream").warning("from the standard library: %s", INS)
    finally:
        configure_logging("tests", "WARNING", KEY)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 6
    assert INS not in text
    pseudonym = pseudonymiser(KEY).pseudonym(INS)
    assert lines[0]["ins"] == lines[0]["holder_key"] == pseudonym
    assert lines[1]["found"] == {"ins": pseudonym, "others": [pseudonym]}
    assert pseudonym in lines[2]["error"] and pseudonym in lines[4]["exception"]
    assert {lines[3][k] for k in ("title", "subject", "body")} == {"[redacted]"}
    assert pseudonym in lines[5]["event"]
    # Keyed: another key, another pseudonym; the same key, the same one (across services).
    assert pseudonymiser(KEY).pseudonym(INS) == pseudonym
    assert pseudonymiser(None).pseudonym(INS) != pseudonym


# --- trace context ---------------------------------------------------------------------------


def test_a_saved_traceparent_names_the_span_it_was_saved_in() -> None:
    assert telemetry.current_traceparent() is None  # outside a trace: nothing saved or sent
    headers: dict[str, Any] = {}
    telemetry.inject(headers)
    assert headers == {}
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("writer") as span:
        saved = telemetry.current_traceparent()
        telemetry.inject(headers)
    assert saved is not None and headers == {"traceparent": saved}
    context = telemetry.context_of(saved)
    assert context is not None
    with tracer.start_as_current_span("relay", context=context) as child:
        assert child.get_span_context().trace_id == span.get_span_context().trace_id
    assert telemetry.context_of(None) is None
    assert telemetry.context_of("not a traceparent") is None


def test_without_an_exporter_a_service_does_not_trace() -> None:
    quiet = telemetry.Tracing("dossier")
    assert not quiet.enabled and quiet.middlewares() == []
    with quiet.tracer.start_as_current_span("nothing"):
        assert telemetry.current_traceparent() is None
