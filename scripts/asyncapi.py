"""The system's AsyncAPI 3 document, generated from the contracts: every command queue with each
command's request, reply and error; every event with its routing key, version and payload; the
envelopes. `docs/asyncapi.json` is its output, committed; a test fails when they differ and
validates it with the AsyncAPI project's own parser (tools/asyncapi).

    python -m scripts.asyncapi > docs/asyncapi.json      (make asyncapi)
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from libs.bus import topology
from libs.bus.rpc import DEADLINE_HEADER, REPLY_TO
from libs.contracts import commands as cmd
from libs.contracts import events as events_module
from libs.contracts.envelope import Event, all_events
from libs.contracts.rpc import (
    EVERY_QUEUE,
    SMALL_REQUEST_BYTES,
    Command,
    ErrorCode,
    ErrorInfo,
    Request,
    large_lane,
)
from libs.provision import SERVICES

REF = "#/components/schemas/{model}"
AMQP_BINDING = "0.3.0"


def commands() -> list[type[Command[Any]]]:
    """Every command contract of the system, in the order `libs/contracts/commands.py` has them."""
    return [
        c
        for c in vars(cmd).values()
        if isinstance(c, type)
        and issubclass(c, Command)
        and c.__module__ == cmd.__name__
        and hasattr(c, "QUEUE")
    ]


class _Recorder:
    """Stands in for a Runtime during `services/<name>/handlers.register`: records, runs nothing."""

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name
        self.settings = settings
        self.events: dict[str, list[type[Event]]] = {}
        self.commands: list[type[Command[Any]]] = []

    def on_events(self, queue: str, handlers: dict[type[Event], Any]) -> None:
        self.events[queue] = list(handlers)

    def handle(self, contract: type[Command[Any]], *_: Any, **__: Any) -> None:
        self.commands.append(contract)

    def add_background(self, *_: Any) -> None:
        pass


def registered() -> tuple[list[type[Command[Any]]], dict[str, list[type[Event]]]]:
    """(the commands served, the events each queue consumes), as the services register them."""
    served: list[type[Command[Any]]] = []
    found: dict[str, list[type[Event]]] = {}
    for service in SERVICES:
        settings_module = importlib.import_module(f"services.{service}.main")
        settings_class = settings_module.Settings
        # Defaults only: registering builds helpers but starts and connects nothing.
        recorder = _Recorder(service, settings_class.model_construct())
        importlib.import_module(f"services.{service}.handlers").register(recorder)
        served += recorder.commands
        found.update(recorder.events)
    return served, found


def _id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _operation_id(command: type[Command[Any]]) -> str:
    return command.NAME if command.VERSION == 1 else f"{command.NAME}_v{command.VERSION}"


def _schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    unique = list(dict.fromkeys(models))
    _, top = models_json_schema([(m, "validation") for m in unique], ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def _request_payload(command: type[Command[Any]]) -> dict[str, Any]:
    envelope = Request.model_json_schema()["properties"]
    required = ["command", "correlation_id", "payload"]
    if command.AUTHENTICATED:
        required.append("token")
    if command.REQUEST_ID == "required":
        required.append("request_id")
    token = (
        "The caller's JWT (identity's SignIn* commands give one)."
        if command.AUTHENTICATED
        else "Not needed."
    )
    request_id = {
        "required": "Required: the same on every retry; a retry gets the first reply again.",
        "optional": "Optional: when given, a retry is decided, traced and alerted once.",
        "none": "Ignored: the command changes nothing.",
    }[command.REQUEST_ID]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            "command": {"const": command.NAME},
            "version": {"const": command.VERSION, "default": 1},
            "token": {"type": "string", "description": token},
            "correlation_id": {"type": "string"},
            "request_id": {**envelope["request_id"]["anyOf"][0], "description": request_id},
            "payload": {"$ref": REF.format(model=command.__name__)},
        },
    }


def _result_payload(command: type[Command[Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["ok", "result"],
        "properties": {
            "ok": {"const": True},
            "result": {"$ref": REF.format(model=command.REPLY.__name__)},
            "error": {"type": "null"},
        },
    }


def _event_payload(event: type[Event]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "event_id",
            "type",
            "version",
            "occurred_at",
            "correlation_id",
            "holder_key",
            "payload",
        ],
        "properties": {
            "event_id": {"type": "string", "format": "uuid", "description": "= message_id"},
            "type": {"const": event.TYPE},
            "version": {"const": event.VERSION},
            "occurred_at": {"type": "string", "format": "date-time"},
            "correlation_id": {"type": "string"},
            "causation_id": {"type": ["string", "null"]},
            "holder_key": {"type": "string", "description": "The holder's INS."},
            "payload": {"$ref": REF.format(model=event.__name__)},
        },
    }


def document() -> dict[str, Any]:
    all_commands = commands()
    queues = sorted({c.QUEUE for c in all_commands if c.QUEUE != EVERY_QUEUE})
    events = sorted(
        (e for e in all_events() if e.__module__ == events_module.__name__),
        key=lambda e: (e.OWNER, e.TYPE, e.VERSION),
    )
    _, consumed_by = registered()

    schemas = _schemas(
        [
            *all_commands,
            *(c.REPLY for c in all_commands),
            ErrorInfo,
            *events,
        ]
    )
    schemas["ErrorCode"]["description"] = "Every error a reply can carry."

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {
        "ErrorReply": {
            "name": "ErrorReply",
            "title": "A refusal or failure",
            "summary": "`ok` false; `error.code` is one of ErrorCode; `error.rule` names the rule"
            " of law that refused, when one did.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ok", "error"],
                "properties": {
                    "ok": {"const": False},
                    "result": {"type": "null"},
                    "error": {"$ref": REF.format(model="ErrorInfo")},
                },
            },
        }
    }
    reply_messages: dict[str, Any] = {"ErrorReply": {"$ref": "#/components/messages/ErrorReply"}}

    for queue in queues:
        served = [c for c in all_commands if c.QUEUE in (queue, EVERY_QUEUE)]
        exchange = (
            topology.COMMANDS_EXCHANGE if topology.is_public(queue) else topology.INTERNAL_EXCHANGE
        )
        channel_id = _id(queue)
        channel_messages = {}
        for command in served:
            op = _operation_id(command)
            request_key = f"{op}_request"
            messages.setdefault(
                request_key,
                {
                    "name": command.NAME,
                    "title": f"{command.NAME} v{command.VERSION}",
                    "summary": (command.__doc__ or command.NAME).strip().split("\n\n")[0],
                    "contentType": "application/json",
                    "correlationId": {"location": "$message.payload#/correlation_id"},
                    "headers": {
                        "type": "object",
                        "properties": {
                            DEADLINE_HEADER: {
                                "type": "integer",
                                "description": "When the caller stops waiting (epoch ms):"
                                " the request is dropped unanswered after it.",
                            }
                        },
                    },
                    "payload": _request_payload(command),
                    "bindings": {
                        "amqp": {
                            "messageType": command.NAME,
                            "bindingVersion": AMQP_BINDING,
                        }
                    },
                },
            )
            result_key = f"{command.REPLY.__name__}_result"
            messages.setdefault(
                result_key,
                {
                    "name": f"{command.REPLY.__name__}Result",
                    "title": command.REPLY.__name__,
                    "contentType": "application/json",
                    "payload": _result_payload(command),
                },
            )
            reply_messages[result_key] = {"$ref": f"#/components/messages/{result_key}"}
            channel_messages[request_key] = {"$ref": f"#/components/messages/{request_key}"}
            operation_id = op if command.QUEUE != EVERY_QUEUE else f"{op}_{channel_id}"
            operations[operation_id] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"{command.NAME} on {queue}"
                + ("" if command.AUTHENTICATED else " (no token)"),
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{request_key}"}],
                "reply": {
                    "address": {"location": "$message.header#/reply_to"},
                    "channel": {"$ref": "#/channels/replies"},
                    "messages": [
                        {"$ref": f"#/channels/replies/messages/{result_key}"},
                        {"$ref": "#/channels/replies/messages/ErrorReply"},
                    ],
                },
            }
        channels[channel_id] = {
            "address": queue,
            "title": queue,
            "description": (
                f"Publish to `{exchange}` with routing key `{queue}`, `reply_to` set to"
                f" `{REPLY_TO}`, `correlation_id` and `user_id` (your broker user) set."
                + (
                    ""
                    if topology.is_public(queue)
                    else " Services only: clients cannot publish to this exchange."
                )
                + (
                    f" A request over {SMALL_REQUEST_BYTES} bytes (a document) goes to"
                    f" `{large_lane(queue)}` instead, on the same exchange: the same commands,"
                    " taken a couple at a time; here it is refused (`too_large`)."
                    if any(command.LARGE for command in served)
                    else f" Requests are limited to {SMALL_REQUEST_BYTES} bytes (`too_large`)."
                )
            ),
            "messages": channel_messages,
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "direct", "durable": True},
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }

    channels["replies"] = {
        "address": None,
        "title": "replies",
        "description": f"Direct reply-to (`{REPLY_TO}`): each caller's own, private.",
        "messages": reply_messages,
    }

    for event in events:
        key = event.routing_key()
        channel_id = "event_" + _id(key)
        message_key = f"{event.TYPE}_v{event.VERSION}"
        readers = sorted(q for q, handled in consumed_by.items() if event in handled)
        messages[message_key] = {
            "name": event.TYPE,
            "title": f"{event.TYPE} v{event.VERSION}",
            "summary": (event.__doc__ or event.TYPE).strip().split("\n\n")[0],
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "payload": _event_payload(event),
            "bindings": {
                "amqp": {
                    "messageType": event.TYPE,
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }
        channels[channel_id] = {
            "address": key,
            "title": key,
            "description": (
                f"Published by {event.OWNER} (its broker user, checked by the consumers) to"
                f" `{topology.EVENTS_EXCHANGE}`; consumed by "
                + (", ".join(f"`{q}`" for q in readers) or "no queue yet (kept in ops.unrouted)")
                + "."
            ),
            "messages": {message_key: {"$ref": f"#/components/messages/{message_key}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": topology.EVENTS_EXCHANGE,
                        "type": "topic",
                        "durable": True,
                    },
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }
        operations[f"publish_{message_key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"{event.OWNER} publishes {event.TYPE} v{event.VERSION}",
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_key}"}],
            # Persistent, mandatory, with publisher confirms (libs.bus.publisher).
            "bindings": {
                "amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP_BINDING}
            },
        }

    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "Mon espace santé: shared medical record (DMP) backend",
            "version": "1.0.0",
            "description": (
                "Six services on RabbitMQ. Clients (patient app, practice software, operator"
                " console) send commands to `dmp.commands` as their kind's broker user and read"
                " their replies through direct reply-to; they can neither publish events nor"
                " consume any queue. Every command queue also answers `Ping` (readiness). Error"
                " codes: " + ", ".join(code.value for code in ErrorCode) + "."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ; one user per service and per kind of client.",
                "security": [{"$ref": "#/components/securitySchemes/brokerUser"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "brokerUser": {
                    "type": "userPassword",
                    "description": "Your kind's broker user (patient-app, practice-software,"
                    " operator-console), given by the operator.",
                }
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
