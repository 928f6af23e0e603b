"""A parent acts for their child with their own credential, until the child turns eighteen on
the shared clock and takes over (SPC_04), through all six services and the bus only."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.bus.rpc import RpcError
from libs.clock import advance
from libs.contracts import commands as cmd
from services.identity.messages import ACTIVATION_SUBJECT, APPOINTMENT_SUBJECT, CODE_SUBJECT
from services.notifier.domain import mail_subject
from tests.support.actors import b64, code_mailed_to, sign_in_holder, sign_in_professional
from tests.support.journey import Stage
from tests.support.people import new_nir, new_professional

pytestmark = pytest.mark.e2e


def _text(mail: object) -> str:
    return str(mail.get_body(("plain",)).get_content())  # type: ignore[attr-defined]


async def _shared_now(stage: Stage) -> datetime:
    return datetime.now(UTC) + await advance(stage.database_url, timedelta(0))


async def test_a_parent_acts_for_their_child_who_takes_over_at_eighteen__SPC_04(
    stage: Stage,
) -> None:
    operator = await stage.operator()
    now = await _shared_now(stage)
    # Léo turns eighteen in sixty days.
    birthday = (now + timedelta(days=60)).date()
    birth = date(birthday.year - 18, birthday.month, birthday.day)
    nir = new_nir(sex=1, year=birth.year % 100)
    leo, parent = f"leo.{nir}@example.org", f"parent.{nir}@example.org"
    announced = await stage.client.send(
        cmd.RegisterHolder(
            nir=nir,
            first_name="Léo",
            last_name="Petit",
            birth_date=birth,
            email=leo,
            legal_representative_email=parent,
        ),
        token=operator,
    )
    assert announced.minor
    appointed = await stage.tap.wait_for("ProxyAppointed", ins=nir)
    assert appointed[0]["payload"]["role"] == "legal_representative"

    # The announcement and its activation code go to the parent, never to the minor.
    activation = await stage.mailbox.wait_for(parent, 1, subject=ACTIVATION_SUBJECT)
    found = re.search(r"\b([2-9A-Z]{5}-[2-9A-Z]{5})\b", _text(activation[0]))
    assert found is not None
    assert stage.mailbox.to(leo, ACTIVATION_SUBJECT) == []
    activated = await stage.client.send(cmd.ActivateSpace(ins=nir, activation_code=found[1]))
    assert activated.status == "open"
    await stage.tap.wait_for("SpaceOpened", ins=nir)

    # The minor has no codes of their own.
    await stage.client.send(cmd.RequestHolderCode(ins=nir))

    # The parent signs in with their own credential: a code sent to them.
    appointment = await stage.mailbox.wait_for(parent, 1, subject=APPOINTMENT_SUBJECT)
    proxy_id = uuid.UUID(re.findall(r"[0-9a-f-]{36}", _text(appointment[0]))[0])
    await stage.client.send(cmd.RequestProxyCode(proxy_id=proxy_id))
    code = await code_mailed_to(stage.mailbox, parent)
    session = await stage.client.send(cmd.SignInProxy(proxy_id=proxy_id, code=code))
    representative = session.token

    # The parent authorizes a doctor, who deposits; the parent reads the dossier and its
    # history, as the holder would.
    doctor = new_professional("physician", "Durand")
    await stage.client.send(doctor.registration(), token=operator)
    await stage.client.send(
        cmd.AuthorizeProfessional(ins=nir, rpps=doctor.rpps), token=representative
    )
    doctor_token = await sign_in_professional(stage.client, doctor)
    await stage.client.send(
        cmd.DepositDocument(
            ins=nir,
            document_type="vaccination",
            title="Rappel DTP",
            media_type="text/plain",
            content_b64=b64(b"DTP 11 ans"),
        ),
        token=doctor_token,
    )
    page = await stage.client.send(cmd.ReadDossier(ins=nir), token=representative)
    assert [d.title for d in page.documents] == ["Rappel DTP"]
    history = await stage.client.send(cmd.ListAccessHistory(ins=nir), token=representative)
    assert len(history.traces) >= 2
    # The child's inbox too, read by the parent (access decides, as for the history).
    inbox = await stage.client.send(cmd.ListAlerts(ins=nir), token=representative)
    assert inbox.alerts
    assert stage.mailbox.to(leo, CODE_SUBJECT) == []  # still no code for the minor

    # Léo turns eighteen: the representation ends by itself, and he is told.
    await advance(stage.database_url, timedelta(days=61))
    ended = await stage.tap.wait_for("ProxyEnded", ins=nir, timeout=30)
    assert ended[0]["payload"]["reason"] == "came_of_age"
    await stage.tap.wait_for("HolderCameOfAge", ins=nir, timeout=30)
    told = await stage.mailbox.wait_for(leo, 1, subject=mail_subject("came_of_age"), timeout=30)
    assert "18 ans" in _text(told[0])

    # The parent can no longer sign in for him...
    before = len(stage.mailbox.to(parent, CODE_SUBJECT))
    await stage.client.send(cmd.RequestProxyCode(proxy_id=proxy_id))
    with pytest.raises(RpcError) as refused:
        await stage.client.send(cmd.SignInProxy(proxy_id=proxy_id, code=code))
    assert refused.value.code == "unauthenticated"
    await asyncio.sleep(1.0)
    assert len(stage.mailbox.to(parent, CODE_SUBJECT)) == before

    # ...while Léo signs in with his own code, reads his dossier, and may close the space
    # opened while he was a minor.
    token = await sign_in_holder(stage.client, stage.mailbox, nir, leo)
    page = await stage.client.send(cmd.ReadDossier(ins=nir), token=token)
    assert [d.title for d in page.documents] == ["Rappel DTP"]
    closed = await stage.client.send(cmd.CloseSpace(ins=nir), token=token)
    assert closed.status == "closed"
