"""A tiny service built on `libs.runtime.Runtime`, run in a subprocess so tests can kill it.

    python -m tests.support.probe_service      (configured by the environment, see below)

It is the real runtime (inbox, outbox, relay, dead-lettering, backoff) with a trivial domain:

- `<name>.effects` consumes `EffectRequested` and inserts one row into `effects` (not unique by
  event: a double application would show as two rows). A payload whose `key` starts with
  `poison` makes the handler raise `RuntimeError` every time.
- `<name>.commands` serves `Emit`, which writes `count` events to the outbox in one transaction.
- every delivery is recorded in `deliveries` outside the handler's transaction.

Environment (besides ServiceSettings' DATABASE_URL, AMQP_URL, IDENTITY_JWKS, LOG_LEVEL):

- PROBE_NAME: runtime name and schema (default `probe`); queues are `<name>.effects|commands`.
- PROBE_CONSUME / PROBE_COMMANDS: `1` to serve the event queue / the command queue.
- PROBE_CRASH: `after_commit` — die (exit 9) instead of acknowledging the first event whose
  transaction committed; `before_mark_sent` — die when the relay, the broker having confirmed,
  is about to mark rows sent (after the command's reply went out).
- PROBE_BACKOFF_SCALE: multiply the runtime's retry backoff (tests of the delivery limit).
- PROBE_OUTBOX_LEASE: the relay's claim lease in seconds (default: the library's).

The event type is registered here and only here (the subprocess), so the test process's
contract registry holds only the system's own events. The tests build these envelopes by hand.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from libs import outbox
from libs import runtime as runtime_module
from libs.bus.publisher import ConfirmingPublisher
from libs.contracts.envelope import Contract, Event, register
from libs.contracts.rpc import Command
from libs.outbox import OutboxRelay
from libs.runtime import CommandContext, EventContext, Runtime
from libs.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "probe" / "migrations"
READY_LINE = "probe_ready"


@register
class EffectRequested(Event):
    OWNER = "probe"
    TYPE = "EffectRequested"
    key: str
    n: int


class Emitted(Contract):
    event_ids: list[str]


class Emit(Command[Emitted]):
    """Served on `<PROBE_NAME>.commands` (see `build`)."""

    QUEUE = "probe.commands"
    AUTHENTICATED = False

    key: str
    count: int = 1
    n: int = 1


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


class ProbeRuntime(Runtime):
    """The runtime, plus delivery recording and the crash points the tests ask for."""

    crash = ""
    lease: float | None = None

    async def prepare(self) -> None:
        await super().prepare()
        if self.lease is not None:
            self.relay = OutboxRelay(
                self.pool, self.publisher, self.schema, lease=timedelta(seconds=self.lease)
            )

    async def _consume_event(self, queue: str, handlers: Any, message: Any) -> str:
        raw = message.raw_message
        await self.pool.execute(
            "INSERT INTO deliveries (message_id, delivery_count, pid) VALUES ($1, $2, $3)",
            raw.message_id,
            int((raw.headers or {}).get("x-delivery-count", 0) or 0),
            os.getpid(),
        )
        if self.crash == "after_commit":
            # The runtime acknowledges only after the handler's transaction committed: dying
            # in place of that ack is dying between commit and ack.
            async def die_instead_of_ack(*_: Any, **__: Any) -> None:
                print("probe_crash_after_commit", raw.message_id, flush=True)
                os._exit(9)

            message.ack = die_instead_of_ack
        return await super()._consume_event(queue, handlers, message)


async def apply(ctx: EventContext, event: EffectRequested) -> None:
    if event.key.startswith("poison"):
        raise RuntimeError(f"cannot apply {event.key}")
    await ctx.conn.execute(
        "INSERT INTO effects (event_id, key, n, pid) VALUES ($1, $2, $3, $4)",
        ctx.envelope.event_id,
        event.key,
        event.n,
        os.getpid(),
    )


async def emit(ctx: CommandContext, c: Emit) -> Emitted:
    ids = []
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        for i in range(c.count):
            envelope = await outbox.add_event(
                conn,
                EffectRequested(key=c.key if c.count == 1 else f"{c.key}-{i}", n=c.n),
                holder_key=c.key,
                occurred_at=ctx.runtime.now(),
                correlation_id=ctx.correlation_id,
            )
            ids.append(str(envelope.event_id))
    return Emitted(event_ids=ids)


def build(settings: ServiceSettings) -> ProbeRuntime:
    name = _env("PROBE_NAME", "probe")
    runtime = ProbeRuntime(name, settings, MIGRATIONS)
    runtime.crash = _env("PROBE_CRASH")
    if _env("PROBE_OUTBOX_LEASE"):
        runtime.lease = float(_env("PROBE_OUTBOX_LEASE"))
    if _env("PROBE_CONSUME") == "1":
        runtime.on_events(f"{name}.effects", {EffectRequested: apply})
    if _env("PROBE_COMMANDS") == "1":

        class NamedEmit(Emit):
            NAME = "Emit"
            QUEUE = f"{name}.commands"

        runtime.handle(NamedEmit, emit)
    return runtime


def _install_crash_points(crash: str) -> None:
    if crash == "before_mark_sent":
        replied = asyncio.Event()
        reply = ConfirmingPublisher.reply

        async def reply_and_note(self: Any, *args: Any, **kwargs: Any) -> None:
            await reply(self, *args, **kwargs)
            replied.set()

        async def die_before_marking(self: OutboxRelay, event_ids: list[Any]) -> None:
            if not event_ids:
                return
            # Published and confirmed by the broker; the rows are still unsent. Let the
            # command's reply leave first so the test is told what was emitted.
            await asyncio.wait_for(replied.wait(), 10)
            await asyncio.sleep(0.3)
            print("probe_crash_before_mark_sent", len(event_ids), flush=True)
            os._exit(9)

        ConfirmingPublisher.reply = reply_and_note  # type: ignore[method-assign]
        OutboxRelay.mark_sent = die_before_marking  # type: ignore[method-assign]

    scale = _env("PROBE_BACKOFF_SCALE")
    if scale:
        # The runtime's retry backoff, shortened: only `libs.runtime` sees this sleep.
        real_sleep = asyncio.sleep

        class ScaledAsyncio:
            def __getattr__(self, name: str) -> Any:
                return getattr(asyncio, name)

            @staticmethod
            async def sleep(delay: float, *args: Any) -> Any:
                return await real_sleep(delay * float(scale), *args)

        runtime_module.asyncio = ScaledAsyncio()  # type: ignore[attr-defined, assignment]


async def main() -> None:
    settings = ServiceSettings()  # type: ignore[call-arg]
    _install_crash_points(_env("PROBE_CRASH"))
    runtime = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    print(READY_LINE, os.getpid(), uuid.uuid4().hex[:6], flush=True)
    await stop.wait()
    await runtime.stop()
    print("probe_stopped", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
