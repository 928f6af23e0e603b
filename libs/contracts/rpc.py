"""How a command travels: the request envelope, the reply, the error codes, and the base of every
command contract.

A command is one class (`libs/contracts/commands.py`): its fields are the request's payload, and
its class variables say where it goes (`QUEUE`), under which name and version, what comes back
(`REPLY`, from `Command[Reply]`), whether it needs a signed token and whether it takes a request
id. The runtime registers a handler for it by the class alone, the client sends it by the class
alone, and the AsyncAPI document (`docs/asyncapi.yaml`) is generated from the same classes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import Field

from libs.contracts.envelope import Contract

R = TypeVar("R", bound=Contract)

RequestIdPolicy = Literal["required", "optional", "none"]

# Every command queue also answers `Ping` (readiness); its QUEUE is this wildcard.
EVERY_QUEUE = "*"

# A request over this many bytes goes to its queue's large lane (`large_lane`): RabbitMQ's
# prefetch counts messages, not bytes, so a queue taking documents takes them a couple at a
# time on a lane of their own, while small requests keep their many in flight. A queue without
# a lane refuses larger requests (`too_large`); so does a queue's small lane.
SMALL_REQUEST_BYTES = 1024 * 1024


LARGE_LANE_SUFFIX = ".large"


def large_lane(queue: str) -> str:
    """Where requests over `SMALL_REQUEST_BYTES` to `queue` go, for a queue serving a command
    that may carry a document (`Command.LARGE`)."""
    return queue + LARGE_LANE_SUFFIX


def is_large_lane(queue: str) -> bool:
    return queue.endswith(LARGE_LANE_SUFFIX)


class ErrorCode(StrEnum):
    """Every error a reply can carry. A client may branch on these; the message is for humans."""

    # The request itself
    MALFORMED_REQUEST = "malformed_request"  # not JSON, or not the request envelope
    UNKNOWN_COMMAND = "unknown_command"  # no such command on this queue
    UNSUPPORTED_VERSION = "unsupported_version"  # the command exists, not in this version
    TOO_LARGE = "too_large"  # the request exceeds the size limit
    INVALID_INPUT = "invalid_input"  # the payload breaks the command's schema or a rule of form
    INVALID_NIR = "invalid_nir"
    INVALID_NIR_KEY = "invalid_nir_key"
    INVALID_FINESS = "invalid_finess"
    REQUEST_ID_REUSED = "request_id_reused"  # the same id was used for another request
    REQUEST_ID_EXPIRED = "request_id_expired"  # the id's reply can no longer be replayed
    # Who asks
    UNAUTHENTICATED = "unauthenticated"  # no token, or a forged, expired or foreign one
    FORBIDDEN = "forbidden"  # this actor may not do this
    ACCESS_DENIED = "access_denied"  # the access service refused: see `rule`
    ACCESS_UNDECIDED = "access_undecided"  # the access service could not be asked: a refusal
    NOT_YOUR_BOX = "not_your_box"
    RATE_LIMITED = "rate_limited"
    SIGN_IN_LOCKED = "sign_in_locked"
    # The state of things
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    SPACE_CLOSED = "space_closed"
    SPACE_NOT_OPEN = "space_not_open"
    REFUSED = "refused"
    # The system
    UNAVAILABLE = "unavailable"  # transient: retry later with the same request id
    INTERNAL_ERROR = "internal_error"
    # Never in a reply: why an event was dead-lettered (it can never be applied).
    PERMANENT_FAILURE = "permanent_failure"


class Request(Contract):
    """What a client publishes to `dmp.commands` (a service to `dmp.internal`), routed by QUEUE."""

    command: str
    # The command's contract version (the class's VERSION); another is refused, never guessed.
    version: int = Field(default=1, ge=1)
    token: str | None = None
    correlation_id: str
    # Chosen by the caller, kept on its retries: a state-changing command with an id it has
    # already answered changes nothing and gets the first reply again.
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{8,128}$")
    payload: dict[str, Any] = Field(default_factory=dict)


class ErrorInfo(Contract):
    code: ErrorCode
    message: str
    # The rule of law that refused, when one did (e.g. ACC_05).
    rule: str | None = None


class Reply(Contract):
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


class Command(Contract, Generic[R]):
    """Base of every command: `class DepositDocument(Command[Deposited])`."""

    QUEUE: ClassVar[str]
    NAME: ClassVar[str]  # defaults to the class name
    VERSION: ClassVar[int] = 1
    REPLY: ClassVar[type[Contract]]
    # False for the few commands one sends before having a token (sign-in) or that only
    # services send (their caller is checked instead, from the broker's `user_id`).
    AUTHENTICATED: ClassVar[bool] = True
    # "required" for every command that changes state; "optional" where a retry is harmless
    # but an id, when given, is honoured (it is passed on to the access service).
    REQUEST_ID: ClassVar[RequestIdPolicy] = "none"
    # True for a command that may carry a document: its queue then has a large lane, which
    # serves every command of that queue and which requests over `SMALL_REQUEST_BYTES` go to.
    LARGE: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for base in cls.__mro__:
            generic = getattr(base, "__pydantic_generic_metadata__", None) or {}
            if generic.get("origin") is Command and generic.get("args"):
                cls.REPLY = generic["args"][0]
                break
        if "NAME" not in cls.__dict__ and "[" not in cls.__name__:
            cls.NAME = cls.__name__
