"""The end-to-end journey's cast and steps, through the bus only: Sophie, whose space the health
insurance registers and six weeks open; Dr Martin, whom she authorizes; Dr Bernard, whom she
never does.

Every e2e test starts from the step it needs with a cast of its own, so that it proves its rule
alone (`-k ACC_05`) and in any order; only the running services and the event tap are shared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta

from libs.bus.rpc import RpcError
from libs.bus.tap import EventTap
from libs.client import Client
from libs.clock import advance
from libs.contracts import commands as cmd
from tests.support.actors import b64, sign_in_holder, sign_in_operator, sign_in_professional
from tests.support.people import Professional, new_nir, new_professional
from tests.support.smtp import Mailbox
from tests.support.system import Keys

SECRET = b"%PDF-1.4 Hemoglobine 13.5 g/dL - resultat confidentiel"
TITLE = "Bilan sanguin - serologie"
# What the holder and her doctor write to each other: none of it may travel on the bus.
HOLDER_SUBJECT, HOLDER_BODY = "Question sur ma sérologie", "Dois-je refaire la prise de sang ?"
DOCTOR_SUBJECT = "Votre sérologie VIH"
DOCTOR_BODY = "Le résultat est négatif.\nAucun nouveau prélèvement n'est nécessaire."


def sophie(nir: str, email: str | None = None) -> cmd.RegisterHolder:
    return cmd.RegisterHolder(
        nir=nir, first_name="Sophie", last_name="Leroy", birth_date=date(1987, 6, 14), email=email
    )


@dataclass(frozen=True)
class Announced:
    """Sophie's space announced, her two doctors registered: nobody signed in yet."""

    ins: str
    email: str
    martin: Professional
    bernard: Professional


@dataclass(frozen=True)
class Holder:
    ins: str
    email: str
    token: str


@dataclass(frozen=True)
class SignedIn:
    pro: Professional
    token: str


@dataclass(frozen=True)
class Cast:
    """Sophie's space open, Dr Martin authorized by her and Dr Bernard not; all signed in."""

    sophie: Holder
    martin: SignedIn
    bernard: SignedIn


@dataclass(frozen=True)
class Stage:
    """The running system as its users reach it, and the steps of the journey."""

    client: Client
    tap: EventTap
    mailbox: Mailbox
    keys: Keys
    database_url: str

    async def operator(self) -> str:
        return await sign_in_operator(self.client, self.keys)

    async def six_weeks_pass(self) -> None:
        """For every service at once: retention fires the spaces' opening deadlines."""
        await advance(self.database_url, timedelta(weeks=6, minutes=1))

    async def announce(self) -> Announced:
        operator = await self.operator()
        nir = new_nir(sex=2, year=87)
        email = f"sophie.{nir}@example.org"
        await self.client.send(sophie(nir, email), token=operator)
        martin = new_professional("physician", "Martin")
        bernard = new_professional("physician", "Bernard")
        for pro in (martin, bernard):
            await self.client.send(pro.registration(), token=operator)
        return Announced(nir, email, martin, bernard)

    async def open_space(self, ins: str) -> None:
        await self.six_weeks_pass()
        await self.tap.wait_for("SpaceOpened", ins=ins, timeout=30)

    async def cast(self) -> Cast:
        announced = await self.announce()
        await self.open_space(announced.ins)
        ins, email = announced.ins, announced.email
        holder = Holder(ins, email, await sign_in_holder(self.client, self.mailbox, ins, email))
        await self.client.send(
            cmd.AuthorizeProfessional(ins=ins, rpps=announced.martin.rpps), token=holder.token
        )
        martin, bernard = announced.martin, announced.bernard
        return Cast(
            holder,
            SignedIn(martin, await sign_in_professional(self.client, martin)),
            SignedIn(bernard, await sign_in_professional(self.client, bernard)),
        )

    async def read_once_access_knows(self, ins: str, token: str, **read: object) -> cmd.DossierPage:
        """Read as soon as access has taken in the fact that lets this reader in (access hears
        identity on its own queue): a refusal until then, for at most ~10 seconds."""
        for _ in range(50):
            try:
                return await self.client.send(cmd.ReadDossier(ins=ins, **read), token=token)
            except RpcError:
                await asyncio.sleep(0.2)
        return await self.client.send(cmd.ReadDossier(ins=ins, **read), token=token)

    async def martin_deposits_the_lab_report(self, cast: Cast) -> cmd.Deposited:
        return await self.client.send(
            cmd.DepositDocument(
                ins=cast.sophie.ins,
                document_type="lab_report",
                title=TITLE,
                content_b64=b64(SECRET),
            ),
            token=cast.martin.token,
        )

    async def martin_reads(self, cast: Cast) -> cmd.DossierPage:
        return await self.client.send(cmd.ReadDossier(ins=cast.sophie.ins), token=cast.martin.token)

    async def bernard_is_refused_reading(self, cast: Cast) -> RpcError:
        try:
            await self.client.send(cmd.ReadDossier(ins=cast.sophie.ins), token=cast.bernard.token)
        except RpcError as refused:
            return refused
        raise AssertionError("Dr Bernard, never authorized, read the dossier")

    async def sophie_and_martin_write_to_each_other(self, cast: Cast) -> None:
        """She asks, he answers: two messages, in that order."""
        for subject, body, token in (
            (HOLDER_SUBJECT, HOLDER_BODY, cast.sophie.token),
            (DOCTOR_SUBJECT, DOCTOR_BODY, cast.martin.token),
        ):
            await self.client.send(
                cmd.SendMessage(ins=cast.sophie.ins, subject=subject, body=body), token=token
            )
