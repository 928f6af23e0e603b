"""A client of the system on the bus, as a patient app or a practice software would be.

    session = await client.sign_in_with_card("professional", rpps, card_private_key)
    deposited = await client.send(DepositDocument(...), token=session.token)   # -> Deposited

`send` takes any command contract (`libs.contracts.commands`) and returns its typed reply, or
raises `RpcError` (its `code` one of `ErrorCode`, its `rule` the rule that refused). Nothing here
names a command of its own: a new command is sent as it is declared. Used by the demo, the
command-line client (`python -m scripts.cli`), the tests and the benchmark; a real client does
the same: request/reply messages carrying a signed token, never a database.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from libs.bus.rpc import RpcClient
from libs.contracts import commands as cmd
from libs.contracts.envelope import Contract
from libs.contracts.rpc import Command
from libs.tokens import private_key, sign_bytes

R = TypeVar("R", bound=Contract)


class Client:
    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def send(
        self,
        command: Command[R],
        *,
        token: str | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> R:
        """Send `command`; its typed reply. Pass the same `request_id` to retry a command whose
        outcome is unknown (a timeout): it is done once and the first reply comes back. `queue`
        only for `Ping`, which every command queue answers."""
        return await self.rpc.send(
            command, token=token, request_id=request_id, timeout=timeout, queue=queue
        )

    async def sign_in_with_card(
        self, kind: Literal["professional", "operator", "app"], subject: str, card_private_key: str
    ) -> cmd.Session:
        """Two commands and a signature in between: the card signs identity's challenge."""
        challenge = await self.send(cmd.RequestChallenge(kind=kind, subject=subject))
        signature = sign_bytes(private_key(card_private_key), challenge.challenge.encode())
        return await self.send(
            cmd.SignInWithCard(
                kind=kind, subject=subject, challenge=challenge.challenge, signature=signature
            )
        )
