"""One holder's journey through all six services, through the bus only.

Read in file order, the tests tell the story: Sophie's space is announced and opens, she signs in
and authorizes Dr Martin, who deposits and reads a lab report, Dr Bernard is refused, Sophie is
told of every access, reads her history, writes to her doctor and closes her space. Each test
plays the steps it needs with a cast of its own (`tests.support.journey`), so each runs alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest

from libs.bus.rpc import RpcError
from libs.clock import advance
from libs.contracts import commands as cmd
from libs.runtime import Runtime
from services.dossier import fhir
from services.notifier.domain import mail_subject
from tests.support.actors import b64, code_mailed_to, sign_in_holder, sign_in_professional
from tests.support.journey import (
    DOCTOR_BODY,
    DOCTOR_SUBJECT,
    HOLDER_BODY,
    HOLDER_SUBJECT,
    SECRET,
    TITLE,
    Cast,
    Stage,
    sophie,
)
from tests.support.people import new_nir, new_professional
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e


async def test_a_wrong_nir_key_is_refused_a_space_opens_six_weeks_after_announced__SPC_01__SPC_02(
    stage: Stage,
) -> None:
    operator = await stage.operator()
    nir = new_nir(sex=2, year=87)
    wrong_key = nir[:-2] + f"{(int(nir[-2:]) % 96) + 1:02d}"
    with pytest.raises(RpcError) as refused:
        await stage.client.send(sophie(wrong_key), token=operator)
    assert refused.value.code == "invalid_nir_key"

    announced = await stage.client.send(sophie(nir, f"sophie.{nir}@example.org"), token=operator)
    assert announced.status == "announced"
    await stage.tap.wait_for("SpaceAnnounced", ins=nir)
    assert not stage.tap.of_type("SpaceOpened", ins=nir)

    await stage.six_weeks_pass()
    opened = await stage.tap.wait_for("SpaceOpened", ins=nir, timeout=30)
    assert len(opened) == 1
    assert stage.tap.of_type("SpaceOpeningDue", ins=nir)


async def test_doctor_signs_in_by_card_holder_by_mailed_code_and_authorizes_her__SPC_03__ACC_05(
    stage: Stage,
) -> None:
    announced = await stage.announce()
    ins, martin = announced.ins, announced.martin
    await stage.open_space(ins)
    doctor = await stage.client.sign_in_with_card("professional", martin.rpps, martin.card_private)

    await stage.client.send(cmd.RequestHolderCode(ins=ins))
    code = await code_mailed_to(stage.mailbox, announced.email)
    with pytest.raises(RpcError) as wrong:
        await stage.client.send(
            cmd.SignInHolder(ins=ins, code="000000" if code != "000000" else "111111")
        )
    assert wrong.value.code == "unauthenticated"
    holder = await stage.client.send(cmd.SignInHolder(ins=ins, code=code))

    authorized = await stage.client.send(
        cmd.AuthorizeProfessional(ins=ins, rpps=martin.rpps), token=holder.token
    )
    assert authorized.rpps == martin.rpps
    dossier = await stage.client.send(cmd.ReadDossier(ins=ins), token=doctor.token)
    assert (dossier.rule, dossier.documents) == ("ACC_05", [])


async def test_an_authorized_deposit_is_stored_encrypted_and_published__DOC_02__DOC_11__ACC_18(
    stage: Stage, cast: Cast, system: dict[str, Runtime]
) -> None:
    ins = cast.sophie.ins
    deposited = await stage.martin_deposits_the_lab_report(cast)
    assert deposited.rule == "ACC_05"
    published = await stage.tap.wait_for("DocumentDeposited", ins=ins)
    assert published[0]["payload"]["document_id"] == str(deposited.document_id)
    assert "content" not in str(published[0]["payload"]).lower().replace("document_id", "")
    await stage.tap.wait_for("AccessGranted", ins=ins, action="deposit")
    await stage.tap.wait_for("AccessLogged", ins=ins, action="deposit")
    async with system["dossier"].pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM documents WHERE ins = $1", ins)
    assert len(rows) == 1
    stored = b"".join(v for v in rows[0].values() if isinstance(v, bytes))
    assert SECRET not in stored and b"Hemoglobine" not in stored


async def test_the_authorized_doctor_reads_the_dossier_and_the_read_is_traced__ACC_05__ACC_03(
    stage: Stage, cast: Cast
) -> None:
    deposited = await stage.martin_deposits_the_lab_report(cast)
    dossier = await stage.martin_reads(cast)
    assert dossier.rule == "ACC_05"
    assert [d.document_id for d in dossier.documents] == [deposited.document_id]
    assert base64.b64decode(dossier.documents[0].content_b64) == SECRET
    await stage.tap.wait_for("AccessLogged", ins=cast.sophie.ins, action="read", outcome="granted")


async def test_a_doctor_never_authorized_is_denied_traced_and_nothing_leaks__ACC_05__ACC_18(
    stage: Stage, cast: Cast
) -> None:
    deposited = await stage.martin_deposits_the_lab_report(cast)
    refused = await stage.bernard_is_refused_reading(cast)
    assert (refused.code, refused.rule) == ("access_denied", "ACC_05")
    for secret in (TITLE, "Hemoglobine", str(deposited.document_id)):
        assert secret not in refused.message
    denied = await stage.tap.wait_for("AccessDenied", ins=cast.sophie.ins)
    assert denied[0]["payload"]["actor_id"] == cast.bernard.pro.rpps
    assert denied[0]["payload"]["rule"] == "ACC_05"


async def test_the_holder_is_alerted_exactly_once_per_access_by_a_professional__NTF_01(
    stage: Stage, cast: Cast, smtp: SmtpServer
) -> None:
    ins, email = cast.sophie.ins, cast.sophie.email
    await stage.martin_deposits_the_lab_report(cast)
    await stage.martin_reads(cast)
    await stage.bernard_is_refused_reading(cast)
    # Two accesses by a professional (deposit, read); the denied attempt is in the history.
    granted = [
        e
        for e in stage.tap.of_type("AccessLogged", ins=ins, outcome="granted")
        if e["payload"]["actor_kind"] != "holder"
    ]
    assert len(granted) == 2
    # Alerts: the space opening (NTF_02), the two accesses (NTF_01), and the secure message that
    # told her of the deposit (MSG_02, NTF_03).
    await stage.tap.wait_for("HolderAlerted", ins=ins, count=4, timeout=30)
    alerts = await stage.client.send(cmd.ListAlerts(ins=ins), token=cast.sophie.token)
    assert sorted(a.kind for a in alerts.alerts) == [
        "access",
        "access",
        "new_message",
        "space_opened",
    ]
    # the activation code with the announcement (SPC_03), a sign-in code, 4 alerts
    mails = await smtp.mailbox.wait_for(email, 1 + 1 + 4, timeout=30)
    access_mails = [m for m in mails if m["Subject"] == mail_subject("access")]
    assert len(access_mails) == 2
    for mail in access_mails:
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Martin" in text  # who
        for secret in (TITLE, "Hemoglobine", "lab_report", "Bilan"):
            assert secret not in text and secret not in mail["Subject"]
    # Nothing more arrives: exactly one alert per access, never two.
    await asyncio.sleep(1.0)
    assert len(stage.tap.of_type("HolderAlerted", ins=ins)) == 4
    assert len(smtp.mailbox.to(email)) == 6


async def test_the_holder_reads_her_access_history_newest_first_paginated__ACC_03(
    stage: Stage, cast: Cast
) -> None:
    await stage.martin_deposits_the_lab_report(cast)
    await stage.martin_reads(cast)
    await stage.bernard_is_refused_reading(cast)
    ins, token = cast.sophie.ins, cast.sophie.token
    first = await stage.client.send(cmd.ListAccessHistory(ins=ins, page_size=2), token=token)
    second = await stage.client.send(
        cmd.ListAccessHistory(ins=ins, page_size=2, cursor=first.next_cursor), token=token
    )
    assert second.next_cursor is None
    assert [(t.actor_id, t.action, t.outcome) for t in first.traces + second.traces] == [
        (cast.bernard.pro.rpps, "read", "denied"),
        (cast.martin.pro.rpps, "read", "granted"),
        (cast.martin.pro.rpps, "deposit", "granted"),
    ]
    assert all(t.rule for t in first.traces + second.traces)


async def test_holder_and_doctor_exchange_secure_messages_sealed_at_rest__MSG_01__MSG_03(
    stage: Stage, cast: Cast, system: dict[str, Runtime]
) -> None:
    ins = cast.sophie.ins
    await stage.martin_deposits_the_lab_report(cast)
    # The deposit's notice (MSG_02) reaches her box first: the two messages come after it.
    await stage.tap.wait_for("MessageSent", ins=ins)
    await stage.sophie_and_martin_write_to_each_other(cast)
    box = await stage.client.send(cmd.ListMessages(ins=ins), token=cast.sophie.token)
    assert [(m.subject, m.body) for m in box.messages[:2]] == [
        (DOCTOR_SUBJECT, DOCTOR_BODY),
        (HOLDER_SUBJECT, HOLDER_BODY),
    ]
    assert box.messages[2].origin == "deposit"
    # The doctor's message is alerted (NTF_03) like the deposit's notice; the holder's own is not.
    await stage.tap.wait_for("HolderAlerted", ins=ins, kind="new_message", count=2, timeout=30)
    async with system["messaging"].pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM messages WHERE ins = $1", ins)
    at_rest = repr([dict(r) for r in rows])
    for secret in ("sérologie", "prise de sang", "négatif", "VIH"):
        assert secret not in at_rest


async def test_a_retried_deposit_is_stored_traced_and_alerted_once_with_the_first_reply(
    stage: Stage, cast: Cast, system: dict[str, Runtime]
) -> None:
    """The same request id, sent again and three times at once: one document, one decision,
    one trace, one alert; every caller gets the first reply. Another payload under it is
    refused."""
    ins = cast.sophie.ins

    async def counts() -> tuple[int, int, int]:
        """(documents, deposit traces, access alerts), once every granted access by a
        professional so far has its alert (NTF_01; a permission to message is not alerted,
        the message is)."""
        async with asyncio.timeout(15):
            while True:
                async with system["dossier"].pool.acquire() as conn:
                    documents = await conn.fetchval(
                        "SELECT count(*) FROM documents WHERE ins = $1", ins
                    )
                async with system["access"].pool.acquire() as conn:
                    traces = await conn.fetchval(
                        "SELECT count(*) FROM traces WHERE ins = $1 AND action = 'deposit'", ins
                    )
                    granted = await conn.fetchval(
                        "SELECT count(*) FROM traces WHERE ins = $1 AND outcome = 'granted'"
                        " AND actor_kind = 'professional' AND action <> 'message'",
                        ins,
                    )
                async with system["notifier"].pool.acquire() as conn:
                    alerts = await conn.fetchval(
                        "SELECT count(*) FROM alerts WHERE ins = $1 AND kind = 'access'", ins
                    )
                if alerts == granted:
                    return documents, traces, alerts
                await asyncio.sleep(0.1)

    before = await counts()
    request_id = f"retry-{ins}"

    def deposit(title: str = "Compte rendu") -> Awaitable[cmd.Deposited]:
        return stage.client.send(
            cmd.DepositDocument(
                ins=ins,
                document_type="lab_report",
                title=title,
                content_b64=b64(b"%PDF-1.4 compte rendu"),
            ),
            token=cast.martin.token,
            request_id=request_id,
        )

    first = await deposit()
    again, *together = await asyncio.gather(deposit(), deposit(), deposit())
    assert again == first and all(reply == first for reply in together)
    with pytest.raises(RpcError) as reused:
        await deposit(title="Autre chose")
    assert reused.value.code == "request_id_reused"
    await asyncio.sleep(1)  # time for a second decision or alert, were there one
    assert await counts() == (before[0] + 1, before[1] + 1, before[2] + 1)


async def test_closing_the_space_stops_every_service__RET_01__RET_05__ACC_17(
    stage: Stage, cast: Cast, system: dict[str, Runtime]
) -> None:
    ins, martin = cast.sophie.ins, cast.martin.token
    closed = await stage.client.send(cmd.CloseSpace(ins=ins), token=cast.sophie.token)
    await stage.tap.wait_for("SpaceClosed", ins=ins)

    async def refused(call: Callable[[], Awaitable[Any]]) -> RpcError:
        """The services learn of the closure from the event: until then they still serve."""
        for _ in range(100):
            try:
                await call()
            except RpcError as error:
                return error
            await asyncio.sleep(0.1)
        raise AssertionError("never refused")

    deposit_refused = await refused(
        lambda: stage.client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="x", content_b64=b64(b"x")
            ),
            token=martin,
        )
    )
    assert deposit_refused.code in ("space_closed", "access_denied")
    # access.decide answers services only: asked through the dossier's own connection.
    decision = await system["dossier"].rpc.send(cmd.Decide(ins=ins, action="read"), token=martin)
    assert (decision.granted, decision.rule) == (False, "ACC_17")
    message_refused = await refused(
        lambda: stage.client.send(
            cmd.SendMessage(ins=ins, subject="Bonjour", body="Bonjour"), token=martin
        )
    )
    assert message_refused.code in ("space_closed", "access_denied")

    async with system["retention"].pool.acquire() as conn:
        for _ in range(100):
            due = await conn.fetchval(
                "SELECT due_at FROM deadlines WHERE ins = $1 AND kind = 'space_purge'", ins
            )
            if due is not None:
                break
            await asyncio.sleep(0.1)
    assert due is not None
    years = (due - system["retention"].now()).days / 365.25
    assert 9.9 < years <= 10.01, (closed.closed_at, due)


@pytest.mark.parametrize("objector", ["operator", "person"])
async def test_a_person_who_objects_within_six_weeks_gets_no_space__SPC_01__SPC_03(
    stage: Stage, objector: str
) -> None:
    """Through the operator, or the person themselves, signed in with the code sent to them."""
    operator = await stage.operator()
    nir = new_nir(sex=2, year=80)
    email = f"objector.{nir}@example.org"
    await stage.client.send(
        cmd.RegisterHolder(
            nir=nir, first_name="Lucie", last_name="Roux", birth_date=date(1980, 9, 9), email=email
        ),
        token=operator,
    )
    token = (
        operator
        if objector == "operator"
        else await sign_in_holder(stage.client, stage.mailbox, nir, email)
    )
    objected = await stage.client.send(cmd.ObjectToSpace(ins=nir), token=token)
    assert objected.status == "objected"
    await stage.six_weeks_pass()
    await stage.tap.wait_for("SpaceOpeningDue", ins=nir, timeout=30)
    await asyncio.sleep(1.0)  # identity has had time to (not) open it
    assert not stage.tap.of_type("SpaceOpened", ins=nir)


async def test_no_event_of_the_journey_carries_its_free_text_or_content__MSG_03__DOC_01(
    stage: Stage, cast: Cast
) -> None:
    """Every event of the journey, as any tap on `dmp.events` saw it: ids and coarse types,
    never a title, a subject, a body, a document's content, a break-the-glass reason or a
    collected consent's reason."""
    ins = cast.sophie.ins
    deposited = await stage.martin_deposits_the_lab_report(cast)
    await stage.martin_reads(cast)
    await stage.bernard_is_refused_reading(cast)
    await stage.sophie_and_martin_write_to_each_other(cast)
    held = await stage.client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="lab_report",
            title="Charge virale VIH",
            content_b64=b64(b"%PDF-1.4 charge virale indetectable"),
            held_back=True,
            replaces=deposited.document_id,
        ),
        token=cast.martin.token,
    )
    await stage.client.send(
        cmd.MaskDocument(ins=ins, document_id=held.document_id), token=cast.sophie.token
    )
    await stage.client.send(
        cmd.ReadDossier(ins=ins, emergency=True, emergency_reason="coma hypoglycemique"),
        token=cast.bernard.token,
    )
    await stage.client.send(
        cmd.CollectConsent(
            ins=ins,
            rpps=new_professional().rpps,
            reason_code="referral",
            reason="suspicion de cancer du sein",
        ),
        token=cast.martin.token,
    )
    await stage.tap.wait_for("DocumentHeldBack", ins=ins)
    await stage.tap.wait_for("MessageSent", ins=ins, count=3)
    await stage.tap.wait_for("HolderAlerted", ins=ins, kind="new_message", count=2, timeout=30)
    secrets_ = [
        TITLE,
        "Bilan sanguin",
        SECRET.decode(),
        "Hemoglobine",
        base64.b64encode(SECRET).decode(),
        HOLDER_SUBJECT,
        HOLDER_BODY,
        DOCTOR_SUBJECT,
        DOCTOR_BODY,
        "sérologie",
        "Aucun nouveau prélèvement",
        "Charge virale",
        "VIH",
        "charge virale indetectable",
        "coma hypoglycemique",
        "cancer du sein",
    ]
    assert len([e for e in stage.tap.events if e["payload"].get("ins") == ins]) > 20
    for event in stage.tap.events:
        text = json.dumps(event, ensure_ascii=False)
        escaped = json.dumps(event)
        for secret in secrets_:
            assert secret not in text and secret not in escaped, (secret, event["type"])
    for event in stage.tap.of_type("DocumentDeposited") + stage.tap.of_type("MessageSent"):
        assert event["version"] == 2
        # The holder's name stays off the bus; a professional's may be shown in an alert.
        assert "Sophie" not in json.dumps(event) and "Leroy" not in json.dumps(event)


async def test_sophie_gets_a_copy_of_her_whole_dossier_as_fhir_and_martin_does_not__DOC_09(
    stage: Stage, cast: Cast
) -> None:
    deposited = await stage.martin_deposits_the_lab_report(cast)
    ins = cast.sophie.ins
    copy = await stage.client.send(cmd.CopyDossier(ins=ins), token=cast.sophie.token)
    assert (copy.documents, copy.next_cursor) == (1, None)
    assert copy.bundle["resourceType"] == "Bundle"
    assert fhir.documents_in(copy.bundle) == {deposited.document_id: SECRET}
    patient = next(
        e["resource"] for e in copy.bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["identifier"][0]["value"] == ins
    with pytest.raises(RpcError) as refused:
        await stage.client.send(cmd.CopyDossier(ins=ins), token=cast.martin.token)
    assert refused.value.rule == "DOC_09"


async def test_sophie_masks_a_document_from_all_but_its_author_and_unmasks_it__DOC_06(
    stage: Stage, cast: Cast
) -> None:
    deposited = await stage.martin_deposits_the_lab_report(cast)
    ins, sophie = cast.sophie.ins, cast.sophie.token
    await stage.client.send(
        cmd.AuthorizeProfessional(ins=ins, rpps=cast.bernard.pro.rpps), token=sophie
    )
    mask = cmd.MaskDocument(ins=ins, document_id=deposited.document_id)
    with pytest.raises(RpcError) as not_his:
        await stage.client.send(mask, token=cast.bernard.token)
    assert not_his.value.rule == "DOC_06"
    assert (await stage.client.send(mask, token=sophie)).masked

    async def titles(token: str) -> list[str | None]:
        page = await stage.client.send(cmd.ReadDossier(ins=ins), token=token)
        return [d.title for d in page.documents]

    assert await titles(cast.bernard.token) == []  # masked from professionals...
    assert await titles(cast.martin.token) == [TITLE]  # ...but not from its author
    assert await titles(sophie) == [TITLE]  # nor from her
    await stage.client.send(mask.model_copy(update={"masked": False}), token=sophie)
    assert await titles(cast.bernard.token) == [TITLE]


async def _held_back_by_martin(stage: Stage, cast: Cast) -> cmd.Deposited:
    return await stage.client.send(
        cmd.DepositDocument(
            ins=cast.sophie.ins,
            document_type="lab_report",
            title=TITLE,
            content_b64=b64(SECRET),
            held_back=True,
        ),
        token=cast.martin.token,
    )


async def _sophie_sees(stage: Stage, cast: Cast, token: str | None = None) -> list[str | None]:
    page = await stage.client.send(
        cmd.ReadDossier(ins=cast.sophie.ins), token=token or cast.sophie.token
    )
    return [d.title for d in page.documents]


async def test_a_held_back_result_is_announced_in_two_weeks_and_hers_in_a_month__DOC_07__NTF_03(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    held = await _held_back_by_martin(stage, cast)
    assert await _sophie_sees(stage, cast) == []
    page = await stage.client.send(cmd.ReadDossier(ins=ins), token=cast.martin.token)
    assert [(d.title, d.held_back) for d in page.documents] == [(TITLE, True)]
    with pytest.raises(RpcError):  # only a professional holds back
        await stage.client.send(
            cmd.DepositDocument(
                ins=ins,
                document_type="holder_document",
                title="x",
                content_b64=b64(b"x"),
                held_back=True,
            ),
            token=cast.sophie.token,
        )

    await advance(stage.database_url, timedelta(weeks=2, minutes=1))
    notice = await stage.tap.wait_for("HeldBackNoticeDue", ins=ins, timeout=30)
    assert notice[0]["payload"]["document_id"] == str(held.document_id)
    alerted = await stage.tap.wait_for("HolderAlerted", ins=ins, kind="dossier_updated")
    assert alerted
    # Two weeks on, her token of then has expired: she signs in again.
    sophie = await sign_in_holder(stage.client, stage.mailbox, ins, cast.sophie.email)
    assert await _sophie_sees(stage, cast, sophie) == []  # told, not yet shown

    await advance(stage.database_url, timedelta(days=17))
    released = await stage.tap.wait_for("DocumentReleased", ins=ins, timeout=30)
    assert released[0]["payload"]["reason"] == "one_month"
    sophie = await sign_in_holder(stage.client, stage.mailbox, ins, cast.sophie.email)
    assert await _sophie_sees(stage, cast, sophie) == [TITLE]


async def test_the_announcement_consultation_releases_at_once_and_ends_the_deadlines__DOC_07(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    held = await _held_back_by_martin(stage, cast)
    await stage.tap.wait_for("DocumentHeldBack", ins=ins)
    with pytest.raises(RpcError) as bernard:  # not authorized: no access, no release
        await stage.client.send(
            cmd.RecordAnnouncementConsultation(ins=ins, document_id=held.document_id),
            token=cast.bernard.token,
        )
    assert bernard.value.rule == "ACC_05"
    await stage.client.send(
        cmd.RecordAnnouncementConsultation(ins=ins, document_id=held.document_id),
        token=cast.martin.token,
    )
    assert await _sophie_sees(stage, cast) == [TITLE]
    await stage.tap.wait_for("DocumentReleased", ins=ins, reason="consultation")
    operator = await stage.operator()
    for _ in range(50):
        deadlines = await stage.client.send(cmd.ListDeadlines(ins=ins), token=operator)
        held_back = [d for d in deadlines.deadlines if d.kind.startswith("held_back")]
        if len(held_back) == 2 and all(d.status == "cancelled" for d in held_back):
            break
        await asyncio.sleep(0.2)
    assert sorted((d.kind, d.status) for d in held_back) == [
        ("held_back_notice", "cancelled"),
        ("held_back_release", "cancelled"),
    ]


async def test_a_new_version_replaces_the_old_visibly_and_only_its_author_makes_one__DOC_01(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    first = await stage.martin_deposits_the_lab_report(cast)
    second = await stage.client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="lab_report",
            title=TITLE + " (corrigé)",
            content_b64=b64(SECRET + b" v2"),
            replaces=first.document_id,
        ),
        token=cast.martin.token,
    )
    page = await stage.client.send(cmd.ReadDossier(ins=ins), token=cast.sophie.token)
    assert [(d.document_id, d.version, d.replaces) for d in page.documents] == [
        (second.document_id, 2, first.document_id)
    ]
    every = await stage.client.send(
        cmd.ReadDossier(ins=ins, all_versions=True), token=cast.sophie.token
    )
    assert [(d.version, d.replaced_by) for d in every.documents] == [
        (2, None),
        (1, second.document_id),
    ]
    with pytest.raises(RpcError) as not_hers:
        await stage.client.send(
            cmd.DepositDocument(
                ins=ins,
                document_type="holder_document",
                title="x",
                content_b64=b64(b"x"),
                replaces=second.document_id,
            ),
            token=cast.sophie.token,
        )
    assert not_hers.value.code == "invalid_input"


async def test_sophie_corrects_her_own_document_and_deletes_it_at_once__DOC_05(
    stage: Stage, cast: Cast
) -> None:
    ins, sophie = cast.sophie.ins, cast.sophie.token
    mine = await stage.client.send(
        cmd.DepositDocument(
            ins=ins, document_type="holder_document", title="Mes vaccins", content_b64=b64(b"v1")
        ),
        token=sophie,
    )
    corrected = await stage.client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="holder_document",
            title="Mes vaccins",
            content_b64=b64(b"v2"),
            replaces=mine.document_id,
        ),
        token=sophie,
    )
    gone = await stage.client.send(
        cmd.RequestDocumentDeletion(ins=ins, document_id=corrected.document_id), token=sophie
    )
    assert gone.status == "deleted"
    every = await stage.client.send(cmd.ReadDossier(ins=ins, all_versions=True), token=sophie)
    assert every.documents == []  # both versions


async def test_sophie_asks_martin_to_delete_his_document_and_he_alone_decides__DOC_05__DOC_04(
    stage: Stage, cast: Cast
) -> None:
    ins, sophie = cast.sophie.ins, cast.sophie.token
    kept = await stage.martin_deposits_the_lab_report(cast)
    dropped = await stage.martin_deposits_the_lab_report(cast)
    for document in (kept, dropped):
        asked = await stage.client.send(
            cmd.RequestDocumentDeletion(ins=ins, document_id=document.document_id), token=sophie
        )
        assert asked.status == "pending"  # DOC_04: a professional's document is not hers to delete
    with pytest.raises(RpcError) as not_holder:
        await stage.client.send(
            cmd.RequestDocumentDeletion(ins=ins, document_id=kept.document_id),
            token=cast.martin.token,
        )
    assert not_holder.value.rule == "DOC_05"
    pending = await stage.client.send(cmd.ListDeletionRequests(), token=cast.martin.token)
    assert {r.document_id for r in pending.requests} >= {kept.document_id, dropped.document_id}
    decide = cmd.DecideDocumentDeletion(ins=ins, document_id=dropped.document_id, accept=True)
    with pytest.raises(RpcError) as not_author:
        await stage.client.send(decide, token=cast.bernard.token)
    assert not_author.value.code == "forbidden"
    assert (await stage.client.send(decide, token=cast.martin.token)).status == "deleted"
    refused = await stage.client.send(
        cmd.DecideDocumentDeletion(ins=ins, document_id=kept.document_id, accept=False),
        token=cast.martin.token,
    )
    assert refused.status == "kept"
    await stage.tap.wait_for("DocumentDeleted", ins=ins, document_id=str(dropped.document_id))
    page = await stage.client.send(cmd.ReadDossier(ins=ins), token=sophie)
    assert [d.document_id for d in page.documents] == [kept.document_id]


async def test_the_health_insurance_feeds_the_care_history_and_never_reads__DOC_08(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    operator = await stage.operator()
    await stage.client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="care_history",
            title="Historique des remboursements",
            content_b64=b64(b"%PDF-1.4 soins 2026"),
        ),
        token=operator,
    )
    page = await stage.client.send(cmd.ReadDossier(ins=ins), token=cast.sophie.token)
    assert [d.document_type for d in page.documents] == ["care_history"]
    with pytest.raises(RpcError) as never:
        await stage.client.send(cmd.ReadDossier(ins=ins), token=operator)
    assert never.value.rule == "ACC_10"
    with pytest.raises(RpcError) as only_care_history:
        await stage.client.send(
            cmd.DepositDocument(
                ins=ins, document_type="lab_report", title="x", content_b64=b64(b"x")
            ),
            token=operator,
        )
    assert only_care_history.value.rule == "ACC_10"


async def test_martins_secretary_deposits_on_his_behalf_and_no_one_elses__DOC_03(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    operator = await stage.operator()
    secretary = new_professional("administrative_staff", "Secrétaire")
    await stage.client.send(secretary.registration(), token=operator)
    token = await sign_in_professional(stage.client, secretary)
    deposit = cmd.DepositDocument(
        ins=ins,
        document_type="lab_report",
        title=TITLE,
        content_b64=b64(SECRET),
        on_behalf_of=cast.martin.pro.rpps,
    )
    done = await stage.client.send(deposit, token=token)
    assert done.rule == "DOC_03"
    page = await stage.client.send(cmd.ReadDossier(ins=ins), token=cast.sophie.token)
    [document] = page.documents
    assert (document.author_id, document.deposited_by) == (
        cast.martin.pro.rpps,
        "Claire Secrétaire",
    )
    with pytest.raises(RpcError) as not_authorized:  # Dr Bernard may not deposit
        await stage.client.send(
            deposit.model_copy(update={"on_behalf_of": cast.bernard.pro.rpps}), token=token
        )
    assert not_authorized.value.rule == "DOC_03"
    with pytest.raises(RpcError) as never_reads:
        await stage.client.send(cmd.ReadDossier(ins=ins), token=token)
    assert never_reads.value.rule == "DOC_10"


async def test_a_large_image_travels_and_rests_in_parts_and_comes_back_whole__DOC_01__DOC_11(
    stage: Stage, cast: Cast, system: dict[str, Runtime]
) -> None:
    ins = cast.sophie.ins
    part_bytes = system["dossier"].settings.part_bytes
    image = b"\xff\xd8\xff\xe0" + os.urandom(2 * part_bytes + 12_345)
    begin = cmd.BeginDocumentUpload(
        ins=ins,
        document_type="imaging_report",
        title="IRM lombaire",
        media_type="image/jpeg",
        size=len(image),
        sha256=hashlib.sha256(image).hexdigest(),
    )
    upload = await stage.client.send(begin, token=cast.martin.token)
    assert upload.parts == 3
    chunks = [image[i : i + part_bytes] for i in range(0, len(image), part_bytes)]
    with pytest.raises(RpcError) as not_theirs:  # only who began it sends its parts
        await stage.client.send(
            cmd.UploadDocumentPart(upload_id=upload.upload_id, index=0, content_b64=b64(chunks[0])),
            token=cast.bernard.token,
        )
    assert not_theirs.value.code == "not_found"
    for index in (0, 2):
        await stage.client.send(
            cmd.UploadDocumentPart(
                upload_id=upload.upload_id, index=index, content_b64=b64(chunks[index])
            ),
            token=cast.martin.token,
        )
    with pytest.raises(RpcError) as incomplete:
        await stage.client.send(
            cmd.CompleteDocumentUpload(upload_id=upload.upload_id), token=cast.martin.token
        )
    assert incomplete.value.code == "conflict"
    for index in (1, 1):  # the same part twice changes nothing
        progress = await stage.client.send(
            cmd.UploadDocumentPart(
                upload_id=upload.upload_id, index=index, content_b64=b64(chunks[1])
            ),
            token=cast.martin.token,
        )
    assert (progress.received, progress.parts) == (3, 3)
    done = await stage.client.send(
        cmd.CompleteDocumentUpload(upload_id=upload.upload_id), token=cast.martin.token
    )
    assert done.document_id == upload.upload_id

    page = await stage.client.send(cmd.ReadDossier(ins=ins), token=cast.sophie.token)
    [listed] = page.documents
    assert (listed.title, listed.parts, listed.size, listed.content_b64) == (
        "IRM lombaire",
        3,
        len(image),
        "",
    )
    before = len(stage.tap.of_type("AccessLogged", ins=ins))
    parts = [
        await stage.client.send(
            cmd.GetDocumentPart(ins=ins, document_id=done.document_id, index=i),
            token=cast.sophie.token,
        )
        for i in range(3)
    ]
    assert b"".join(base64.b64decode(p.content_b64) for p in parts) == image
    await asyncio.sleep(0.5)
    assert len(stage.tap.of_type("AccessLogged", ins=ins)) - before == 1  # one access
    copy = await stage.client.send(cmd.CopyDossier(ins=ins), token=cast.sophie.token)
    assert copy.documents == 1 and fhir.documents_in(copy.bundle) == {}  # named, fetched by parts


async def test_a_closed_space_takes_only_its_closure_and_reactivation_for_its_holder_too__ACC_17(
    stage: Stage, cast: Cast
) -> None:
    ins, sophie = cast.sophie.ins, cast.sophie.token
    await stage.client.send(cmd.CloseSpace(ins=ins), token=sophie)
    await stage.tap.wait_for("SpaceClosed", ins=ins)
    for command in (
        cmd.ListAlerts(ins=ins),
        cmd.ListAccessHistory(ins=ins),
        cmd.ListPermissions(ins=ins),
        cmd.ReadDossier(ins=ins),
    ):
        for _ in range(50):  # each service hears the closure on its own queue
            try:
                await stage.client.send(command, token=sophie)
                await asyncio.sleep(0.2)
            except RpcError as refused:
                assert refused.rule in ("ACC_17", "RET_05"), (command, refused)
                break
        else:
            raise AssertionError(f"{type(command).__name__} still served on a closed space")
    await stage.client.send(cmd.ReactivateSpace(ins=ins), token=sophie)
    await stage.tap.wait_for("SpaceReactivated", ins=ins)
    kinds: list[str] = []
    for _ in range(50):  # served again once access hears it, with the reactivation's alert
        try:
            inbox = await stage.client.send(cmd.ListAlerts(ins=ins), token=sophie)
            kinds = [a.kind for a in inbox.alerts]
            if "space_reactivated" in kinds:
                break
        except RpcError:
            pass
        await asyncio.sleep(0.2)
    assert kinds[0] == "space_reactivated"
