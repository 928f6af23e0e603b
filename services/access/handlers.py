"""access's edges: `access.decide`, the holder's commands, and identity's lifecycle events."""

from __future__ import annotations

from datetime import timedelta

from libs import purge, spaces
from libs.contracts import commands as cmd
from libs.contracts.events import (
    AuthorizationEndDue,
    CareTeamDeclared,
    CareTeamEnded,
    CatalogueServiceDereferenced,
    CatalogueServiceReferenced,
    HolderDeceased,
    ProxyAppointed,
    ProxyEnded,
    StaffJoined,
    StaffLeft,
    TreatingPhysicianChanged,
    TreatingPhysicianDeclared,
)
from libs.runtime import Runtime
from services.access import purge as holder_purge
from services.access import service
from services.access.settings import AccessSettings

LIFECYCLE_QUEUE = "access.space-lifecycle"
PEOPLE_QUEUE = "access.people"


def register(runtime: Runtime[AccessSettings]) -> None:
    # RET_01 / RET_02: its part of a holder's purge.
    purge.register(runtime, holder_purge.PURGE)
    # On a queue of its own, so that decisions never wait behind the holder's commands.
    runtime.handle(
        cmd.Decide,
        service.decide,
        # Long enough for any retry of the command that asks; never long enough for an old
        # grant to outrun a revocation.
        replay_window=timedelta(minutes=5),
        # Decided, traced and answered in one unit of work, whose claim finds a retry.
        replay_first=False,
    )
    runtime.handle(cmd.AuthorizeProfessional, service.authorize_professional)
    runtime.handle(cmd.RevokeAuthorization, service.revoke_authorization)
    runtime.handle(cmd.BlockProfessional, service.block_professional)
    runtime.handle(cmd.UnblockProfessional, service.unblock_professional)
    runtime.handle(cmd.CollectConsent, service.collect_consent)
    runtime.handle(cmd.AuthorizeEstablishment, service.authorize_establishment)
    runtime.handle(cmd.RevokeEstablishmentAuthorization, service.revoke_establishment_authorization)
    runtime.handle(cmd.BlockEstablishment, service.block_establishment)
    runtime.handle(cmd.UnblockEstablishment, service.unblock_establishment)
    runtime.handle(cmd.SetAppAccess, service.set_app_access)
    runtime.handle(cmd.SetEmergencyObjection, service.set_emergency_objection)
    runtime.handle(cmd.DelegateToTreatingPhysician, service.delegate_to_treating_physician)
    runtime.handle(cmd.ListPermissions, service.list_permissions)
    runtime.handle(cmd.ListAccessHistory, service.list_access_history)
    runtime.on_events(
        LIFECYCLE_QUEUE,
        {**spaces.HANDLERS, AuthorizationEndDue: service.on_authorization_end_due},
    )
    # Who may act for whom, who the treating physician is, who works where and in which care
    # team, which applications the catalogue references: identity's facts, access's
    # projection of them (the decision stays here).
    runtime.on_events(
        PEOPLE_QUEUE,
        {
            ProxyAppointed: service.on_proxy_appointed,
            ProxyEnded: service.on_proxy_ended,
            HolderDeceased: service.on_holder_deceased,
            TreatingPhysicianDeclared: service.on_treating_physician,
            TreatingPhysicianChanged: service.on_treating_physician,
            StaffJoined: service.on_staff_joined,
            StaffLeft: service.on_staff_left,
            CareTeamDeclared: service.on_care_team_declared,
            CareTeamEnded: service.on_care_team_ended,
            CatalogueServiceReferenced: service.on_catalogue_referenced,
            CatalogueServiceDereferenced: service.on_catalogue_dereferenced,
        },
    )
