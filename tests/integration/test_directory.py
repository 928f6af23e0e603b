"""identity's directory against real PostgreSQL and RabbitMQ: establishments by FINESS, their
staff, care-team episodes (ACC_06), professionals of other EU states (ACC_16), catalogue
services (ACC_15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from libs.bus.rpc import RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.runtime import Runtime
from libs.tokens import TokenVerifier, new_keypair
from tests.support.actors import sign_in_professional
from tests.support.bus import EventTap
from tests.support.people import new_eu_professional, new_finess, new_nir, new_professional

pytestmark = pytest.mark.integration


async def _refused(client: Client, command: Any, token: str | None = None) -> RpcError:
    with pytest.raises(RpcError) as refused:
        await client.send(command, token=token)
    return refused.value


async def _establishment(client: Client, operator: str, finess: str | None = None) -> str:
    registered = await client.send(
        cmd.RegisterEstablishment(
            finess=finess or new_finess(), name="Hôpital Saint-Louis", category="hospital"
        ),
        token=operator,
    )
    return registered.finess


@pytest.mark.parametrize(
    "finess", ["750712185", "75071218", "7507121845", "2C0000016", "75O712184"]
)
async def test_a_finess_malformed_or_with_a_wrong_check_digit_is_refused_and_not_stored__ACC_06(
    client: Client, operator_token: str, identity: Runtime, finess: str
) -> None:
    refused = await _refused(
        client,
        cmd.RegisterEstablishment(finess=finess, name="Clinique", category="clinic"),
        operator_token,
    )
    assert refused.code == "invalid_finess"
    stored = await identity.pool.fetchval(
        "SELECT count(*) FROM establishments WHERE finess = $1", finess
    )
    assert stored == 0


async def test_an_establishment_is_registered_once_by_the_operator_only__ACC_06(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    # A real FINESS (AP-HP), typed with spaces, and a Corsican one.
    assert await _establishment(client, operator_token, "75 071 2184") == "750712184"
    corsica = new_finess("2A")
    assert await _establishment(client, operator_token, corsica) == corsica
    again = await _refused(
        client,
        cmd.RegisterEstablishment(finess="750712184", name="x", category="hospital"),
        operator_token,
    )
    assert again.code == "conflict"
    doctor = new_professional()
    await client.send(doctor.registration(), token=operator_token)
    token = await sign_in_professional(client, doctor)
    forbidden = await _refused(
        client,
        cmd.RegisterEstablishment(finess=new_finess(), name="x", category="hospital"),
        token,
    )
    assert forbidden.code == "forbidden"


async def test_a_care_team_declared_by_the_establishment_names_each_member__ACC_06(
    client: Client, operator_token: str, identity: Runtime, amqp_url: str
) -> None:
    finess = await _establishment(client, operator_token)
    nurse, surgeon, outsider = (
        new_professional("nurse", "Blanc"),
        new_professional("physician", "Noir"),
        new_professional("physician", "Gris"),
    )
    for pro in (nurse, surgeon, outsider):
        await client.send(pro.registration(), token=operator_token)
    ins = new_nir()
    await client.send(
        cmd.RegisterHolder(
            nir=ins,
            first_name="Jean",
            last_name="Dupont",
            birth_date=identity.now().date() - timedelta(days=40 * 365),
        ),
        token=operator_token,
    )
    async with EventTap(amqp_url, "identity.#") as tap:
        await client.send(
            cmd.AddEstablishmentStaff(finess=finess, rpps=nurse.rpps), token=operator_token
        )
        await tap.wait_for("StaffJoined", finess=finess, rpps=nurse.rpps)
        starts = identity.now()
        team = cmd.DeclareCareTeam(
            finess=finess,
            ins=ins,
            starts_at=starts,
            ends_at=starts + timedelta(days=3),
            members=[nurse.rpps, surgeon.rpps],
        )
        # Only its staff (or the operator) declares for the establishment.
        outsider_token = await sign_in_professional(client, outsider)
        assert (await _refused(client, team, outsider_token)).code == "forbidden"
        staff_token = await sign_in_professional(client, nurse)
        declared = await client.send(team, token=staff_token)
        assert declared.members == [nurse.rpps, surgeon.rpps]
        published = await tap.wait_for("CareTeamDeclared", ins=ins)
        assert published[0]["payload"]["members"] == [nurse.rpps, surgeon.rpps]
        assert "Dupont" not in str(published[0])

        ended = await client.send(
            cmd.EndCareTeam(episode_id=declared.episode_id), token=staff_token
        )
        assert ended.ended_at is not None
        await tap.wait_for("CareTeamEnded", ins=ins)
    twice = await _refused(client, cmd.EndCareTeam(episode_id=declared.episode_id), operator_token)
    assert twice.code == "conflict"
    unknown = await _refused(
        client, team.model_copy(update={"members": [new_professional().rpps]}), operator_token
    )
    assert unknown.code == "invalid_input"
    backwards = await _refused(
        client, team.model_copy(update={"ends_at": starts - timedelta(hours=1)}), operator_token
    )
    assert backwards.code == "invalid_input"


async def test_an_eu_professional_is_registered_with_their_country_and_signs_in_with_it__ACC_16(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    german = new_eu_professional("DE")
    await client.send(german.registration(), token=operator_token)
    token = await sign_in_professional(client, german)
    claims = TokenVerifier(identity.settings.identity_jwks).verify(token, identity.now())
    assert (claims.sub, claims.country, claims.profession) == (german.rpps, "DE", "physician")

    # France is not another member state; a United States doctor is not in the EU.
    for country in ("FR", "US"):
        stranger = new_eu_professional(country)
        refused = await _refused(client, stranger.registration(), operator_token)
        assert refused.code == "invalid_input"
    # The identifier names the country it is registered with.
    mismatch = new_eu_professional("IT").registration().model_copy(update={"country": "ES"})
    assert (await _refused(client, mismatch, operator_token)).code == "invalid_input"


async def test_a_professional_registered_by_adeli_signs_in_like_one_by_rpps(
    client: Client, operator_token: str
) -> None:
    adeli = new_professional("physiotherapist")
    adeli = type(adeli)(
        "759912345",
        adeli.first_name,
        adeli.last_name,
        adeli.profession,
        adeli.card_private,
        adeli.card_public,
    )
    await client.send(adeli.registration(), token=operator_token)
    assert await sign_in_professional(client, adeli)


async def test_only_a_referenced_application_signs_in_and_no_longer_once_dereferenced__ACC_15(
    client: Client, operator_token: str, identity: Runtime, amqp_url: str
) -> None:
    private, public = new_keypair()
    app_id = f"app-{new_nir()[:8]}"
    never = await _refused_sign_in(client, app_id, private)
    assert never.code == "unauthenticated"

    async with EventTap(amqp_url, "identity.#") as tap:
        referenced = await client.send(
            cmd.ReferenceCatalogueService(
                service_id=app_id,
                name="Carnet de vaccination",
                categories=["vaccinations", "vaccinations", "identity"],
                public_key=public,
            ),
            token=operator_token,
        )
        assert referenced.categories == ["vaccinations", "identity"]
        await tap.wait_for("CatalogueServiceReferenced", service_id=app_id)
    session = await client.sign_in_with_card("app", app_id, private)
    claims = TokenVerifier(identity.settings.identity_jwks).verify(session.token, identity.now())
    assert (claims.kind, claims.sub) == ("app", app_id)

    await client.send(cmd.DereferenceCatalogueService(service_id=app_id), token=operator_token)
    gone = await _refused_sign_in(client, app_id, private)
    assert gone.code == "unauthenticated"
    with pytest.raises(ValueError):  # no category outside the closed list: no "insurance" data
        cmd.ReferenceCatalogueService(
            service_id=app_id, name="x", categories=["insurance"], public_key=public
        )


async def _refused_sign_in(client: Client, app_id: str, private: str) -> RpcError:
    with pytest.raises(RpcError) as refused:
        await client.sign_in_with_card("app", app_id, private)
    return refused.value
