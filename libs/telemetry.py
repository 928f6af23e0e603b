"""OpenTelemetry tracing: one deposit is one trace across dossier, access, notifier, messaging.

The W3C `traceparent` travels with every message as an AMQP header:

- a command: `RpcClient` injects the current context into the request's headers;
- an event: `libs.outbox.add` saves the current context with the outbox row (`trace_context`,
  a nullable column), and the relay, when it publishes the row, starts a producer span under it
  and sends its context as the message's `traceparent` header (a row without one publishes as
  before; a relay that does not trace passes the saved one on unchanged);
- a consumer: faststream's `RabbitTelemetryMiddleware` extracts the header and runs the handler
  in a consumer span under it, so whatever the handler writes to the outbox or asks by RPC
  continues the trace.

Off unless an exporter is configured (`otlp_endpoint`, OTLP over HTTP): then no middleware is
installed, no span is made, nothing is written to the outbox's `trace_context` and no header is
sent; the cost is one context-variable lookup per outbox write and RPC request. Each service has
its own tracer provider, its resource naming the service (six services share a process in
tests). Span attributes are ids, queue names and sizes, never a payload.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
# Exporters every service built in this process also sends its spans to (tests: in memory).
_SHARED_EXPORTERS: list[SpanExporter] = []


@contextlib.contextmanager
def exporting_to(exporter: SpanExporter) -> Iterator[SpanExporter]:
    """Every service built while this is open traces, and sends its spans to `exporter` too."""
    _SHARED_EXPORTERS.append(exporter)
    try:
        yield exporter
    finally:
        _SHARED_EXPORTERS.remove(exporter)


class _SharedProcessor(SimpleSpanProcessor):
    """Exports as it ends each span; a service stopping leaves the shared exporter open."""

    def shutdown(self) -> None:
        pass


class Tracing:
    """A service's tracer: the SDK's when an exporter is configured, the API's no-op otherwise."""

    def __init__(
        self, service: str, *, otlp_endpoint: str | None = None, sample_ratio: float = 1.0
    ) -> None:
        self.service = service
        self.provider: TracerProvider | None = None
        processors: list[Any] = [_SharedProcessor(e) for e in _SHARED_EXPORTERS]
        if otlp_endpoint:
            # Imported only when used: the exporter pulls protobuf and an HTTP client in.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        if processors:
            self.provider = TracerProvider(
                resource=Resource.create(
                    {"service.name": service, "service.namespace": "espace-sante"}
                ),
                sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
            )
            for processor in processors:
                self.provider.add_span_processor(processor)
        self.tracer: trace.Tracer = (
            self.provider.get_tracer("espace-sante")
            if self.provider is not None
            else trace.NoOpTracer()
        )

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def middlewares(self) -> list[Any]:
        """faststream's consumer-side middleware, when tracing: extracts `traceparent` and runs
        each handler in a consumer span."""
        if self.provider is None:
            return []
        from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

        return [RabbitTelemetryMiddleware(tracer_provider=self.provider)]

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes a batch exporter


def current_traceparent() -> str | None:
    """The current span's context as a W3C `traceparent`, or None outside any recorded trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def inject(headers: dict[str, Any]) -> None:
    """Add the current trace context to outgoing message headers (nothing outside a trace)."""
    if trace.get_current_span().get_span_context().is_valid:
        _PROPAGATOR.inject(headers)


def context_of(traceparent: str | None) -> Context | None:
    """The context a saved `traceparent` names (None when there is none or it is unreadable)."""
    if not traceparent:
        return None
    context = _PROPAGATOR.extract({TRACEPARENT: traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None
