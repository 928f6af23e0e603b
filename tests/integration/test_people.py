"""identity, against real PostgreSQL, RabbitMQ, SMTP and SMS servers: activation, reactivation,
representatives, death and access requests after it, contacts and the treating physician."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from libs.bus.rpc import RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.runtime import Runtime
from libs.tokens import TokenVerifier
from services.identity.messages import (
    ACTIVATION_SUBJECT,
    APPOINTMENT_SUBJECT,
    CODE_SUBJECT,
    IDENTIFIER_SUBJECT,
)
from tests.support.actors import code_mailed_to, sign_in_holder, sign_in_professional
from tests.support.bus import EventTap
from tests.support.people import new_nir, new_professional
from tests.support.sms import SmsServer
from tests.support.smtp import SmtpServer
from tests.support.system import Keys

pytestmark = pytest.mark.integration


def _text(mail: Any) -> str:
    return str(mail.get_body(("plain",)).get_content())


async def _register(
    client: Client,
    operator: str,
    *,
    birth_date: date = date(1985, 5, 1),
    email: str | None = None,
    phone: str | None = None,
    representative: str | None = None,
) -> tuple[str, str]:
    nir = new_nir()
    email = email or f"holder.{nir}@example.org"
    await client.send(
        cmd.RegisterHolder(
            nir=nir,
            first_name="Jeanne",
            last_name="Durand",
            birth_date=birth_date,
            email=email,
            phone=phone,
            legal_representative_email=representative,
        ),
        token=operator,
    )
    return nir, email


async def _activation_code(smtp: SmtpServer, to: str, count: int = 1) -> str:
    mails = await smtp.mailbox.wait_for(to, count, subject=ACTIVATION_SUBJECT)
    found = re.search(r"\b([2-9A-Z]{5}-[2-9A-Z]{5})\b", _text(mails[-1]))
    assert found is not None
    return found[1]


async def _open(identity: Runtime, ins: str) -> None:
    # Setup: the six weeks are retention's business, proven elsewhere (SPC_01).
    await identity.pool.execute(
        "UPDATE spaces SET status = 'open', opened_at = now() WHERE ins = $1", ins
    )


async def _refused(client: Client, command: Any, token: str | None = None) -> RpcError:
    with pytest.raises(RpcError) as refused:
        await client.send(command, token=token)
    return refused.value


# --- activation (SPC_03) -------------------------------------------------------------------------


async def test_the_activation_code_sent_with_the_announcement_opens_the_space_once__SPC_03(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer, amqp_url: str
) -> None:
    ins, email = await _register(client, operator_token)
    code = await _activation_code(smtp, email)

    wrong = await _refused(client, cmd.ActivateSpace(ins=ins, activation_code="ABCDE-FGHJK"))
    assert wrong.code == "unauthenticated"
    assert (
        await identity.pool.fetchval("SELECT activated_at FROM spaces WHERE ins = $1", ins) is None
    )

    async with EventTap(amqp_url, "identity.#") as tap:
        # Typed in lower case without the dash, as people do.
        activated = await client.send(
            cmd.ActivateSpace(ins=ins, activation_code=code.replace("-", "").lower())
        )
        assert activated.status == "open"
        await tap.wait_for("SpaceOpened", ins=ins)
        await tap.wait_for("SpaceActivated", ins=ins)

    again = await _refused(client, cmd.ActivateSpace(ins=ins, activation_code=code))
    assert again.code == "conflict" and "already used" in again.message


async def test_an_expired_activation_code_is_refused_and_the_operator_sends_a_new_one__SPC_03(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer, keys: Keys
) -> None:
    ins, email = await _register(client, operator_token)
    first = await _activation_code(smtp, email)
    await identity.pool.execute(
        "UPDATE spaces SET activation_expires_at = now() - interval '1 day' WHERE ins = $1", ins
    )
    expired = await _refused(client, cmd.ActivateSpace(ins=ins, activation_code=first))
    assert "expired" in expired.message

    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    forbidden = await _refused(client, cmd.IssueActivationCode(ins=ins), holder)
    assert forbidden.code == "forbidden"

    issued = await client.send(cmd.IssueActivationCode(ins=ins), token=operator_token)
    assert issued.expires_at > issued.expires_at - timedelta(weeks=12)
    second = await _activation_code(smtp, email, count=2)
    void = await _refused(client, cmd.ActivateSpace(ins=ins, activation_code=first))
    assert void.code == "unauthenticated"
    assert (await client.send(cmd.ActivateSpace(ins=ins, activation_code=second))).status == "open"


# --- reactivation (RET_01) -----------------------------------------------------------------------


async def test_a_closed_space_is_reactivated_by_its_holder_within_ten_years__RET_01(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer, amqp_url: str
) -> None:
    ins, email = await _register(client, operator_token)
    await _open(identity, ins)
    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    not_closed = await _refused(client, cmd.ReactivateSpace(ins=ins), holder)
    assert not_closed.code == "conflict"
    await client.send(cmd.CloseSpace(ins=ins), token=holder)

    other, other_email = await _register(client, operator_token)
    await _open(identity, other)
    stranger = await sign_in_holder(client, smtp.mailbox, other, other_email)
    assert (await _refused(client, cmd.ReactivateSpace(ins=ins), stranger)).code == "forbidden"

    # A closed space's holder still gets codes: to ask for the reactivation.
    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    async with EventTap(amqp_url, "identity.#") as tap:
        reopened = await client.send(cmd.ReactivateSpace(ins=ins), token=holder)
        assert reopened.status == "open"
        await tap.wait_for("SpaceReactivated", ins=ins)


async def test_after_ten_years_of_archive_a_space_cannot_be_reactivated__RET_01(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    ins, _ = await _register(client, operator_token)
    await _open(identity, ins)
    await client.send(cmd.CloseSpace(ins=ins), token=operator_token)
    await identity.pool.execute(
        "UPDATE spaces SET closed_at = closed_at - interval '10 years 1 day' WHERE ins = $1", ins
    )
    over = await _refused(client, cmd.ReactivateSpace(ins=ins), operator_token)
    assert "ten years" in over.message


# --- representatives (SPC_04, SPC_05) ------------------------------------------------------------


async def _proxy_id(smtp: SmtpServer, to: str) -> uuid.UUID:
    mails = await smtp.mailbox.wait_for(to, 1, subject=APPOINTMENT_SUBJECT)
    return uuid.UUID(re.findall(r"[0-9a-f-]{36}", _text(mails[-1]))[0])


async def _sign_in_proxy(client: Client, smtp: SmtpServer, proxy_id: uuid.UUID, to: str) -> str:
    before = len(smtp.mailbox.to(to, CODE_SUBJECT))
    await client.send(cmd.RequestProxyCode(proxy_id=proxy_id))
    code = await code_mailed_to(smtp.mailbox, to, after=before)
    return (await client.send(cmd.SignInProxy(proxy_id=proxy_id, code=code))).token


async def test_a_protection_measure_is_recorded_with_its_reference_and_its_representative_decides__SPC_05(  # noqa: E501
    client: Client,
    operator_token: str,
    identity: Runtime,
    smtp: SmtpServer,
    keys: Keys,
    amqp_url: str,
) -> None:
    ins, email = await _register(client, operator_token)
    await _open(identity, ins)
    guardian = f"tuteur.{ins}@example.org"
    appoint = cmd.AppointRepresentative(
        ins=ins,
        role="protection_representative",
        first_name="Paul",
        last_name="Roux",
        email=guardian,
    )
    missing = await _refused(client, appoint, operator_token)
    assert missing.code == "invalid_input" and "reference" in missing.message
    assert await identity.pool.fetchval("SELECT count(*) FROM proxies WHERE ins = $1", ins) == 0

    async with EventTap(amqp_url, "identity.#") as tap:
        proxy = await client.send(
            appoint.model_copy(update={"measure_reference": "RG 24/01234"}), token=operator_token
        )
        appointed = await tap.wait_for("ProxyAppointed", ins=ins)
    assert appointed[0]["payload"]["role"] == "protection_representative"
    assert await _proxy_id(smtp, guardian) == proxy.proxy_id

    token = await _sign_in_proxy(client, smtp, proxy.proxy_id, guardian)
    claims = TokenVerifier(keys.identity_public).verify(token, identity.now())
    assert (claims.kind, claims.acts_for, claims.role) == (
        "representative",
        ins,
        "protection_representative",
    )
    # The measure in force, the holder's own decisions go to the representative.
    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    assert (await _refused(client, cmd.CloseSpace(ins=ins), holder)).code == "forbidden"
    # A representative of this holder is no one else's.
    other, _ = await _register(client, operator_token)
    await _open(identity, other)
    assert (await _refused(client, cmd.CloseSpace(ins=other), token)).code == "forbidden"
    assert (await client.send(cmd.CloseSpace(ins=ins), token=token)).status == "closed"

    ended = await client.send(cmd.EndRepresentation(proxy_id=proxy.proxy_id), token=operator_token)
    assert ended.ended_at is not None
    gone = await _refused(client, cmd.ReactivateSpace(ins=ins), token)
    assert gone.code == "forbidden"
    before = len(smtp.mailbox.to(guardian, CODE_SUBJECT))
    await client.send(cmd.RequestProxyCode(proxy_id=proxy.proxy_id))
    await asyncio.sleep(0.5)
    assert len(smtp.mailbox.to(guardian, CODE_SUBJECT)) == before


async def test_a_minor_has_a_legal_representative_and_no_protection_measure__SPC_04(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer
) -> None:
    parent = f"parent.{uuid.uuid4().hex[:8]}@example.org"
    ins, _ = await _register(
        client, operator_token, birth_date=date(2015, 6, 1), representative=parent
    )
    listed = await client.send(cmd.ListProxies(ins=ins), token=operator_token)
    assert [(p.role, p.ends_at is not None) for p in listed.proxies] == [
        ("legal_representative", True)
    ]
    assert listed.proxies[0].ends_at.date() == date(2033, 6, 1)  # type: ignore[union-attr]
    measure = await _refused(
        client,
        cmd.AppointRepresentative(
            ins=ins,
            role="protection_representative",
            first_name="A",
            last_name="B",
            email=parent,
            measure_reference="RG 1",
        ),
        operator_token,
    )
    assert measure.code == "conflict"


# --- death and access requests after it (ACC_13) --------------------------------------------


async def test_a_death_closes_the_space_and_only_a_validated_request_gives_a_requester__ACC_13(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer, amqp_url: str
) -> None:
    ins, email = await _register(client, operator_token)
    await _open(identity, ins)
    heir = f"heritier.{ins}@example.org"
    request = cmd.FileAccessRequest(
        ins=ins,
        relation="heir",
        first_name="Anne",
        last_name="Durand",
        email=heir,
        reason="Connaître la cause du décès",
    )
    # Anyone files; the answer is the same for a living holder and for no one at all.
    filed = await client.send(request)
    unknown = await client.send(request.model_copy(update={"ins": new_nir()}))
    assert filed.status == unknown.status == "pending" and filed.message == unknown.message
    early = await _refused(
        client,
        cmd.DecideAccessRequest(request_id=filed.request_id, validate_request=True),
        operator_token,
    )
    assert early.code == "conflict"

    future = await _refused(
        client, cmd.RecordDeath(ins=ins, died_on=date(2999, 1, 1)), operator_token
    )
    assert future.code == "invalid_input"
    async with EventTap(amqp_url, "identity.#") as tap:
        death = await client.send(
            cmd.RecordDeath(ins=ins, died_on=identity.now().date()), token=operator_token
        )
        assert death.space_status == "closed"
        await tap.wait_for("SpaceClosed", ins=ins)
        await tap.wait_for("HolderDeceased", ins=ins)
    twice = await _refused(
        client, cmd.RecordDeath(ins=ins, died_on=identity.now().date()), operator_token
    )
    assert twice.code == "conflict"
    # No code for the deceased; no reactivation.
    before = len(smtp.mailbox.to(email, CODE_SUBJECT))
    await client.send(cmd.RequestHolderCode(ins=ins))
    assert (await _refused(client, cmd.ReactivateSpace(ins=ins), operator_token)).code == (
        "conflict"
    )

    pending = await client.send(cmd.ListAccessRequests(), token=operator_token)
    assert filed.request_id in {r.request_id for r in pending.requests}
    holder_like = await _refused(client, cmd.ListAccessRequests(), None)
    assert holder_like.code == "unauthenticated"
    validated = await client.send(
        cmd.DecideAccessRequest(request_id=filed.request_id, validate_request=True),
        token=operator_token,
    )
    assert validated.status == "validated" and validated.proxy_id is not None
    again = await _refused(
        client,
        cmd.DecideAccessRequest(request_id=filed.request_id, validate_request=False),
        operator_token,
    )
    assert again.code == "conflict"

    assert await _proxy_id(smtp, heir) == validated.proxy_id
    token = await _sign_in_proxy(client, smtp, validated.proxy_id, heir)
    claims = TokenVerifier(identity.settings.identity_jwks).verify(token, identity.now())
    assert (claims.kind, claims.acts_for, claims.role) == ("requester", ins, "heir")
    await asyncio.sleep(0.3)
    assert len(smtp.mailbox.to(email, CODE_SUBJECT)) == before


async def test_a_refused_request_gives_nobody_anything__ACC_13(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    ins, _ = await _register(client, operator_token)
    await client.send(cmd.RecordDeath(ins=ins, died_on=date(2025, 1, 1)), token=operator_token)
    filed = await client.send(
        cmd.FileAccessRequest(
            ins=ins,
            relation="court_expert",
            first_name="Luc",
            last_name="Bernard",
            phone="06 12 34 56 78",
            reason="Expertise ordonnée par le tribunal",
        )
    )
    refused = await client.send(
        cmd.DecideAccessRequest(
            request_id=filed.request_id, validate_request=False, note="pièces manquantes"
        ),
        token=operator_token,
    )
    assert (refused.status, refused.proxy_id) == ("refused", None)
    assert await identity.pool.fetchval("SELECT count(*) FROM proxies WHERE ins = $1", ins) == 0


# --- contacts and choices (SPC_06, SPC_07) ----------------------------------------------------


async def test_a_holder_who_chose_sms_gets_their_code_by_sms__SPC_06(
    client: Client,
    operator_token: str,
    identity: Runtime,
    smtp: SmtpServer,
    sms: SmsServer,
    amqp_url: str,
) -> None:
    phone = f"+3361{uuid.uuid4().int % 10**7:07d}"  # 061…: always an allocated range
    ins, email = await _register(client, operator_token, phone=phone)
    await _open(identity, ins)
    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    async with EventTap(amqp_url, "identity.#") as tap:
        await client.send(
            cmd.SetContactPreferences(
                ins=ins, email=email, phone=phone, code_channel="sms", alert_channels=[]
            ),
            token=holder,
        )
        changed = await tap.wait_for("ContactChanged", ins=ins, channels=[])
    assert changed  # no channel: alerts stay in the space
    mailed = len(smtp.mailbox.to(email, CODE_SUBJECT))
    await client.send(cmd.RequestHolderCode(ins=ins))
    texts = await sms.inbox.wait_for(phone, 1)
    code = re.search(r"\b([0-9]{6})\b", texts[-1].text)
    assert code is not None
    assert (await client.send(cmd.SignInHolder(ins=ins, code=code[1]))).token
    assert len(smtp.mailbox.to(email, CODE_SUBJECT)) == mailed


async def test_the_trusted_person_and_emergency_contacts_are_the_holders_alone__SPC_07(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer
) -> None:
    ins, email = await _register(client, operator_token)
    await _open(identity, ins)
    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    trusted = cmd.PersonContact(first_name="Marc", last_name="Durand", relation="frère")
    sister = cmd.PersonContact(first_name="Eve", last_name="Durand", phone="06 11 22 33 44")
    saved = await client.send(
        cmd.SetPersonalContacts(ins=ins, trusted_person=trusted, emergency_contacts=[sister]),
        token=holder,
    )
    read = await client.send(cmd.GetPersonalContacts(ins=ins), token=holder)
    assert read == saved
    assert read.trusted_person == trusted and read.emergency_contacts == [
        sister.model_copy(update={"phone": "+33611223344"})
    ]
    with pytest.raises(ValueError):
        cmd.SetPersonalContacts(ins=ins, emergency_contacts=[sister] * 6)

    other, other_email = await _register(client, operator_token)
    await _open(identity, other)
    stranger = await sign_in_holder(client, smtp.mailbox, other, other_email)
    assert (await _refused(client, cmd.GetPersonalContacts(ins=ins), stranger)).code == "forbidden"


async def test_the_treating_physician_named_by_the_holder_takes_office_when_they_accept__SPC_07(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer, amqp_url: str
) -> None:
    ins, email = await _register(client, operator_token)
    await _open(identity, ins)
    holder = await sign_in_holder(client, smtp.mailbox, ins, email)
    first, second = new_professional("physician", "Martin"), new_professional("physician", "Roy")
    pharmacist = new_professional("pharmacist", "Lenoir")
    for pro in (first, second, pharmacist):
        await client.send(pro.registration(), token=operator_token)

    not_a_physician = await _refused(
        client, cmd.DeclareTreatingPhysician(ins=ins, rpps=pharmacist.rpps), holder
    )
    assert not_a_physician.code == "conflict"

    async with EventTap(amqp_url, "identity.#") as tap:
        named = await client.send(
            cmd.DeclareTreatingPhysician(ins=ins, rpps=first.rpps), token=holder
        )
        assert named.status == "pending"
        second_token = await sign_in_professional(client, second)
        not_theirs = await _refused(client, cmd.AcceptTreatingPhysician(ins=ins), second_token)
        assert not_theirs.code == "not_found"
        first_token = await sign_in_professional(client, first)
        accepted = await client.send(cmd.AcceptTreatingPhysician(ins=ins), token=first_token)
        assert accepted.status == "current"
        declared = await tap.wait_for("TreatingPhysicianDeclared", ins=ins)
        assert declared[0]["payload"]["rpps"] == first.rpps

        # A physician declaring themselves is in office at once: a change.
        itself = await client.send(
            cmd.DeclareTreatingPhysician(ins=ins, rpps=second.rpps), token=second_token
        )
        assert itself.status == "current"
        changed = await tap.wait_for("TreatingPhysicianChanged", ins=ins)
    assert (changed[0]["payload"]["rpps"], changed[0]["payload"]["previous_rpps"]) == (
        second.rpps,
        first.rpps,
    )
    contacts = await client.send(cmd.GetPersonalContacts(ins=ins), token=holder)
    assert (contacts.treating_physician, contacts.pending_treating_physician) == (second.rpps, None)


async def test_a_lost_identifier_is_sent_to_the_email_on_file_and_nowhere_else__SPC_03(
    client: Client, operator_token: str, smtp: SmtpServer
) -> None:
    ins, email = await _register(client, operator_token)
    known = await client.send(cmd.RemindIdentifier(email=email.upper()))
    nobody = f"nobody.{uuid.uuid4().hex[:8]}@example.org"
    unknown = await client.send(cmd.RemindIdentifier(email=nobody))
    assert known == unknown
    mails = await smtp.mailbox.wait_for(email, 1, subject=IDENTIFIER_SUBJECT)
    assert ins in _text(mails[0])
    await asyncio.sleep(0.3)
    assert smtp.mailbox.to(nobody) == []
