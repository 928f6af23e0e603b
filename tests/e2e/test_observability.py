"""What ops see of the journey: metrics that moved, one trace per deposit, logs without an INS.

The six services run in this process as deployed, each with its health port (`/metrics`), each
tracing into one in-memory exporter (libs/telemetry.py), their logs captured as the JSON lines
they write (libs/logging.py).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from libs import telemetry
from libs.bus import topology
from libs.logging import configure_logging, pseudonymiser
from libs.runtime import Runtime
from tests.support.journey import (
    DOCTOR_BODY,
    DOCTOR_SUBJECT,
    HOLDER_BODY,
    HOLDER_SUBJECT,
    SECRET,
    TITLE,
    Stage,
)
from tests.support.system import running_system

pytestmark = pytest.mark.e2e

Samples = list[tuple[str, dict[str, str], float]]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    with telemetry.exporting_to(exporter):
        yield exporter


@pytest.fixture(scope="module")
async def system(
    settings_values: dict[str, Any], spans: InMemorySpanExporter
) -> AsyncIterator[dict[str, Runtime]]:
    """All six, built while the in-memory exporter is installed, each with a health port."""
    async with running_system(
        settings_values, sweep_interval_seconds=0.2, health_port=0
    ) as runtimes:
        yield runtimes


@pytest.fixture(scope="module")
def logs(system: dict[str, Runtime], settings_values: dict[str, Any]) -> Iterator[io.StringIO]:
    """Every log line the services write from now on (structlog's and the standard library's)."""
    buffer = io.StringIO()
    key = settings_values["log_pseudonym_key"]
    configure_logging("tests", "INFO", key, stream=buffer)
    yield buffer
    configure_logging("tests", settings_values["log_level"], key)


async def _scrape(runtime: Runtime) -> Samples:
    assert runtime._health_server is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", runtime._health_server.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200", head
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for found, have, value in samples
        if found == name and all(have.get(k) == v for k, v in labels.items())
    )


def _present(samples: Samples, name: str, **labels: str) -> bool:
    return any(
        found == name and all(have.get(k) == v for k, v in labels.items())
        for found, have, _ in samples
    )


async def _eventually(check: Any, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.2)
    return result


async def test_metrics_scraped_over_http_move_with_the_journey(
    system: dict[str, Runtime], stage: Stage, settings_values: dict[str, Any]
) -> None:
    cast = await stage.cast()
    await stage.martin_deposits_the_lab_report(cast)
    await stage.read_once_access_knows(cast.sophie.ins, cast.martin.token)
    await stage.bernard_is_refused_reading(cast)

    access = await _scrape(system["access"])
    assert _total(access, "access_decisions_total", service="access", outcome="granted") >= 2
    denied = [
        labels
        for name, labels, value in access
        if name == "access_decisions_total" and labels["outcome"] == "denied" and value
    ]
    assert denied and all(labels["rule"] for labels in denied), denied
    assert _total(access, "dmp_outbox_published_total", service="access") >= 2

    dossier = await _scrape(system["dossier"])
    assert (
        _total(
            dossier,
            "dmp_messages_handled_total",
            service="dossier",
            queue="dossier.commands",
            kind="command",
            outcome="ok",
        )
        >= 2
    )
    assert _total(dossier, "dmp_message_handling_seconds_count", queue="dossier.commands") >= 2
    assert _total(dossier, "faststream_received_messages_total", service="dossier") >= 2

    async def alerts_handled_and_mailed() -> bool:
        notifier = await _scrape(system["notifier"])
        applied = _total(notifier, "dmp_messages_handled_total", kind="event", outcome="applied")
        sent = _total(notifier, "notifier_alert_deliveries_total", channel="email", outcome="sent")
        return applied >= 1 and sent >= 1

    await _eventually(alerts_handled_and_mailed)

    for name, runtime in system.items():
        samples = await _scrape(runtime)
        assert _present(samples, "dmp_outbox_unsent_messages", service=name), name
        assert _present(samples, "dmp_outbox_oldest_unsent_age_seconds", service=name), name
        assert _total(samples, "dmp_ready", service=name) == 1, name
        assert _present(samples, "dmp_dead_letter_queue_messages", service=name), name


async def test_a_message_the_runtime_parks_is_counted_as_dead_lettered(
    system: dict[str, Runtime], settings_values: dict[str, Any]
) -> None:
    notifier = system["notifier"]
    queue = next(q for q in notifier._queues if not q.endswith("commands"))
    before = _total(await _scrape(notifier), "dmp_messages_dead_lettered_total", queue=queue)
    connection = await aio_pika.connect(settings_values["amqp_url"])
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(b"not an envelope", message_id="observability-garbage"),
            routing_key=queue,
        )

        async def counted() -> Samples | None:
            samples = await _scrape(notifier)
            moved = _total(
                samples, "dmp_messages_dead_lettered_total", queue=queue, reason="schema"
            )
            depth = _total(samples, "dmp_dead_letter_queue_messages", queue=queue)
            return samples if moved > before and depth >= 1 else None

        await _eventually(counted)
    finally:
        # Take it off the dead-letter queue again: other modules expect it empty.
        dlq = await channel.get_queue(topology.dlq_name(queue), ensure=False)
        while (message := await dlq.get(fail=False, no_ack=False)) is not None:
            if message.message_id == "observability-garbage":
                await message.ack()
            else:
                await message.nack(requeue=True)
                break
        await connection.close()


def _span_service(span: ReadableSpan) -> str:
    return str(span.resource.attributes.get("service.name", ""))


async def test_a_deposit_is_one_trace_across_dossier_access_notifier_and_messaging(
    system: dict[str, Runtime], stage: Stage, spans: InMemorySpanExporter
) -> None:
    cast = await stage.cast()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with provider.get_tracer("tests").start_as_current_span("practice software deposits") as root:
        deposited = await stage.martin_deposits_the_lab_report(cast)
    trace_id = root.get_span_context().trace_id

    def services_in_trace() -> set[str]:
        return {
            _span_service(span)
            for span in spans.get_finished_spans()
            if span.context is not None and span.context.trace_id == trace_id
        }

    wanted = {"dossier", "access", "notifier", "messaging"}

    async def all_there() -> bool:
        return wanted <= services_in_trace()

    try:
        await _eventually(all_there)
    except TimeoutError:
        raise AssertionError(f"the deposit's trace reached only {services_in_trace()}") from None
    in_trace = [
        s for s in spans.get_finished_spans() if s.context and s.context.trace_id == trace_id
    ]
    names = {(_span_service(s), s.name) for s in in_trace}
    # The request continued by dossier, the decision by access, the events by their consumers.
    assert ("dossier", "dmp.commands.dossier.commands process") in names, names
    assert any(service == "access" and "access.decide" in name for service, name in names)
    assert any(service == "access" and name.endswith(" publish") for service, name in names)
    # Span attributes are ids and names: nothing of the document.
    for span in in_trace:
        text = json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})
        assert TITLE not in text and cast.sophie.ins not in text, (span.name, text)
    assert deposited.document_id


async def test_logs_carry_no_ins_in_clear_and_no_medical_content(
    system: dict[str, Runtime],
    stage: Stage,
    logs: io.StringIO,
    settings_values: dict[str, Any],
) -> None:
    cast = await stage.cast()
    await stage.martin_deposits_the_lab_report(cast)
    await stage.read_once_access_knows(cast.sophie.ins, cast.martin.token)
    await stage.bernard_is_refused_reading(cast)
    await stage.sophie_and_martin_write_to_each_other(cast)
    await stage.tap.wait_for("AccessLogged", count=2, ins=cast.sophie.ins)
    await asyncio.sleep(1.0)  # the consumers' last lines

    text = logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    ins = cast.sophie.ins
    assert ins not in text
    # The holder is there, as her pseudonym: ops can follow her without knowing who she is.
    pseudonym = pseudonymiser(settings_values["log_pseudonym_key"]).pseudonym(ins)
    assert pseudonym in text
    for secret in (TITLE, SECRET.decode(), HOLDER_SUBJECT, HOLDER_BODY, DOCTOR_SUBJECT):
        assert secret not in text, secret
    assert DOCTOR_BODY.splitlines()[0] not in text
