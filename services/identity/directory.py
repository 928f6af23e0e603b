"""identity's use cases for the directory: establishments by FINESS and their staff, care-team
episodes (ACC_06), catalogue services (ACC_15).

Published for access, which decides: `StaffJoined` / `StaffLeft` (who works where, so that a
block of an establishment reaches its staff, ACC_08), `CareTeamDeclared` / `CareTeamEnded` (who
takes care of the holder, while the episode lasts, ACC_06), `CatalogueServiceReferenced` /
`...Dereferenced` (which applications exist, and what their referencing allows, ACC_15). Names
of establishments and applications stay here; events carry identifiers and dates.
"""

from __future__ import annotations

import uuid
from typing import Any

from libs.contracts import commands as cmd
from libs.contracts.events import (
    CareTeamDeclared,
    CareTeamEnded,
    CatalogueServiceDereferenced,
    CatalogueServiceReferenced,
    StaffJoined,
    StaffLeft,
)
from libs.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.runtime import CommandContext
from libs.tokens import public_key
from services.identity import domain, repository
from services.identity.service import actor_label
from services.identity.settings import IdentitySettings


def _key(finess: str) -> str:
    """What orders an establishment's events (they name no holder)."""
    return f"finess:{finess}"


def _operator(ctx: CommandContext[IdentitySettings]) -> None:
    if ctx.require_actor().kind != "operator":
        raise Forbidden("only the operator keeps the directory")


async def register_establishment(
    ctx: CommandContext[IdentitySettings], c: cmd.RegisterEstablishment
) -> cmd.Establishment:
    _operator(ctx)
    finess = domain.validate_finess(c.finess)
    async with ctx.unit_of_work() as uow:
        if not await repository.insert_establishment(
            uow.conn, finess, c.name, c.category, ctx.runtime.now()
        ):
            raise Conflict(f"establishment {finess} is already registered")
        return uow.answer(cmd.Establishment(finess=finess, name=c.name, category=c.category))


async def _establishment(conn: Any, finess: str) -> Any:
    found = await repository.get_establishment(conn, finess)
    if found is None:
        raise NotFound(f"no establishment {finess}")
    return found


async def add_staff(
    ctx: CommandContext[IdentitySettings], c: cmd.AddEstablishmentStaff
) -> cmd.StaffMembership:
    _operator(ctx)
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        await _establishment(uow.conn, c.finess)
        if await repository.get_professional(uow.conn, c.rpps) is None:
            raise NotFound(f"no professional {c.rpps}")
        if await repository.add_staff(uow.conn, c.finess, c.rpps, now):
            await uow.emit(
                StaffJoined(finess=c.finess, rpps=c.rpps, at=now), holder_key=_key(c.finess)
            )
        return uow.answer(cmd.StaffMembership(finess=c.finess, rpps=c.rpps, member=True))


async def remove_staff(
    ctx: CommandContext[IdentitySettings], c: cmd.RemoveEstablishmentStaff
) -> cmd.StaffMembership:
    _operator(ctx)
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        if not await repository.remove_staff(uow.conn, c.finess, c.rpps):
            raise NotFound(f"{c.rpps} is not on the staff of {c.finess}")
        await uow.emit(StaffLeft(finess=c.finess, rpps=c.rpps, at=now), holder_key=_key(c.finess))
        return uow.answer(cmd.StaffMembership(finess=c.finess, rpps=c.rpps, member=False))


def _care_team(row: Any) -> cmd.CareTeam:
    return cmd.CareTeam.model_validate({name: row[name] for name in cmd.CareTeam.model_fields})


async def declare_care_team(
    ctx: CommandContext[IdentitySettings], c: cmd.DeclareCareTeam
) -> cmd.CareTeam:
    """ACC_06: declared by the establishment — a professional on its staff — or the operator;
    each member is a registered professional, who signs in with their own card."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    domain.check_care_team(c.starts_at, c.ends_at, now)
    members = list(dict.fromkeys(c.members))
    async with ctx.unit_of_work() as uow:
        conn = uow.conn
        await _establishment(conn, c.finess)
        if actor.kind != "operator" and not (
            actor.kind == "professional" and await repository.is_staff(conn, c.finess, actor.sub)
        ):
            raise Forbidden(
                "only the establishment's staff or the operator declares its care teams"
            )
        person = await repository.get_person(conn, c.ins)
        if person is None or await repository.get_space(conn, c.ins) is None:
            raise NotFound(f"no space for INS {c.ins}")
        if person["died_on"] is not None:
            raise Conflict("the holder has died")
        unknown = await repository.unknown_professionals(conn, members)
        if unknown:
            raise InvalidInput(f"unknown professionals: {', '.join(unknown)}")
        row = await repository.insert_care_team(
            conn,
            episode_id=uuid.uuid4(),
            ins=c.ins,
            finess=c.finess,
            members=members,
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            declared_by=actor_label(actor),
        )
        await uow.emit(
            CareTeamDeclared(
                episode_id=row["episode_id"],
                ins=c.ins,
                finess=c.finess,
                members=members,
                starts_at=c.starts_at,
                ends_at=c.ends_at,
            )
        )
        return uow.answer(_care_team(row))


async def end_care_team(ctx: CommandContext[IdentitySettings], c: cmd.EndCareTeam) -> cmd.CareTeam:
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        row = await repository.lock_care_team(uow.conn, c.episode_id)
        if row is None:
            raise NotFound(f"no care team {c.episode_id}")
        if actor.kind != "operator" and not (
            actor.kind == "professional"
            and await repository.is_staff(uow.conn, row["finess"], actor.sub)
        ):
            raise Forbidden("only the establishment's staff or the operator ends its care teams")
        if row["ended_at"] is not None:
            raise Conflict("this care team has already ended")
        ended = await repository.end_care_team(uow.conn, c.episode_id, now)
        await uow.emit(CareTeamEnded(episode_id=c.episode_id, ins=row["ins"], ended_at=now))
        return uow.answer(_care_team(ended))


def _service(row: Any) -> cmd.CatalogueService:
    return cmd.CatalogueService(
        service_id=row["service_id"],
        name=row["name"],
        categories=row["categories"],
        referenced=row["dereferenced_at"] is None,
    )


async def reference_catalogue_service(
    ctx: CommandContext[IdentitySettings], c: cmd.ReferenceCatalogueService
) -> cmd.CatalogueService:
    """ACC_15: referenced, with what its referencing allows; an application never referenced
    cannot sign in, so access never sees it."""
    _operator(ctx)
    try:
        public_key(c.public_key)
    except ValueError:
        raise InvalidInput("public_key is not an Ed25519 public key") from None
    now = ctx.runtime.now()
    categories = [str(category) for category in dict.fromkeys(c.categories)]
    async with ctx.unit_of_work() as uow:
        row = await repository.upsert_catalogue_service(
            uow.conn, c.service_id, c.name, categories, c.public_key, now
        )
        await uow.emit(
            CatalogueServiceReferenced(service_id=c.service_id, categories=categories, at=now),
            holder_key=f"app:{c.service_id}",
        )
        return uow.answer(_service(row))


async def dereference_catalogue_service(
    ctx: CommandContext[IdentitySettings], c: cmd.DereferenceCatalogueService
) -> cmd.CatalogueService:
    _operator(ctx)
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        row = await repository.dereference_catalogue_service(uow.conn, c.service_id, now)
        if row is None:
            raise NotFound(f"no referenced service {c.service_id}")
        await uow.emit(
            CatalogueServiceDereferenced(service_id=c.service_id, at=now),
            holder_key=f"app:{c.service_id}",
        )
        return uow.answer(_service(row))
