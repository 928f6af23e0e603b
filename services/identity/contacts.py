"""identity's use cases for the holder's contacts and choices.

- SPC_06 / NTF_04: the holder's e-mail and phone, the channel codes go by, the channels alerts go
  by (none: alerts are kept in the space), and the time zone alerts tell times in (an IANA name;
  Europe/Paris until chosen). `ContactChanged` tells the notifier which channels exist and the
  zone, never the addresses.
- SPC_07: the trusted person and the people to contact in an emergency (kept here, never on the
  bus); the treating physician, declared by the holder and accepted by the physician, or declared
  by the physician (in effect at once): `TreatingPhysicianDeclared` / `TreatingPhysicianChanged`
  tell access (ACC_04).
"""

from __future__ import annotations

from typing import Any

from libs.contracts import commands as cmd
from libs.contracts.events import TreatingPhysicianChanged, TreatingPhysicianDeclared
from libs.db import Conn
from libs.errors import Conflict, Forbidden, NotFound
from libs.runtime import CommandContext
from libs.uow import UnitOfWork
from services.identity import domain, repository
from services.identity.service import actor_label, contact_changed, require_acting_for
from services.identity.settings import IdentitySettings


async def _living_person(conn: Conn, ins: str) -> Any:
    person = await repository.get_person(conn, ins)
    if person is None:
        raise NotFound(f"no person with INS {ins}")
    if person["died_on"] is not None:
        raise Conflict("the holder has died")
    return person


async def set_contact_preferences(
    ctx: CommandContext[IdentitySettings], c: cmd.SetContactPreferences
) -> cmd.ContactPreferences:
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    channels = list(dict.fromkeys(c.alert_channels))  # each once, in the order given
    async with ctx.unit_of_work() as uow:
        await require_acting_for(uow.conn, actor, c.ins, now, operator=True)
        await _living_person(uow.conn, c.ins)
        time_zone = await repository.set_contact_preferences(
            uow.conn, c.ins, c.email, c.phone, c.code_channel, channels, c.time_zone
        )
        await uow.emit(await contact_changed(uow.conn, c.ins, now))
        return uow.answer(
            cmd.ContactPreferences(
                ins=c.ins,
                email=c.email,
                phone=c.phone,
                code_channel=c.code_channel,
                alert_channels=channels,
                time_zone=time_zone,
            )
        )


async def _contacts(conn: Conn, ins: str) -> cmd.PersonalContacts:
    rows = await repository.personal_contacts(conn, ins)
    people = {
        r["position"]: cmd.PersonContact(
            first_name=r["first_name"],
            last_name=r["last_name"],
            relation=r["relation"],
            phone=r["phone"],
            email=r["email"],
        )
        for r in rows
    }
    physicians = await repository.treating_physicians(conn, ins)
    return cmd.PersonalContacts(
        ins=ins,
        trusted_person=people.pop(0, None),
        emergency_contacts=[people[p] for p in sorted(people)],
        treating_physician=physicians.get("current"),
        pending_treating_physician=physicians.get("pending"),
    )


async def set_personal_contacts(
    ctx: CommandContext[IdentitySettings], c: cmd.SetPersonalContacts
) -> cmd.PersonalContacts:
    """SPC_07: the trusted person (position 0) and the emergency contacts, replaced as a whole."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        await require_acting_for(uow.conn, actor, c.ins, now)
        await _living_person(uow.conn, c.ins)
        entries = [(i + 1, e.model_dump()) for i, e in enumerate(c.emergency_contacts)]
        if c.trusted_person is not None:
            entries.insert(0, (0, c.trusted_person.model_dump()))
        await repository.replace_personal_contacts(uow.conn, c.ins, entries)
        return uow.answer(await _contacts(uow.conn, c.ins))


async def get_personal_contacts(
    ctx: CommandContext[IdentitySettings], c: cmd.GetPersonalContacts
) -> cmd.PersonalContacts:
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn:
        await require_acting_for(conn, actor, c.ins, now, operator=True)
        await _living_person(conn, c.ins)
        return await _contacts(conn, c.ins)


async def declare_treating_physician(
    ctx: CommandContext[IdentitySettings], c: cmd.DeclareTreatingPhysician
) -> cmd.TreatingPhysician:
    """SPC_07: by the holder (or representative), pending until the physician accepts; by the
    physician themselves, in effect at once."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        conn = uow.conn
        physician_declares = actor.kind == "professional" and actor.sub == c.rpps
        if not physician_declares:
            await require_acting_for(conn, actor, c.ins, now)
        await _living_person(conn, c.ins)
        pro = await repository.get_professional(conn, c.rpps)
        if pro is None:
            raise NotFound(f"no professional {c.rpps}")
        current = (await repository.treating_physicians(conn, c.ins)).get("current")
        domain.check_treating_physician(pro["profession"], current, c.rpps)
        if not physician_declares:
            await repository.set_pending_treating_physician(
                conn, c.ins, c.rpps, actor_label(actor), now
            )
            return uow.answer(cmd.TreatingPhysician(ins=c.ins, rpps=c.rpps, status="pending"))
        await _take_office(uow, c.ins, c.rpps, current, actor_label(actor), now, now)
        return uow.answer(cmd.TreatingPhysician(ins=c.ins, rpps=c.rpps, status="current"))


async def accept_treating_physician(
    ctx: CommandContext[IdentitySettings], c: cmd.AcceptTreatingPhysician
) -> cmd.TreatingPhysician:
    """The physician the holder named accepts: they are the treating physician from now."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    if actor.kind != "professional":
        raise Forbidden("only the physician the holder named accepts")
    async with ctx.unit_of_work() as uow:
        await _living_person(uow.conn, c.ins)
        pending = await repository.pending_treating_physician(uow.conn, c.ins)
        if pending is None or pending["rpps"] != actor.sub:
            raise NotFound("the holder has not named you as their treating physician")
        current = (await repository.treating_physicians(uow.conn, c.ins)).get("current")
        await _take_office(
            uow, c.ins, actor.sub, current, pending["declared_by"], pending["declared_at"], now
        )
        return uow.answer(cmd.TreatingPhysician(ins=c.ins, rpps=actor.sub, status="current"))


async def _take_office(
    uow: UnitOfWork,
    ins: str,
    rpps: str,
    current: str | None,
    declared_by: str,
    declared_at: Any,
    now: Any,
) -> None:
    await repository.make_treating_physician(uow.conn, ins, rpps, declared_by, declared_at, now)
    if current is None:
        await uow.emit(TreatingPhysicianDeclared(ins=ins, rpps=rpps, since=now))
    else:
        await uow.emit(
            TreatingPhysicianChanged(ins=ins, rpps=rpps, previous_rpps=current, since=now)
        )
