"""The Prometheus metrics every service exposes at `GET /metrics` (the health port).

faststream's `RabbitPrometheusMiddleware` counts, sizes and times every delivery per handler
(`faststream_received_*`), labelled with `service`; but the runtime acknowledges every message
itself (a parked message is acknowledged too), so faststream sees every delivery "acked". What
happened to each message is counted here, by the runtime that decides it:

- `dmp_messages_handled_total{service, queue, kind, outcome}`: every delivery once, by what
  became of it (events: applied, duplicate, dead_lettered, given_back; commands: ok, refused,
  failed, unavailable, expired, dead_lettered);
- `dmp_message_failures_total{service, queue, reason}`: failed attempts that will be retried
  (`transient`: the infrastructure was away; `error`: the handler failed);
- `dmp_messages_dead_lettered_total{service, queue, reason}`: parked by the runtime, by a coarse
  reason (schema, unknown_event, too_large, forged, refused, poison, unanswered);
- `dmp_message_handling_seconds{service, queue, kind}`: handler latency (histogram);
- `dmp_dead_letter_queue_messages{service, queue}`: messages in each of the service's `.dlq`
  queues now (also those the broker dead-lettered past the delivery limit), sampled at scrape;
- `dmp_outbox_unsent_messages{service}`, `dmp_outbox_oldest_unsent_age_seconds{service}`: the
  outbox backlog and lag, sampled at scrape; `dmp_outbox_published_total{service}`,
  `dmp_outbox_publish_failures_total{service}`, `dmp_outbox_relay_delay_seconds{service}`
  (written to confirmed by the broker);
- `dmp_ready{service}`, `dmp_queue_consumed{service, queue}`, `dmp_queue_stalled{service,
  queue}`: readiness as `/readyz` says it, sampled at scrape;
- each service's own: `access_decisions_total{service, rule, outcome, action}` and
  `notifier_alert_deliveries_total{service, channel, outcome}`.

Labels are bounded (queue names, rule ids, reason codes): never an id, an INS or a free text.
"""

from __future__ import annotations

from functools import cached_property

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Handler latency: a decision takes milliseconds, a deposit with its content tens of them.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From the outbox write to the broker's confirm: milliseconds, unless the broker is away.
RELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0)


class ServiceMetrics:
    """One service's metrics, in its own registry (six services may share a process in tests)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.handled = Counter(
            "dmp_messages_handled",
            "Deliveries handled, by queue, kind (event, command) and what became of them",
            ["service", "queue", "kind", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "dmp_message_failures",
            "Failed attempts to handle a message that will be retried (transient or error)",
            ["service", "queue", "reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "dmp_messages_dead_lettered",
            "Messages the runtime parked in the queue's dead-letter queue, by reason",
            ["service", "queue", "reason"],
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "dmp_message_handling_seconds",
            "Time to handle a delivery (parse, transaction, reply), by queue and kind",
            ["service", "queue", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dead_letter_depth = Gauge(
            "dmp_dead_letter_queue_messages",
            "Messages waiting in the service's dead-letter queues (sampled at scrape)",
            ["service", "queue"],
            registry=registry,
        )
        self.outbox_unsent = Gauge(
            "dmp_outbox_unsent_messages",
            "Outbox rows not yet confirmed by the broker (sampled at scrape)",
            ["service"],
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "dmp_outbox_oldest_unsent_age_seconds",
            "Age of the oldest unsent outbox row, 0 when none (sampled at scrape)",
            ["service"],
            registry=registry,
        )
        self.outbox_published = Counter(
            "dmp_outbox_published",
            "Outbox rows published and confirmed by the broker",
            ["service"],
            registry=registry,
        )
        self.outbox_publish_failures = Counter(
            "dmp_outbox_publish_failures",
            "Outbox publishes the broker refused or did not confirm (retried)",
            ["service"],
            registry=registry,
        )
        self.outbox_delay = Histogram(
            "dmp_outbox_relay_delay_seconds",
            "From the outbox write to the broker's confirm of its publish",
            ["service"],
            buckets=RELAY_BUCKETS,
            registry=registry,
        )
        self.ready = Gauge(
            "dmp_ready", "1 when the replica is ready (as /readyz)", ["service"], registry=registry
        )
        self.queue_consumed = Gauge(
            "dmp_queue_consumed",
            "1 when the broker counts a consumer on the queue (sampled at scrape)",
            ["service", "queue"],
            registry=registry,
        )
        self.queue_stalled = Gauge(
            "dmp_queue_stalled",
            "1 when the queue has deliveries in hand and none finished for stall_seconds",
            ["service", "queue"],
            registry=registry,
        )
        self.sample_failures = Counter(
            "dmp_metrics_sample_failures",
            "Scrape-time samples (outbox, dead-letter queues) that could not be taken",
            ["service", "what"],
            registry=registry,
        )
        self.outbox_unsent.labels(service).set(0)
        self.outbox_oldest_age.labels(service).set(0)
        self.ready.labels(service).set(0)

    # The services' own: registered by the service that uses it, when it builds.

    @cached_property
    def access_decisions(self) -> Counter:
        return Counter(
            "access_decisions",
            "Access decisions committed, by the rule that took them, outcome and action",
            ["service", "rule", "outcome", "action"],
            registry=self.registry,
        )

    @cached_property
    def alert_deliveries(self) -> Counter:
        return Counter(
            "notifier_alert_deliveries",
            "Alert deliveries by channel and outcome (sent, retried, given_up)",
            ["service", "channel", "outcome"],
            registry=self.registry,
        )


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can expose, used or not yet (`x_total`, `x_bucket`...)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for metric in registry.collect():
        names.update(metric.name + suffix for suffix in suffixes.get(metric.type, ("",)))
    return names
