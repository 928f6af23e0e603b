"""Asking the decision point: every service that reads or writes for a caller goes through here.

The access service is the only place a decision is taken (`access.decide`). This asks it on
behalf of the caller whose token the request carries, and turns the answer into a refusal unless
it is a clear grant: a decision that cannot be reached (timeout, access down, an unreadable
reply) is a denial, never a silent grant.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from libs.bus.rpc import RpcError
from libs.contracts import commands as cmd
from libs.contracts.rpc import ErrorCode
from libs.errors import Forbidden
from libs.runtime import CommandContext

log = structlog.get_logger()


async def require_access(
    ctx: CommandContext[Any],
    ins: str,
    action: Literal[
        "read", "deposit", "message", "read_history", "copy", "mask", "request_deletion"
    ],
    document_type: str | None = None,
    *,
    emergency: bool = False,
    purpose: str | None = None,
    on_behalf_of: str | None = None,
    request_id: str | None = None,
) -> cmd.Decision:
    """The granted decision; Forbidden (`access_denied` / `access_undecided`) otherwise.
    `emergency` and `purpose`: a break-the-glass and its stated reason (ACC_09)."""
    request = cmd.Decide(
        ins=ins,
        action=action,
        document_type=document_type,
        emergency=emergency,
        purpose=purpose,
        on_behalf_of=on_behalf_of,
    )
    try:
        decision = await ctx.runtime.rpc.send(
            request,
            token=ctx.token,
            correlation_id=ctx.correlation_id,
            # Not past the caller's own deadline: a grant they will never hear of is no use,
            # and the deposit must not be stored after they were told it timed out.
            timeout=ctx.remaining(ctx.runtime.rpc.timeout),
            # A retried deposit asks again under the same id: one decision, one trace, one alert.
            # `request_id`: the caller's own, for decisions several requests share.
            request_id=request_id
            or ctx.derived_request_id(f"decide-{action}-{document_type or 'any'}"),
        )
    except RpcError as exc:
        log.warning("access_undecided", action=action, code=exc.code, reason=exc.message)
        raise Forbidden(
            f"the access service could not decide ({exc.code}: {exc.message}); the {action} is"
            " refused, as when access is denied; try again later",
            code=ErrorCode.ACCESS_UNDECIDED,
        ) from None
    if not decision.granted:
        log.info("access_denied", action=action, rule=decision.rule)
        raise Forbidden(
            f"access denied by rule {decision.rule}: {decision.reason}",
            code=ErrorCode.ACCESS_DENIED,
            rule=decision.rule,
        )
    return decision
