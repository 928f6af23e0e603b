"""What identity records about people reaches access, the only decision point: the treating
physician (ACC_04) and access after death (ACC_13), through all six services."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime

import pytest

from libs.bus.rpc import RpcError
from libs.contracts import commands as cmd
from libs.tokens import new_keypair
from services.identity.messages import ACTIVATION_SUBJECT, APPOINTMENT_SUBJECT
from tests.support.actors import b64, code_mailed_to, sign_in_holder, sign_in_professional
from tests.support.journey import Cast, Stage
from tests.support.people import new_finess, new_professional

pytestmark = pytest.mark.e2e


async def _deposit(stage: Stage, cast: Cast) -> None:
    await stage.client.send(
        cmd.DepositDocument(
            ins=cast.sophie.ins,
            document_type="medical_summary",
            title="Synthèse",
            media_type="text/plain",
            content_b64=b64(b"VSM"),
        ),
        token=cast.martin.token,
    )


async def test_the_physician_who_accepted_reads_without_consent_and_cannot_be_blocked__ACC_04(
    stage: Stage, cast: Cast
) -> None:
    ins, holder = cast.sophie.ins, cast.sophie.token
    await _deposit(stage, cast)
    operator = await stage.operator()
    physician = new_professional("physician", "Traitant")
    await stage.client.send(physician.registration(), token=operator)
    token = await sign_in_professional(stage.client, physician)
    with pytest.raises(RpcError) as before:
        await stage.client.send(cmd.ReadDossier(ins=ins), token=token)
    assert before.value.rule == "ACC_05"

    await stage.client.send(
        cmd.DeclareTreatingPhysician(ins=ins, rpps=physician.rpps), token=holder
    )
    await stage.client.send(cmd.AcceptTreatingPhysician(ins=ins), token=token)
    await stage.tap.wait_for("TreatingPhysicianDeclared", ins=ins)
    # access hears it on its own queue: wait until its decision says so.
    page = await stage.read_once_access_knows(ins, token)
    assert [d.title for d in page.documents] == ["Synthèse"]
    granted = stage.tap.of_type("AccessGranted", ins=ins, actor_id=physician.rpps)
    assert granted[-1]["payload"]["rule"] == "ACC_04"
    with pytest.raises(RpcError) as blocked:
        await stage.client.send(cmd.BlockProfessional(ins=ins, rpps=physician.rpps), token=holder)
    assert blocked.value.code == "conflict"


async def test_after_death_only_the_requester_the_operator_validated_reads_the_dossier__ACC_13(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    await _deposit(stage, cast)
    operator = await stage.operator()
    await stage.client.send(cmd.RecordDeath(ins=ins, died_on=date(2026, 1, 5)), token=operator)
    await stage.tap.wait_for("HolderDeceased", ins=ins)

    heir = f"heir.{ins}@example.org"
    filed = await stage.client.send(
        cmd.FileAccessRequest(
            ins=ins,
            relation="heir",
            first_name="Anne",
            last_name="Durand",
            email=heir,
            reason="Faire valoir mes droits",
        )
    )
    await stage.client.send(
        cmd.DecideAccessRequest(request_id=filed.request_id, validate_request=True),
        token=operator,
    )
    mails = await stage.mailbox.wait_for(heir, 1, subject=APPOINTMENT_SUBJECT)
    text = str(mails[0].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    proxy_id = uuid.UUID(re.findall(r"[0-9a-f-]{36}", text)[0])
    await stage.client.send(cmd.RequestProxyCode(proxy_id=proxy_id))
    code = await code_mailed_to(stage.mailbox, heir)
    token = (await stage.client.send(cmd.SignInProxy(proxy_id=proxy_id, code=code))).token
    await stage.tap.wait_for("ProxyAppointed", ins=ins)

    page = await stage.read_once_access_knows(ins, token)
    assert [d.title for d in page.documents] == ["Synthèse"]
    assert (
        stage.tap.of_type("AccessGranted", ins=ins, actor_kind="requester")[-1]["payload"]["rule"]
        == "ACC_13"
    )
    # The closed space takes no deposit, not even the requester's, and refuses the doctor.
    with pytest.raises(RpcError) as deposit:
        await stage.client.send(
            cmd.DepositDocument(
                ins=ins,
                document_type="holder_document",
                title="x",
                media_type="text/plain",
                content_b64=b64(b"x"),
            ),
            token=token,
        )
    assert deposit.value.code == "space_closed"
    with pytest.raises(RpcError) as doctor:
        await stage.client.send(cmd.ReadDossier(ins=ins), token=cast.martin.token)
    assert doctor.value.code == "space_closed"


async def test_the_former_record_comes_into_the_space_when_the_holder_activates_it__SPC_08(
    stage: Stage,
) -> None:
    operator = await stage.operator()
    announced = await stage.announce()
    ins, email = announced.ins, announced.email
    imported = await stage.client.send(
        cmd.ImportLegacyRecord(
            ins=ins,
            export_id=f"EXP-{ins}",
            exported_at=datetime(2021, 6, 30, tzinfo=UTC),
            documents=[
                cmd.LegacyDocument(
                    legacy_id="DMP-42",
                    document_type="vaccination",
                    title="Rappel tétanos 2019",
                    media_type="text/plain",
                    content_b64=b64(b"dTP 2019"),
                    authored_at=datetime(2019, 3, 4, tzinfo=UTC),
                )
            ],
        ),
        token=operator,
    )
    assert imported.status == "staged"
    mails = await stage.mailbox.wait_for(email, 1, subject=ACTIVATION_SUBJECT)
    text = str(mails[0].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    code = re.search(r"\b([2-9A-Z]{5}-[2-9A-Z]{5})\b", text)
    assert code is not None
    await stage.client.send(cmd.ActivateSpace(ins=ins, activation_code=code[1]))
    token = await sign_in_holder(stage.client, stage.mailbox, ins, email)
    for _ in range(50):
        page = await stage.client.send(cmd.ReadDossier(ins=ins), token=token)
        if page.documents:
            break
        await asyncio.sleep(0.1)  # the dossier hears SpaceActivated on its own queue
    assert [(d.title, d.deposited_at) for d in page.documents] == [
        ("Rappel tétanos 2019", datetime(2019, 3, 4, tzinfo=UTC))
    ]


async def test_a_care_team_the_hospital_declared_reads_while_the_episode_lasts__ACC_06(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    await _deposit(stage, cast)
    operator = await stage.operator()
    finess = new_finess()
    await stage.client.send(
        cmd.RegisterEstablishment(finess=finess, name="CHU", category="hospital"), token=operator
    )
    nurse = new_professional("nurse", "Blanc")
    await stage.client.send(nurse.registration(), token=operator)
    await stage.client.send(
        cmd.AddEstablishmentStaff(finess=finess, rpps=nurse.rpps), token=operator
    )
    token = await sign_in_professional(stage.client, nurse)
    with pytest.raises(RpcError) as before:
        await stage.client.send(cmd.ReadDossier(ins=ins), token=token)
    assert before.value.rule == "ACC_05"

    now = datetime.now(UTC)
    team = await stage.client.send(
        cmd.DeclareCareTeam(
            finess=finess, ins=ins, starts_at=now, ends_at=None, members=[nurse.rpps]
        ),
        token=token,
    )
    page = await stage.read_once_access_knows(ins, token)
    assert [d.title for d in page.documents] == ["Synthèse"]  # in the nurse's matrix row
    granted = stage.tap.of_type("AccessGranted", ins=ins, actor_id=nurse.rpps)
    assert granted[-1]["payload"]["rule"] == "ACC_06"

    await stage.client.send(cmd.EndCareTeam(episode_id=team.episode_id), token=token)
    await stage.tap.wait_for("CareTeamEnded", ins=ins)
    for _ in range(50):
        try:
            await stage.client.send(cmd.ReadDossier(ins=ins), token=token)
            await asyncio.sleep(0.2)
        except RpcError as after:
            assert after.rule == "ACC_05"
            break
    else:
        raise AssertionError("the care team still reads after its episode ended")


async def test_a_doctor_breaking_the_glass_reads_no_masked_document_and_sophie_is_told__ACC_09(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    await _deposit(stage, cast)
    with pytest.raises(RpcError) as without_reason:
        await stage.client.send(cmd.ReadDossier(ins=ins, emergency=True), token=cast.bernard.token)
    assert without_reason.value.rule == "ACC_09"
    page = await stage.client.send(
        cmd.ReadDossier(ins=ins, emergency=True, emergency_reason="patiente inconsciente"),
        token=cast.bernard.token,
    )
    assert [d.title for d in page.documents] == ["Synthèse"]
    granted = await stage.tap.wait_for("AccessGranted", ins=ins, actor_id=cast.bernard.pro.rpps)
    assert (granted[-1]["payload"]["emergency"], granted[-1]["payload"]["include_masked"]) == (
        True,
        False,
    )
    logged = await stage.tap.wait_for(
        "AccessLogged", ins=ins, actor_id=cast.bernard.pro.rpps, outcome="granted"
    )
    assert logged[-1]["payload"]["emergency"] is True
    history = await stage.client.send(
        cmd.ListAccessHistory(ins=ins, actor_id=cast.bernard.pro.rpps), token=cast.sophie.token
    )
    assert [(t.outcome, t.purpose) for t in history.traces] == [
        ("granted", "patiente inconsciente"),
        ("denied", None),
    ]


async def test_an_app_of_the_catalogue_reads_only_what_sophie_chose__ACC_15(
    stage: Stage, cast: Cast
) -> None:
    ins = cast.sophie.ins
    await _deposit(stage, cast)  # a medical summary
    await stage.client.send(
        cmd.DepositDocument(
            ins=ins,
            document_type="vaccination",
            title="Rappel DTP",
            media_type="text/plain",
            content_b64=b64(b"DTP"),
        ),
        token=cast.martin.token,
    )
    operator = await stage.operator()
    private, public = new_keypair()
    app_id = f"carnet-{uuid.uuid4().hex[:8]}"
    await stage.client.send(
        cmd.ReferenceCatalogueService(
            service_id=app_id, name="Carnet", categories=["vaccinations"], public_key=public
        ),
        token=operator,
    )
    app = (await stage.client.sign_in_with_card("app", app_id, private)).token
    with pytest.raises(RpcError) as not_chosen:
        await stage.client.send(cmd.ReadDossier(ins=ins), token=app)
    assert not_chosen.value.rule == "ACC_15"
    await stage.client.send(
        cmd.SetAppAccess(ins=ins, service_id=app_id, categories=["vaccinations", "summaries"]),
        token=cast.sophie.token,
    )
    page = await stage.read_once_access_knows(ins, app)
    # Summaries: chosen by Sophie, but not what the catalogue references the app for.
    assert [d.title for d in page.documents] == ["Rappel DTP"]
