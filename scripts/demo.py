"""The holder's journey, narrated: what `make run` plays once the six services are up.

Each step goes through the bus exactly as an app or a practice software would.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from libs.bus.rpc import RpcError
from libs.bus.tap import EventTap
from libs.client import Client
from libs.clock import advance
from libs.contracts import commands as cmd
from libs.tokens import new_keypair
from scripts.smtp_sink import Mailbox
from services.identity.domain import with_key

Say = Callable[[str], None]


def _nir() -> str:
    body = f"2870675{random.randint(100, 999)}{random.randint(100, 999)}"
    return with_key(body)


def _rpps() -> str:
    return f"10{random.randint(0, 10**9 - 1):09d}"


def _sophie(nir: str, email: str | None = None) -> cmd.RegisterHolder:
    return cmd.RegisterHolder(
        nir=nir, first_name="Sophie", last_name="Leroy", birth_date=date(1987, 6, 14), email=email
    )


async def play(
    client: Client,
    mailbox: Mailbox,
    *,
    database_url: str,
    amqp_url: str,
    operator_id: str,
    operator_private: str,
    say: Say = print,
) -> dict[str, Any]:
    seen: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        seen.append(event["type"])
        say(f"      ⇢ event {event['type']} (holder {event['holder_key']})")

    async with EventTap(amqp_url, "#", on_event=on_event) as tap:
        await asyncio.sleep(0.5)
        say("\n1. The health insurance registers Sophie, and two professionals.")
        operator = (await client.sign_in_with_card("operator", operator_id, operator_private)).token
        nir = _nir()
        wrong = nir[:-2] + f"{(int(nir[-2:]) % 96) + 1:02d}"
        try:
            await client.send(_sophie(wrong), token=operator)
        except RpcError as refused:
            say(f"   A NIR with a wrong key is refused: [{refused.code}] {refused.message}")
        email = f"sophie.{nir[-4:]}@example.org"
        result = await client.send(_sophie(nir, email), token=operator)
        say(
            f"   Sophie's space {nir} is {result.status}; it opens on {result.opens_at:%Y-%m-%d}"
            " unless she objects (six weeks)."
        )
        pros = {}
        for last_name, profession in (("Martin", "physician"), ("Bernard", "physician")):
            private, public = new_keypair()
            rpps = _rpps()
            await client.send(
                cmd.RegisterProfessional(
                    rpps=rpps,
                    first_name="Claire" if last_name == "Martin" else "Louis",
                    last_name=last_name,
                    profession=profession,
                    card_public_key=public,
                ),
                token=operator,
            )
            pros[last_name] = (rpps, private)
        say(
            f"   Dr Martin ({pros['Martin'][0]}) and Dr Bernard ({pros['Bernard'][0]})"
            " are registered."
        )

        await asyncio.sleep(0.5)
        say("\n   Six weeks pass (the shared clock moves forward for every service)...")
        await advance(database_url, timedelta(weeks=6, minutes=1))
        await tap.wait_for("SpaceOpened", ins=nir, timeout=30)
        say("   retention saw the deadline fall due; identity opened the space.")

        await asyncio.sleep(0.5)
        say("\n2. Dr Martin signs in with her card; Sophie signs in with a one-time code.")
        martin = (await client.sign_in_with_card("professional", *pros["Martin"])).token
        bernard = (await client.sign_in_with_card("professional", *pros["Bernard"])).token
        # The same answer whether or not the INS has a space: it names no address.
        sent = await client.send(cmd.RequestHolderCode(ins=nir))
        mails = await mailbox.wait_for(email, 1, subject="code de connexion")
        code = _code(mails)
        say(f"   Identity answers: {sent.message!r}; the e-mail brings the code: {code}")
        holder = (await client.send(cmd.SignInHolder(ins=nir, code=code))).token
        await client.send(cmd.AuthorizeProfessional(ins=nir, rpps=pros["Martin"][0]), token=holder)
        say("   Sophie authorizes Dr Martin.")

        await asyncio.sleep(0.5)
        say("\n3. Dr Martin deposits a lab report.")
        deposit = await client.send(
            cmd.DepositDocument(
                ins=nir,
                document_type="lab_report",
                title="Bilan sanguin",
                content_b64=base64.b64encode(b"%PDF-1.4 Hemoglobine 13.5 g/dL").decode(),
            ),
            token=martin,
        )
        say(f"   Stored encrypted as {deposit.document_id}, granted by rule {deposit.rule}.")

        await asyncio.sleep(0.5)
        say("\n4. Dr Martin reads Sophie's dossier.")
        dossier = await client.send(cmd.ReadDossier(ins=nir), token=martin)
        for doc in dossier.documents:
            content = base64.b64decode(doc.content_b64).decode(errors="replace")
            say(f"   - {doc.title} ({doc.document_type}) by {doc.author_name}: {content!r}")

        await asyncio.sleep(0.5)
        say("\n5. Dr Bernard, never authorized, tries to read it.")
        try:
            await client.send(cmd.ReadDossier(ins=nir), token=bernard)
        except RpcError as refused:
            say(f"   Refused: [{refused.code}] {refused.message}")

        await asyncio.sleep(0.5)
        say("\n6. Sophie is told of every access by a professional.")
        # The code, then: space opened, two accesses, the secure message announcing the deposit.
        mails = await mailbox.wait_for(email, 5, timeout=30)
        for mail in mails:
            if "code" not in mail["Subject"]:
                say(f"   ✉ to {mail['To']}: {mail['Subject']}")
        access_mail = next(m for m in mails if "accès" in m["Subject"])
        body = access_mail.get_body(preferencelist=("plain",))
        if body is not None:
            say("   One of them reads:\n" + _indent(body.get_content()))
        alerts = await client.send(cmd.ListAlerts(ins=nir), token=holder)
        say(f"   {len(alerts.alerts)} alerts are in her space's inbox.")

        await asyncio.sleep(0.5)
        say("\n7. Sophie reads her access history (newest first).")
        history = await client.send(cmd.ListAccessHistory(ins=nir, page_size=10), token=holder)
        for trace in history.traces:
            say(
                f"   {trace.at:%Y-%m-%dT%H:%M:%S}  {trace.actor_name:<16} {trace.action:<8}"
                f" {trace.outcome:<8} rule {trace.rule}"
            )

        await asyncio.sleep(0.5)
        say("\n8. Sophie closes her space.")
        closed = await client.send(cmd.CloseSpace(ins=nir), token=holder)
        await tap.wait_for("SpaceClosed", ins=nir)
        await asyncio.sleep(1.0)  # let every service take the event in
        try:
            await client.send(
                cmd.DepositDocument(
                    ins=nir, document_type="lab_report", title="x", content_b64="eA=="
                ),
                token=martin,
            )
        except RpcError as refused:
            say(f"   A new deposit is refused: [{refused.code}] {refused.message}")
        try:
            await client.send(
                cmd.SendMessage(ins=nir, subject="Résultats", body="Bonjour"), token=martin
            )
        except RpcError as refused:
            say(f"   A new message is refused: [{refused.code}] {refused.message}")
        say(
            f"   Closed at {closed.closed_at:%Y-%m-%dT%H:%M:%S};"
            " the archive is purged ten years later."
        )
    # Who `python -m scripts.cli --as <name>` can be once the demo has played.
    actors = {
        "operator": {"kind": "operator", "id": operator_id, "card_key": operator_private},
        "martin": {"kind": "professional", "id": pros["Martin"][0], "card_key": pros["Martin"][1]},
        "bernard": {
            "kind": "professional",
            "id": pros["Bernard"][0],
            "card_key": pros["Bernard"][1],
        },
        "sophie": {"kind": "holder", "id": nir, "email": email},
    }
    return {"ins": nir, "events": seen, "actors": actors}


def _indent(text: str) -> str:
    return "\n".join(f"   │ {line}" for line in text.strip().splitlines())


def _code(mails: list[Any]) -> str:
    for mail in reversed(mails):
        body = mail.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        found = re.search(r"\b(\d{6})\b", text)
        if found:
            return found[1]
    raise RuntimeError("no one-time code in the holder's mail")
