"""What every service is made of: one object that owns the connections and the edges.

A service builds a `Runtime`, registers its event handlers (`on_events`) and a use case for
each of its command contracts (`handle`), and runs it. The runtime gives every edge the same
discipline:

- events: parse the envelope and the typed payload; a message that fails is dead-lettered with
  the reason and acknowledged (it can never succeed). Otherwise one transaction records the event
  id in the inbox and applies the handler, which writes any outgoing events to the outbox; the
  message is acknowledged only after commit. An unexpected failure requeues the message after a
  short backoff; past the delivery limit the broker dead-letters it.
- commands: request/reply, one handler per command contract (`handle`); the token is verified
  locally; the reply is the command's typed result or a clear error.

Every delivery is counted by what became of it and timed (libs/metrics.py), and, when tracing
is configured, handled in a span continuing the sender's trace (libs/telemetry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic

import structlog
from faststream import FastStream
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from faststream.rabbit.subscriber import RabbitSubscriber
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError
from typing_extensions import TypeVar  # with defaults (PEP 696) before Python 3.13

from libs import db, outbox
from libs.budget import ByteBudget
from libs.bus import topology
from libs.bus.authority import OPS
from libs.bus.publisher import ConfirmingPublisher
from libs.bus.rpc import DEADLINE_HEADER, RpcClient
from libs.bus.topology import ORIGINAL_PUBLISHER
from libs.clock import Clock
from libs.contracts.commands import Ping, Readiness
from libs.contracts.envelope import Contract, Envelope, Event, open_envelope
from libs.contracts.rpc import (
    SMALL_REQUEST_BYTES,
    Command,
    ErrorCode,
    ErrorInfo,
    Reply,
    Request,
    is_large_lane,
    large_lane,
)
from libs.db import Conn, Pool
from libs.errors import DomainError, Forbidden, InvalidInput
from libs.faults import is_transient
from libs.health import HealthServer, Progress
from libs.inbox import applying_once
from libs.logging import (
    BROKER_LOGGER,
    bind_correlation,
    configure_logging,
    new_message_context,
)
from libs.maintenance import Periodic, prune
from libs.metrics import ServiceMetrics
from libs.outbox import OutboxRelay
from libs.settings import ServiceSettings
from libs.telemetry import Tracing
from libs.tokens import Claims, TokenVerifier
from libs.uow import AlreadyAnswered, RequestKey, UnitOfWork, stored_reply, unit_of_work

log = structlog.get_logger()

C = TypeVar("C", bound=Contract)
# Each service's own settings class: `Runtime[DossierSettings]` types `ctx.runtime.settings`.
S = TypeVar("S", bound=ServiceSettings, default=ServiceSettings)

# A message whose handler fails this many times, for a reason that is not an outage, is poison.
POISON_ATTEMPTS = 3


# The name faststream gives the message being handled in its context (faststream.Context).
_FASTSTREAM_MESSAGE = "message"


async def _the_message(message: RabbitMessage) -> RabbitMessage:
    """What the handlers are given: the message itself, undecoded. faststream's decoder would
    parse JSON before the runtime sees the message, and a body that fails there is never acked
    nor dead-lettered (it halts the consumer): the runtime decodes. The broker injects nothing
    (`apply_types=False`): fast_depends resolved the message as a context field in a worker
    thread, a thread hop per message (about a tenth of each service's CPU under load)."""
    return message


async def _ack(message: Any) -> None:
    try:
        await message.ack()
    except Exception as exc:
        # The channel went away after the effects committed: the redelivery meets the inbox.
        log.warning("ack_failed", error=repr(exc))


@dataclass(frozen=True)
class EventContext(Generic[S]):
    runtime: Runtime[S]
    conn: Conn
    envelope: Envelope

    @property
    def correlation_id(self) -> str:
        return self.envelope.correlation_id

    @property
    def causation_id(self) -> str:
        return str(self.envelope.event_id)


@dataclass(frozen=True)
class CommandContext(Generic[S]):
    runtime: Runtime[S]
    actor: Claims | None
    correlation_id: str
    # The caller's token as received, to ask another service on the caller's behalf.
    token: str | None = None
    # When the caller stops waiting (epoch ms), if they said.
    deadline_ms: int | None = None
    # The broker user that sent the request, as RabbitMQ validated it (`user_id`): which service
    # or kind of client is calling, whoever the token says the person is.
    caller: str | None = None
    # The caller's request id, scoped to who sent it (see libs.uow).
    request: RequestKey | None = None
    request_id: str | None = None

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """The command's transaction; claims its request id and stores its reply (libs.uow)."""
        return unit_of_work(
            self.runtime.pool,
            correlation_id=self.correlation_id,
            now=self.runtime.now(),
            request=self.request,
        )

    def derived_request_id(self, step: str) -> str | None:
        """The id to pass on when this request asks another service: the same on a retry."""
        return None if self.request_id is None else f"{self.request_id}:{step}"[:128]

    def remaining(self, default: float) -> float:
        """Seconds left for a call made on the caller's behalf: never past their deadline."""
        if self.deadline_ms is None:
            return default
        return max(0.0, min(default, self.deadline_ms / 1000 - time.time()))

    def require_caller(self, *parties: str) -> str:
        """The calling service, if it is one of `parties`; Forbidden otherwise."""
        allowed = {self.runtime.bus_user(party) for party in parties}
        if self.caller is None or self.caller not in allowed:
            raise Forbidden(f"only {', '.join(parties)} may send this")
        return self.caller

    def require_actor(self) -> Claims:
        assert self.actor is not None, "command registered without authentication"
        return self.actor


EventHandler = Callable[[EventContext[Any], Any], Awaitable[None]]


@dataclass(frozen=True)
class Only:
    """An event handler for the events `when` accepts (a pure test of the event). The others,
    checked as any event is (schema, publisher), are acknowledged without a transaction: there
    is nothing to apply, so nothing to remember in the inbox either (a redelivery is ignored
    again). A service that takes every deposit for the few that concern it pays so nothing for
    the rest."""

    handler: EventHandler
    when: Callable[[Any], bool]


@dataclass(frozen=True)
class Handler(Generic[C]):
    """A command contract and the use case that serves it (registered with `Runtime.handle`)."""

    contract: type[C]
    use_case: Callable[[CommandContext[Any], C], Awaitable[Contract | dict[str, Any]]]
    # How long a reply may be replayed under its request id (None: while it is kept).
    replay_window: timedelta | None = None
    # Look the request id up before the use case runs. Needed when the use case acts before
    # its unit of work (asks another service, sends): a retry must not act again. A use case
    # whose every effect is in its unit of work is answered by the claim there as well, and
    # saves the lookup.
    replay_first: bool = True


class Permanent(DomainError):
    """An event that can never be applied (e.g. it refers to something that cannot exist)."""

    code = ErrorCode.PERMANENT_FAILURE


def describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )


@dataclass
class Background:
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


class Runtime(Generic[S]):
    def __init__(
        self,
        name: str,
        settings: S,
        migrations: Path,
        *,
        shared_migrations: dict[str, Path] | None = None,
    ) -> None:
        self.name = name
        self.schema = name
        self.settings = settings
        # In order: libs' own (every service), the shared sets this service opts into (a
        # projection's table), then its own, which may build on both.
        self.migrations = {
            "libs": db.LIBS_MIGRATIONS,
            **(shared_migrations or {}),
            name: migrations,
        }
        self.clock = Clock(adjustable=settings.clock_mode == "adjustable")
        self.tokens = TokenVerifier(settings.identity_jwks, issuer=settings.identity_issuer)
        # faststream's Prometheus middleware counts, times and sizes every message of every
        # queue (received, processed, failed, in progress), served at /metrics with the probes;
        # what became of each message, the outbox and readiness are the runtime's own
        # (`meters`, libs/metrics.py). Every series carries `service`.
        self.metrics = CollectorRegistry()
        self.meters = ServiceMetrics(self.metrics, name)
        # Spans only when an exporter is configured (libs/telemetry.py).
        self.tracing = Tracing(
            name, otlp_endpoint=settings.otlp_endpoint, sample_ratio=settings.trace_sample_ratio
        )
        self.broker = RabbitBroker(
            settings.amqp_url,
            middlewares=[
                *self.tracing.middlewares(),
                RabbitPrometheusMiddleware(
                    registry=self.metrics, app_name=name, custom_labels={"service": name}
                ),
            ],
            default_channel=Channel(prefetch_count=settings.prefetch, on_return_raises=True),
            graceful_timeout=settings.graceful_timeout_seconds,
            ack_policy=AckPolicy.MANUAL,
            log_level=logging.DEBUG,
            # A logger of ours, not faststream's own (which writes plain text to stdout): its
            # lines go through libs.logging's processors (JSON, INS pseudonymised).
            logger=logging.getLogger(BROKER_LOGGER),
            app_id=name,
            apply_types=False,
        )
        self.publisher = ConfirmingPublisher(settings.amqp_url, name=name)
        self.rpc = RpcClient(
            settings.amqp_url,
            name=name,
            timeout=settings.rpc_timeout_seconds,
            exchange=topology.INTERNAL_EXCHANGE,
            tracer=self.tracing.tracer if self.tracing.enabled else None,
        )
        self.request_bytes = ByteBudget(settings.request_bytes_at_once)
        self._pool: Pool | None = None
        self.relay: OutboxRelay | None = None
        self._queues: dict[str, list[str]] = {}
        self._command_queues: set[str] = set()
        self._commands: dict[str, dict[tuple[str, int], Handler[Any]]] = {}
        self._subscribers: dict[str, Any] = {}
        self._background: list[Background] = []
        self._started = False
        pruner = Periodic("pruner", settings.prune_interval_seconds, self._prune)
        self.add_background(pruner.start, pruner.stop)
        self.health = Progress(settings.stall_seconds)
        self._health_server = (
            HealthServer(
                settings.health_host,
                settings.health_port,
                self.readiness,
                self.scrape,
            )
            if settings.health_port is not None
            else None
        )

    @property
    def pool(self) -> Pool:
        assert self._pool is not None, f"{self.name} not started"
        return self._pool

    def now(self) -> Any:
        return self.clock.now()

    def bus_user(self, service: str) -> str:
        """The broker user a service (or kind of client) connects as in this deployment."""
        return f"{self.settings.bus_user_prefix}{service}"

    # --- registration ---------------------------------------------------------------------

    def on_events(self, queue: str, handlers: Mapping[type[Event], EventHandler | Only]) -> None:
        self._queues[queue] = [cls.routing_key() for cls in handlers]

        subscriber = self._subscriber(queue)

        @subscriber
        async def consume(message: RabbitMessage) -> None:
            self.health.began(queue)
            started = time.perf_counter()
            outcome = "failed"
            try:
                with self._let_go_when_handled(message):
                    outcome = await self._consume_event(queue, handlers, message)
            finally:
                self.health.ended(queue)
                self._count(queue, "event", outcome, started)

    def handle(
        self,
        contract: type[C],
        use_case: Callable[[CommandContext[Any], C], Awaitable[Contract | dict[str, Any]]],
        *,
        replay_window: timedelta | None = None,
        replay_first: bool = True,
    ) -> None:
        """Serve `contract` (a `libs.contracts.rpc.Command`) with `use_case`, on its queue
        (`replay_window`, `replay_first`: see `Handler`)."""
        assert issubclass(contract, Command), f"{contract.__name__} is not a command contract"
        queue = contract.QUEUE
        if queue not in self._commands:
            # Every command queue answers Ping: readiness probes and the demo wait on it.
            self._commands[queue] = {(Ping.NAME, Ping.VERSION): Handler(Ping, self._ping)}
            self._serve_queue(queue, self._commands[queue])
        if contract.LARGE and (lane := large_lane(queue)) not in self._commands:
            # The same commands, a few deliveries at a time: at most `large_prefetch` requests
            # of up to `max_message_bytes` in hand, whatever a burst of documents sends.
            self._commands[lane] = self._commands[queue]
            self._serve_queue(lane, self._commands[queue], prefetch=self.settings.large_prefetch)
        key = (contract.NAME, contract.VERSION)
        assert key not in self._commands[queue], f"{contract.NAME} registered twice"
        self._commands[queue][key] = Handler(contract, use_case, replay_window, replay_first)

    def _serve_queue(
        self,
        queue: str,
        commands: dict[tuple[str, int], Handler[Any]],
        prefetch: int | None = None,
    ) -> None:
        self._queues[queue] = []
        self._command_queues.add(queue)
        subscriber = self._subscriber(queue, prefetch)

        @subscriber
        async def serve(message: RabbitMessage) -> None:
            self.health.began(queue)
            started = time.perf_counter()
            outcome = "failed"
            try:
                with self._let_go_when_handled(message):
                    outcome = await self._serve_command(queue, commands, message)
                self.health.progressed(queue)
            finally:
                self.health.ended(queue)
                self._count(queue, "command", outcome, started)

    @contextlib.contextmanager
    def _let_go_when_handled(self, message: RabbitMessage) -> Iterator[None]:
        """Nothing keeps a message once handled: its body (up to `max_message_bytes`) is freed
        then, not minutes later. Two things kept it. faststream keeps the message it is handling
        in a context variable, and asyncio copies the context into every timer and callback
        scheduled meanwhile (a call's deadline, the driver's five-minute expiry of a statement
        it prepared), kept until due, cancelled or not: while the runtime handles a message,
        the variable is empty. And faststream caches what its decoder returned on the message,
        here the message itself: a cycle, freed only by a full garbage collection."""
        token = self.broker.context.set_local(_FASTSTREAM_MESSAGE, None)
        try:
            yield
        finally:
            self.broker.context.reset_local(_FASTSTREAM_MESSAGE, token)
            message.clear_cache()

    def _count(self, queue: str, kind: str, outcome: str, started: float) -> None:
        meters, service = self.meters, self.name
        meters.handled.labels(service, queue, kind, outcome).inc()
        meters.handling_seconds.labels(service, queue, kind).observe(time.perf_counter() - started)

    def _subscriber(self, queue: str, prefetch: int | None = None) -> RabbitSubscriber:
        subscriber: RabbitSubscriber = self.broker.subscriber(
            RabbitQueue(queue, declare=False),
            no_reply=True,
            ack_policy=AckPolicy.MANUAL,
            decoder=_the_message,
            # A channel of its own for another prefetch (the broker's default channel's is
            # `prefetch`).
            channel=(
                None
                if prefetch is None
                else Channel(prefetch_count=prefetch, on_return_raises=True)
            ),
        )
        self._subscribers[queue] = subscriber
        return subscriber

    def add_background(
        self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
    ) -> None:
        self._background.append(Background(start, stop))

    async def _ping(self, _ctx: CommandContext, _c: Ping) -> Readiness:
        return Readiness.model_validate(await self.readiness())

    async def readiness(self) -> dict[str, Any]:
        """Ready when started, every queue consumed, the database answering, nothing stalled."""
        consuming = {queue: await self._consuming(queue) for queue in self._subscribers}
        database = await self._database_answers()
        broker = self.publisher.connected
        stalled = self.health.stalled()
        return {
            "service": self.name,
            "ready": self._started
            and all(consuming.values())
            and database
            and broker
            and not stalled,
            "consuming": consuming,
            "database": database,
            "broker": broker,
            "stalled": stalled,
            "last_infrastructure_error": self.health.last_infrastructure_error,
        }

    async def _database_answers(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with asyncio.timeout(2):
                await self._pool.fetchval("SELECT 1")
        except Exception as exc:
            self.health.infrastructure_failed(exc)
            return False
        return True

    async def _consuming(self, queue: str) -> bool:
        """Whether the queue is consumed, as the broker counts it. The broker can cancel a
        consumer (queue deleted, node lost) and aio-pika's robust connection does not bring it
        back (aio-pika #334): then the count is 0 and the service is not ready. With several
        replicas the count is theirs together: one replica losing its consumer while another
        serves is not seen here (the queue is still served)."""
        subscriber = self._subscribers[queue]
        if not (self._started and subscriber.running):
            return False
        return bool(await self.publisher.consumers(queue))

    async def scrape(self) -> bytes:
        """The metrics as Prometheus reads them, the sampled gauges refreshed first (at most a
        few seconds: a slow database or broker leaves them as last sampled)."""
        try:
            async with asyncio.timeout(3):
                await self._sample()
        except TimeoutError:
            self.meters.sample_failures.labels(self.name, "timeout").inc()
        return generate_latest(self.metrics)

    async def _sample(self) -> None:
        meters, service = self.meters, self.name
        if self._pool is not None:
            try:
                unsent, oldest = await outbox.backlog(self._pool)
            except Exception:
                meters.sample_failures.labels(service, "outbox").inc()
            else:
                meters.outbox_unsent.labels(service).set(unsent)
                meters.outbox_oldest_age.labels(service).set(oldest)
        queues = sorted(self._queues)
        depths = await asyncio.gather(
            *(self.publisher.counts(topology.dlq_name(queue)) for queue in queues)
        )
        for queue, counts in zip(queues, depths, strict=True):
            if counts is None:
                meters.sample_failures.labels(service, "dead_letters").inc()
            else:
                meters.dead_letter_depth.labels(service, queue).set(counts[0])
        ready = await self.readiness()
        meters.ready.labels(service).set(1 if ready["ready"] else 0)
        for queue, consumed in ready["consuming"].items():
            meters.queue_consumed.labels(service, queue).set(1 if consumed else 0)
        for queue in queues:
            meters.queue_stalled.labels(service, queue).set(1 if queue in ready["stalled"] else 0)

    async def _prune(self) -> None:
        settings = self.settings
        deleted = await prune(
            self.pool,
            {
                "outbox": timedelta(days=settings.outbox_retention_days),
                "inbox": timedelta(days=settings.inbox_retention_days),
                "requests": timedelta(days=settings.request_retention_days),
            },
        )
        if any(deleted.values()):
            log.info("pruned", **deleted)

    # --- lifecycle --------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Everything but consuming: database, migrations, clock, publisher, topology."""
        configure_logging(self.name, self.settings.log_level, self.settings.log_pseudonym_key)
        self._pool = await db.create_pool(
            self.settings.database_url, self.schema, max_size=self.settings.db_pool_size
        )
        if self.settings.migrate_on_start:
            await db.migrate(self._pool, self.schema, self.migrations)
        else:  # migrations are their own step (`python -m libs.migrate`): never silently
            await db.require_migrated(self._pool, self.schema, self.migrations)
        await self.clock.start(self.settings.database_url)
        await self.publisher.connect()
        for queue, keys in self._queues.items():
            await topology.declare_queue(
                self.publisher.channel, queue, keys, commands=queue in self._command_queues
            )
        await self.rpc.connect()
        self.relay = OutboxRelay(
            self._pool,
            self.publisher,
            self.schema,
            tracer=self.tracing.tracer if self.tracing.enabled else None,
            metrics=self.meters,
        )

    async def start_consuming(self) -> None:
        assert self.relay is not None
        await self.relay.start()
        if self._health_server is not None:
            await self._health_server.start()
        for task in self._background:
            await task.start()
        self._started = True
        log.info("service_started", queues=sorted(self._queues))

    async def start(self) -> None:
        await self.prepare()
        await self.broker.start()
        await self.start_consuming()

    async def stop(self) -> None:
        # Stop taking messages first (waiting for handlers in flight), then the rest.
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self._health_server is not None:
            await self._health_server.stop()
        for task in reversed(self._background):
            with contextlib.suppress(Exception):
                await task.stop()
        if self.relay is not None:
            await self.relay.stop()
        await self.rpc.close()
        await self.publisher.close()
        await self.clock.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self.tracing.shutdown()
        log.info("service_stopped")

    def app(self) -> FastStream:
        @contextlib.asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            await self.prepare()
            yield
            await self.stop()

        app = FastStream(self.broker, lifespan=lifespan)
        app.after_startup(self.start_consuming)
        return app

    # --- the edges --------------------------------------------------------------------------

    async def _consume_event(
        self, queue: str, handlers: Mapping[type[Event], EventHandler | Only], message: Any
    ) -> str:
        """Handle one event delivery; returns what became of it (for the metrics)."""
        raw = message.raw_message
        new_message_context(
            self.name, correlation_id=raw.correlation_id, queue=queue, message_id=raw.message_id
        )
        try:
            envelope = Envelope.model_validate_json(raw.body)
            event = open_envelope(envelope)
            handler = handlers[type(event)]
        except ValidationError as exc:
            return await self._dead_letter_and_ack(
                queue, message, f"schema: {describe(exc)}", kind="schema"
            )
        except LookupError as exc:
            return await self._dead_letter_and_ack(
                queue, message, f"unknown event: {exc}", kind="unknown_event"
            )
        bind_correlation(envelope.correlation_id, event_type=envelope.type)
        if len(raw.body) > self.settings.max_message_bytes:
            return await self._dead_letter_and_ack(queue, message, "too large", kind="too_large")
        if forged := self._forgery(raw, envelope, event):
            return await self._dead_letter_and_ack(
                queue, message, f"forged: {forged}", kind="forged"
            )
        if isinstance(handler, Only):
            if not handler.when(event):
                self.health.progressed(queue)
                await _ack(message)
                return "ignored"
            handler = handler.handler
        return await self._apply_event(queue, handler, envelope, event, message)

    def _forgery(self, raw: Any, envelope: Envelope, event: Event) -> str | None:
        """Why the event cannot be believed, if it cannot: only its owner may have published it.

        RabbitMQ refuses a `user_id` other than the connection's own user, so `user_id` names who
        published. An event this service gave back to its own queue (see `_give_back`) carries
        the publisher it had checked.
        """
        publisher = self._publisher_of(raw)
        owner = self.bus_user(type(event).OWNER)
        if publisher != owner:
            return f"{envelope.type} is published by {owner}, this came from {publisher!r}"
        holder = getattr(event, "ins", None)
        if holder is not None and holder != envelope.holder_key:
            return "the envelope's holder key disagrees with its payload"
        if str(envelope.event_id) != (raw.message_id or ""):
            return "the message id is not the event id"
        return None

    def _publisher_of(self, raw: Any) -> str | None:
        """Who published: `user_id`, or the publisher recorded by a party trusted to move
        messages without changing them (this service giving one back, ops replaying one)."""
        headers = raw.headers or {}
        movers = (self.bus_user(self.name), self.bus_user(OPS))
        if raw.user_id in movers and ORIGINAL_PUBLISHER in headers:
            return str(headers[ORIGINAL_PUBLISHER])
        return raw.user_id  # type: ignore[no-any-return]

    async def _apply_event(
        self,
        queue: str,
        handler: EventHandler,
        envelope: Envelope,
        event: Event,
        message: Any,
    ) -> str:
        """Apply once, then ack. Wait out the infrastructure; park only the message's own fault.

        An outage keeps the delivery in hand (retrying with backoff) rather than giving it back,
        so it never spends the queue's delivery limit; past `hold_seconds` the message is put back
        at the tail of its queue by this service (a fresh delivery, the same event id) and the
        original acknowledged, so no outage is long enough to lose it.
        """
        held_since = time.monotonic()
        failures = 0
        while True:
            applied = True
            try:
                async with (
                    self.pool.acquire() as conn,
                    applying_once(conn, queue, envelope.event_id) as first,
                ):
                    if first:
                        await handler(EventContext(self, conn, envelope), event)
                    else:
                        applied = False
                        log.info("duplicate_ignored", event_id=str(envelope.event_id))
            except DomainError as exc:
                return await self._dead_letter_and_ack(
                    queue, message, f"{exc.code}: {exc.message}", kind="refused"
                )
            except Exception as exc:
                failures += 1
                if not is_transient(exc):
                    if failures >= POISON_ATTEMPTS:
                        log.error("event_poison", error=repr(exc), attempts=failures)
                        return await self._dead_letter_and_ack(
                            queue, message, f"failed {failures} times: {exc!r}", kind="poison"
                        )
                    self.meters.failures.labels(self.name, queue, "error").inc()
                    log.warning("event_failed_will_retry", attempt=failures, error=repr(exc))
                    await asyncio.sleep(0.1 * failures)
                    continue
                self.meters.failures.labels(self.name, queue, "transient").inc()
                self.health.infrastructure_failed(exc)
                log.warning("event_waits_for_infrastructure", attempt=failures, error=repr(exc))
                if time.monotonic() - held_since > self.settings.hold_seconds:
                    return await self._give_back(queue, message)
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 10), 5.0))
                continue
            self.health.progressed(queue)
            await _ack(message)
            return "applied" if applied else "duplicate"

    async def _give_back(self, queue: str, message: Any) -> str:
        """Put a message back at its queue's tail as a new delivery, then ack the original."""
        raw = message.raw_message
        headers = dict(raw.headers or {})
        headers.pop("x-delivery-count", None)
        headers[ORIGINAL_PUBLISHER] = self._publisher_of(raw)
        try:
            await self.publisher.publish(
                "",
                queue,
                raw.body,
                message_id=raw.message_id or uuid.uuid4().hex,
                correlation_id=raw.correlation_id,
                headers=headers,
            )
        except Exception as exc:
            # The broker is away too: the delivery comes back when it returns.
            log.warning("give_back_failed", error=repr(exc))
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return "requeued"
        await message.ack()
        log.info("event_given_back", queue=queue)
        return "given_back"

    async def _dead_letter_and_ack(
        self, queue: str, message: Any, reason: str, *, kind: str
    ) -> str:
        """Park the message in `<queue>.dlq` with `reason` (`kind`: its bounded category, for
        the metrics), then ack; returns what became of it."""
        raw = message.raw_message
        log.error("dead_lettered", reason=reason)
        headers = dict(raw.headers or {})
        headers.update(
            {
                ORIGINAL_PUBLISHER: self._publisher_of(raw) or "",
                "x-dead-reason": reason[:2000],
                "x-original-queue": queue,
                "x-original-routing-key": raw.routing_key or "",
            }
        )
        try:
            await self.publisher.publish(
                topology.DEAD_EXCHANGE,
                queue,
                raw.body,
                message_id=raw.message_id or uuid.uuid4().hex,
                correlation_id=raw.correlation_id,
                headers=headers,
            )
        except Exception as exc:
            # Not parked: give it back rather than lose it.
            log.error("dead_letter_failed", error=repr(exc))
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return "requeued"
        self.meters.dead_lettered.labels(self.name, queue, kind).inc()
        await _ack(message)
        return "dead_lettered"

    async def _serve_command(
        self, queue: str, commands: dict[tuple[str, int], Handler[Any]], message: Any
    ) -> str:
        """Serve one request; returns what became of it (for the metrics)."""
        raw = message.raw_message
        new_message_context(self.name, correlation_id=raw.correlation_id, queue=queue)
        deadline = (raw.headers or {}).get(DEADLINE_HEADER)
        # Refused before it waits for its share of the budget: an oversized request costs
        # nothing but its delivery.
        too_large = self._too_large(queue, len(raw.body))
        async with self.request_bytes.held(0 if too_large else len(raw.body)):
            if isinstance(deadline, int) and time.time() * 1000 > deadline:
                # The caller has given up and been told so: acting now would surprise them.
                log.warning("request_expired_dropped")
                await message.ack()
                return "expired"
            reply = too_large or await self._run_command(
                commands,
                _taken_body(message),
                deadline if isinstance(deadline, int) else None,
                raw.user_id,
            )
            if raw.reply_to:
                try:
                    await self.publisher.reply(
                        raw.reply_to, raw.correlation_id, reply.model_dump_json().encode()
                    )
                except Exception as exc:
                    log.error("reply_failed", error=repr(exc))
        if not raw.reply_to and not reply.ok:
            assert reply.error is not None
            return await self._dead_letter_and_ack(
                queue, message, f"{reply.error.code}: {reply.error.message}", kind="unanswered"
            )
        await message.ack()
        if reply.ok:
            return "ok"
        assert reply.error is not None
        return _COMMAND_OUTCOMES.get(reply.error.code, "refused")

    def _too_large(self, queue: str, size: int) -> Reply | None:
        """A request over its queue's limit: `max_message_bytes` on a large lane,
        `SMALL_REQUEST_BYTES` on any other queue (pointing to its lane, when it has one)."""
        largest = self.settings.max_message_bytes
        if not is_large_lane(queue):
            largest = min(largest, SMALL_REQUEST_BYTES)
        if size <= largest:
            return None
        lane = large_lane(queue)
        return _error(
            ErrorCode.TOO_LARGE,
            f"{queue} takes requests of at most {largest} bytes; send larger ones to {lane}"
            if lane in self._commands
            else f"requests are limited to {largest} bytes",
        )

    async def _run_command(
        self,
        commands: dict[tuple[str, int], Handler[Any]],
        body: bytes,
        deadline_ms: int | None,
        caller: str | None = None,
    ) -> Reply:
        try:
            request = Request.model_validate_json(body)
        except ValidationError as exc:
            return _error(ErrorCode.MALFORMED_REQUEST, describe(exc))
        del body  # its last use (`_taken_body`)
        bind_correlation(request.correlation_id, command=request.command)
        command = commands.get((request.command, request.version))
        if command is None:
            versions = sorted(v for name, v in commands if name == request.command)
            if versions:
                return _error(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"{request.command} v{request.version} is not served here;"
                    f" versions served: {', '.join(map(str, versions))}",
                )
            return _error(ErrorCode.UNKNOWN_COMMAND, f"no command {request.command!r} here")
        contract = command.contract
        try:
            actor = (
                self.tokens.verify(request.token, self.clock.now())
                if contract.AUTHENTICATED
                else None
            )
            try:
                payload = contract.model_validate(request.payload)
            except ValidationError as exc:
                raise InvalidInput(describe(exc)) from None
            key = self._request_key(command, request, actor, caller)
            if (
                key is not None
                and command.replay_first
                and (replay := await stored_reply(self.pool, key)) is not None
            ):
                log.info("request_replayed")
                return Reply(ok=True, result=_replayed(contract, replay))
            result = await command.use_case(
                CommandContext(
                    self,
                    actor,
                    request.correlation_id,
                    request.token,
                    deadline_ms,
                    caller,
                    key,
                    request.request_id if key is not None else None,
                ),
                payload,
            )
        except AlreadyAnswered as done:
            log.info("request_replayed")
            return Reply(ok=True, result=_replayed(contract, done.reply))
        except DomainError as exc:
            log.info("command_refused", code=exc.code, reason=exc.message, rule=exc.rule)
            return _error(exc.code, exc.message, exc.rule)
        except Exception as exc:
            if is_transient(exc):
                self.health.infrastructure_failed(exc)
                log.warning("command_unavailable", error=repr(exc))
                return _error(
                    ErrorCode.UNAVAILABLE,
                    f"{self.name} cannot serve this now; try again with the same request id",
                )
            log.exception("command_failed")
            return _error(ErrorCode.INTERNAL_ERROR, f"{self.name} failed to handle the request")
        try:
            return Reply(ok=True, result=_typed_result(contract, result))
        except ValidationError as exc:
            # Our bug, never the caller's: say where, never what (values may be health data).
            log.error(
                "reply_drifted_from_contract",
                reply=contract.REPLY.__name__,
                errors=[f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()],
            )
            return _error(ErrorCode.INTERNAL_ERROR, f"{self.name} failed to handle the request")

    @staticmethod
    def _request_key(
        command: Handler[Any], request: Request, actor: Claims | None, caller: str | None
    ) -> RequestKey | None:
        policy = command.contract.REQUEST_ID
        if policy == "none":
            return None
        if request.request_id is None:
            if policy == "required":
                raise InvalidInput(
                    f"{request.command} changes state: send a request_id (the same on a retry)"
                )
            return None
        # Scoped to who asks: another caller's id can neither replay nor block this one.
        who = f"{actor.kind}:{actor.sub}" if actor is not None else "-"
        return RequestKey.of(
            f"{caller or 'anonymous'}|{who}",
            request.request_id,
            request.command,
            request.payload,
            command.replay_window,
        )


def _taken_body(message: RabbitMessage) -> bytes:
    """A request's body, left on its message only while it may still be dead-lettered (nobody
    waits for its reply): otherwise parsing is its last use, and a document's base64 is freed
    once parsed rather than once answered (the dossier's memory under large deposits)."""
    raw = message.raw_message
    body: bytes = raw.body
    if raw.reply_to:
        raw.body = message.body = b""
    return body


# A refusal is the caller's (a domain rule, a bad request); these are the service's own.
_COMMAND_OUTCOMES = {ErrorCode.INTERNAL_ERROR: "failed", ErrorCode.UNAVAILABLE: "unavailable"}


def _error(code: str, message: str, rule: str | None = None) -> Reply:
    return Reply(ok=False, error=ErrorInfo(code=ErrorCode(code), message=message, rule=rule))


def _replayed(contract: type[Command[Any]], stored: Any) -> Any:
    """A stored first reply, as the contract types it now (so that a replay reads exactly like
    the first answer); as stored if it predates the contract's current shape."""
    try:
        return _typed_result(contract, stored)
    except ValidationError:
        log.warning("replayed_reply_predates_contract", command=contract.NAME)
        return stored


def _typed_result(contract: type[Command[Any]], result: Contract | dict[str, Any]) -> Any:
    """The use case's result as the contract's reply says, checked: a reply that drifts from
    the published schema is a bug of ours, never sent as if it were right."""
    reply = contract.REPLY
    if not isinstance(result, reply):
        data = result.model_dump() if isinstance(result, Contract) else result
        result = reply.model_validate(data)
    return result.model_dump(mode="json")


def serve(app: Callable[[], FastStream]) -> None:
    """Run a service until SIGINT/SIGTERM (FastStream stops gracefully on either), on uvloop
    where it is installed (a tenth less CPU per message, docs/benchmarks.md)."""
    large_blocks_returned_when_freed()
    try:
        import uvloop
    except ImportError:
        asyncio.run(app().run())
    else:
        uvloop.run(app().run())


def large_blocks_returned_when_freed(threshold: int = 128 * 1024) -> bool:
    """Keep every block of `threshold` bytes or more in a mapping of its own, given back to the
    system when freed. glibc starts so, but raises the threshold to the largest block freed so
    far (up to 32 MB): after one document, the next ones are carved from the heap, which
    fragments and keeps its size (the dossier's peak under four 5 MB deposits, docs/
    benchmarks.md). False where the C library is not glibc: nothing to tune."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
