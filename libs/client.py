"""A client of the system on the bus, as a patient app or a practice software would be.

    session = await client.sign_in_with_card("professional", rpps, card_private_key)
    deposited = await client.send(DepositDocument(...), token=session.token)   # -> Deposited

`send` takes any command contract (`libs.contracts.commands`) and returns its typed reply, or
raises `RpcError` (its `code` one of `ErrorCode`, its `rule` the rule that refused). Used by the
demo, the command-line client (`python -m scripts.cli`), the tests and the benchmark; a real
client does the same: request/reply messages carrying a signed token, never a database.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from libs.bus.rpc import RpcClient
from libs.contracts.envelope import Contract
from libs.contracts.rpc import Command
from libs.tokens import private_key, sign_bytes

IDENTITY = "identity.commands"
ACCESS = "access.commands"
DOSSIER = "dossier.commands"
MESSAGING = "messaging.commands"
NOTIFIER = "notifier.commands"

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
        self, kind: Literal["professional", "operator"], subject: str, card_private_key: str
    ) -> str:
        challenge = (
            await self.rpc.call(IDENTITY, "RequestChallenge", {"kind": kind, "subject": subject})
        )["challenge"]
        signature = sign_bytes(private_key(card_private_key), challenge.encode())
        result = await self.rpc.call(
            IDENTITY,
            "SignInWithCard",
            {"kind": kind, "subject": subject, "challenge": challenge, "signature": signature},
        )
        return str(result["token"])

    async def register_holder(
        self,
        operator_token: str,
        *,
        nir: str,
        first_name: str,
        last_name: str,
        birth_date: date,
        email: str | None = None,
        phone: str | None = None,
        legal_representative_email: str | None = None,
    ) -> dict[str, Any]:
        return await self.rpc.call(
            IDENTITY,
            "RegisterHolder",
            {
                "nir": nir,
                "first_name": first_name,
                "last_name": last_name,
                "birth_date": birth_date.isoformat(),
                "email": email,
                "phone": phone,
                "legal_representative_email": legal_representative_email,
            },
            token=operator_token,
        )

    async def register_professional(
        self,
        operator_token: str,
        *,
        rpps: str,
        first_name: str,
        last_name: str,
        profession: str,
        card_public_key: str,
        specialty: str | None = None,
    ) -> dict[str, Any]:
        return await self.rpc.call(
            IDENTITY,
            "RegisterProfessional",
            {
                "rpps": rpps,
                "first_name": first_name,
                "last_name": last_name,
                "profession": profession,
                "specialty": specialty,
                "card_public_key": card_public_key,
            },
            token=operator_token,
        )

    async def request_holder_code(self, ins: str) -> dict[str, Any]:
        return await self.rpc.call(IDENTITY, "RequestHolderCode", {"ins": ins})

    async def sign_in_holder(self, ins: str, code: str) -> str:
        result = await self.rpc.call(IDENTITY, "SignInHolder", {"ins": ins, "code": code})
        return str(result["token"])

    async def close_space(self, token: str, ins: str) -> dict[str, Any]:
        return await self.rpc.call(IDENTITY, "CloseSpace", {"ins": ins}, token=token)

    async def authorize(
        self, holder_token: str, ins: str, rpps: str, until: datetime | None = None
    ) -> dict[str, Any]:
        return await self.rpc.call(
            ACCESS,
            "AuthorizeProfessional",
            {"ins": ins, "rpps": rpps, "until": until.isoformat() if until else None},
            token=holder_token,
        )

    async def access_history(
        self, holder_token: str, ins: str, page: int = 1, page_size: int = 20
    ) -> dict[str, Any]:
        return await self.rpc.call(
            ACCESS,
            "ListAccessHistory",
            {"ins": ins, "page": page, "page_size": page_size},
            token=holder_token,
        )

    async def deposit(
        self,
        token: str,
        ins: str,
        *,
        document_type: str,
        title: str,
        content: bytes,
        media_type: str = "application/pdf",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Pass the same `request_id` to retry a deposit whose outcome is unknown."""
        return await self.rpc.call(
            DOSSIER,
            "DepositDocument",
            {
                "ins": ins,
                "document_type": document_type,
                "title": title,
                "content_b64": base64.b64encode(content).decode(),
                "media_type": media_type,
            },
            token=token,
            request_id=request_id,
        )

    async def read_dossier(
        self, token: str, ins: str, *, cursor: str | None = None, page_size: int | None = None
    ) -> dict[str, Any]:
        """One page, newest first: `{"rule", "documents", "next_cursor"}`; pass `next_cursor`
        back for the next page (each page is an access, traced and alerted)."""
        return await self.rpc.call(
            DOSSIER, "ReadDossier", _page({"ins": ins}, cursor, page_size), token=token
        )

    async def send_message(self, token: str, ins: str, subject: str, body: str) -> dict[str, Any]:
        return await self.rpc.call(
            MESSAGING, "SendMessage", {"ins": ins, "subject": subject, "body": body}, token=token
        )

    async def list_messages(
        self,
        holder_token: str,
        ins: str,
        *,
        cursor: str | None = None,
        page_size: int | None = None,
    ) -> dict[str, Any]:
        """One page of the holder's box, newest first: `{"messages", "next_cursor"}`."""
        return await self.rpc.call(
            MESSAGING, "ListMessages", _page({"ins": ins}, cursor, page_size), token=holder_token
        )

    async def alerts(self, holder_token: str, ins: str) -> dict[str, Any]:
        return await self.rpc.call(NOTIFIER, "ListAlerts", {"ins": ins}, token=holder_token)


def _page(payload: dict[str, Any], cursor: str | None, page_size: int | None) -> dict[str, Any]:
    if cursor is not None:
        payload["cursor"] = cursor
    if page_size is not None:
        payload["page_size"] = page_size
    return payload
