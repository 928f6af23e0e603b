"""Request/reply over RabbitMQ with many requests in flight.

faststream's `broker.request` serialises callers behind one lock (issue #1318), about 300 calls/s
whatever the concurrency. This client keeps one channel consuming RabbitMQ's direct reply-to
pseudo-queue and matches replies to waiting callers by correlation id, so callers do not wait for
each other. Every call has a deadline: the request carries it (the server drops a request whose
caller has already given up, so a late command cannot take effect behind the caller's back), and
the caller gets `RpcTimeout`, which callers of `access.decide` treat as a denial.

The request carries the caller's trace context (`traceparent`, libs/telemetry.py), so the
server's span continues the caller's trace; with a tracer, the call is a client span of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any, TypeVar, cast

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError
from opentelemetry import trace
from pydantic import ValidationError

from libs import telemetry
from libs.bus.publisher import broker_user
from libs.bus.topology import COMMANDS_EXCHANGE
from libs.contracts.envelope import Contract
from libs.contracts.rpc import (
    EVERY_QUEUE,
    SMALL_REQUEST_BYTES,
    Command,
    Reply,
    Request,
    is_large_lane,
    large_lane,
)

R = TypeVar("R", bound=Contract)

REPLY_TO = "amq.rabbitmq.reply-to"
DEADLINE_HEADER = "x-deadline-ms"


class RpcError(Exception):
    """A refusal or failure: the server's `ErrorCode` (or `timeout`, `bad_reply`, found here)."""

    def __init__(self, code: str, message: str, rule: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({rule})" if rule else ""))
        self.code = code
        self.message = message
        self.rule = rule
        # The other side is away or overloaded, not refusing: worth waiting for (libs.faults).
        self.transient = code in ("timeout", "unavailable")


class RpcTimeout(RpcError):
    def __init__(self, queue: str, timeout: float) -> None:
        super().__init__("timeout", f"{queue} gave no answer within {timeout}s")


class RpcClient:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout: float = 5.0,
        exchange: str = COMMANDS_EXCHANGE,
        max_request_bytes: int = 32 * 1024 * 1024,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._tracer = tracer
        # Refused here rather than by the broker, which would close the channel under us.
        self.max_request_bytes = max_request_bytes
        self._url = url
        # Clients send through dmp.commands; services call each other through dmp.internal.
        self._exchange_name = exchange
        self._user_id = broker_user(url)
        self._name = name
        self.timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": f"{self._name}.rpc"}
        )
        await self._open_channel()
        self._connection.reconnect_callbacks.add(self._on_reconnect)

    async def _open_channel(self) -> None:
        assert self._connection is not None
        # Confirms + mandatory: a request to a queue that does not exist fails at once.
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._exchange = (
            self._channel.default_exchange
            if self._exchange_name == ""
            else await self._channel.get_exchange(self._exchange_name, ensure=False)
        )
        reply_queue = await self._channel.get_queue(REPLY_TO, ensure=False)
        await reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reconnect(self, *_: Any) -> None:
        # Direct reply-to consumers are bound to a channel: a new channel needs a new consumer.
        await self._open_channel()

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def call_raw(self, queue: str, body: bytes, *, timeout: float | None = None) -> bytes:
        assert self._exchange is not None, "rpc client not connected"
        if len(body) > self.max_request_bytes:
            raise RpcError(
                "too_large", f"the request is {len(body)} bytes; at most {self.max_request_bytes}"
            )
        # A document goes by its queue's large lane; a queue without one refuses it (below).
        lane = (
            large_lane(queue)
            if len(body) > SMALL_REQUEST_BYTES and not is_large_lane(queue)
            else None
        )
        timeout = self.timeout if timeout is None else timeout
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        deadline_ms = int((time.time() + timeout) * 1000)
        headers: dict[str, Any] = {DEADLINE_HEADER: deadline_ms}
        span = (
            self._tracer.start_as_current_span(
                f"{queue} send",
                kind=trace.SpanKind.CLIENT,
                attributes={"messaging.system": "rabbitmq", "messaging.destination.name": queue},
            )
            if self._tracer is not None
            else contextlib.nullcontext()
        )
        try:
            async with asyncio.timeout(timeout):
                with span:
                    telemetry.inject(headers)
                    await self._exchange.publish(
                        aio_pika.Message(
                            body,
                            content_type="application/json",
                            correlation_id=correlation_id,
                            message_id=correlation_id,
                            reply_to=REPLY_TO,
                            headers=headers,
                            user_id=self._user_id,
                        ),
                        routing_key=lane or queue,
                        mandatory=True,
                    )
                    return await future
        except TimeoutError:
            raise RpcTimeout(queue, timeout) from None
        except aio_pika.exceptions.PublishError:
            if lane is not None:
                raise RpcError(
                    "too_large",
                    f"the request is {len(body)} bytes; {queue} takes at most"
                    f" {SMALL_REQUEST_BYTES} (no command there carries a document)",
                ) from None
            raise RpcError("unavailable", f"no queue {queue} to take the request") from None
        except aio_pika.exceptions.DeliveryError:
            # Nacked: the queue could not take it now (a quorum queue without a leader while
            # a node is down, or full). The caller may try again with the same request id.
            raise RpcError("unavailable", f"{queue} could not take the request now") from None
        except (ChannelInvalidStateError, AMQPConnectionError):
            # The connection to the broker is down (it reconnects by itself); whether the
            # request went is unknown: the caller tries again with the same request id.
            raise RpcError("unavailable", "the broker cannot be reached now") from None
        finally:
            self._pending.pop(correlation_id, None)

    async def call(
        self,
        queue: str,
        command: str,
        payload: dict[str, Any],
        *,
        token: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        version: int = 1,
    ) -> dict[str, Any]:
        """Send a command by name (`send` takes a contract); returns the result or raises
        RpcError with the server's code.

        Every request carries a request id (a new one unless given): to retry a command whose
        outcome is unknown (a timeout), call again with the same `request_id`.
        """
        request = Request(
            command=command,
            version=version,
            token=token,
            correlation_id=correlation_id or uuid.uuid4().hex,
            request_id=request_id or uuid.uuid4().hex,
            payload=payload,
        )
        raw = await self.call_raw(queue, request.model_dump_json().encode(), timeout=timeout)
        try:
            reply = Reply.model_validate_json(raw)
        except ValidationError as exc:
            raise RpcError("bad_reply", f"{queue} sent an unreadable reply: {exc}") from None
        if not reply.ok:
            error = reply.error
            if error is None:
                raise RpcError("bad_reply", f"{queue} refused without saying why")
            raise RpcError(error.code, error.message, error.rule)
        return reply.result or {}

    async def send(
        self,
        command: Command[R],
        *,
        token: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        queue: str | None = None,
    ) -> R:
        """Send a command contract; returns its typed reply or raises RpcError. `queue` only for
        a command every queue serves (`Ping`): which one to ask."""
        if command.QUEUE == EVERY_QUEUE and queue is None:
            raise ValueError(f"{command.NAME} is served on every command queue: say which")
        result = await self.call(
            queue or command.QUEUE,
            command.NAME,
            command.model_dump(mode="json", exclude_none=True),
            token=token,
            correlation_id=correlation_id,
            timeout=timeout,
            request_id=request_id,
            version=command.VERSION,
        )
        try:
            return cast(R, command.REPLY.model_validate(result))
        except ValidationError as exc:
            raise RpcError(
                "bad_reply", f"{command.QUEUE} sent a reply unlike {command.REPLY.__name__}: {exc}"
            ) from None
