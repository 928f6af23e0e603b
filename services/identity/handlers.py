"""identity's edges: its commands, the contact lookup for the notifier, the events it hears."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from libs import purge
from libs.contracts import commands as cmd
from libs.contracts.envelope import Contract
from libs.contracts.events import ProxyEndDue, SpaceOpeningDue
from libs.runtime import CommandContext, Runtime
from services.identity import contacts, directory, proxies, service
from services.identity import purge as holder_purge
from services.identity.background import CodeSender, janitor
from services.identity.messages import Sender
from services.identity.settings import IdentitySettings

LIFECYCLE_QUEUE = "identity.space-lifecycle"

C = TypeVar("C", bound=Contract)
R = TypeVar("R", bound=Contract)


def register(runtime: Runtime[IdentitySettings]) -> None:
    # RET_01 / RET_02: its part of a holder's purge.
    purge.register(runtime, holder_purge.PURGE)
    settings = runtime.settings
    sender = CodeSender(settings)
    cleaner = janitor(runtime, service.sign_in_policy(settings), settings.prune_interval_seconds)
    runtime.add_background(sender.start, sender.stop)
    runtime.add_background(cleaner.start, cleaner.stop)

    def sending(
        use_case: Callable[[CommandContext[IdentitySettings], C, Sender], Awaitable[R]],
    ) -> Callable[[CommandContext[IdentitySettings], C], Awaitable[R]]:
        """The use case, given the sender its messages leave by after commit."""
        return functools.partial(_with_sender, use_case, sender)

    # Spaces (SPC_01, SPC_03, RET_01)
    runtime.handle(cmd.RegisterHolder, sending(service.register_holder))
    runtime.handle(cmd.ObjectToSpace, service.object_to_space)
    runtime.handle(cmd.ActivateSpace, service.activate_space)
    runtime.handle(cmd.IssueActivationCode, sending(service.issue_activation_code))
    runtime.handle(cmd.CloseSpace, service.close_space)
    runtime.handle(cmd.RequestSpaceDeletion, service.request_space_deletion)
    runtime.handle(cmd.ReactivateSpace, service.reactivate_space)
    # Sign-in (SPC_03)
    runtime.handle(cmd.RequestChallenge, service.request_challenge)
    runtime.handle(cmd.SignInWithCard, service.sign_in_with_card)
    runtime.handle(cmd.RequestHolderCode, sending(service.request_holder_code))
    runtime.handle(cmd.SignInHolder, service.sign_in_holder)
    runtime.handle(cmd.RemindIdentifier, sending(service.remind_identifier))
    runtime.handle(cmd.GetSigningKeys, service.get_signing_keys)
    # Who acts for whom (SPC_04, SPC_05, ACC_13)
    runtime.handle(cmd.AppointRepresentative, sending(proxies.appoint_representative))
    runtime.handle(cmd.EndRepresentation, proxies.end_representation)
    runtime.handle(cmd.ListProxies, proxies.list_proxies)
    runtime.handle(cmd.RequestProxyCode, sending(proxies.request_proxy_code))
    runtime.handle(cmd.SignInProxy, proxies.sign_in_proxy)
    runtime.handle(cmd.RecordDeath, proxies.record_death)
    runtime.handle(cmd.FileAccessRequest, proxies.file_access_request)
    runtime.handle(cmd.ListAccessRequests, proxies.list_access_requests)
    runtime.handle(cmd.DecideAccessRequest, sending(proxies.decide_access_request))
    # Contacts and choices (SPC_06, SPC_07)
    runtime.handle(cmd.SetContactPreferences, contacts.set_contact_preferences)
    runtime.handle(cmd.SetPersonalContacts, contacts.set_personal_contacts)
    runtime.handle(cmd.GetPersonalContacts, contacts.get_personal_contacts)
    runtime.handle(cmd.DeclareTreatingPhysician, contacts.declare_treating_physician)
    runtime.handle(cmd.AcceptTreatingPhysician, contacts.accept_treating_physician)
    # The directory (ACC_06, ACC_15, ACC_16)
    runtime.handle(cmd.RegisterProfessional, service.register_professional)
    runtime.handle(cmd.RegisterEstablishment, directory.register_establishment)
    runtime.handle(cmd.AddEstablishmentStaff, directory.add_staff)
    runtime.handle(cmd.RemoveEstablishmentStaff, directory.remove_staff)
    runtime.handle(cmd.DeclareCareTeam, directory.declare_care_team)
    runtime.handle(cmd.EndCareTeam, directory.end_care_team)
    runtime.handle(cmd.ReferenceCatalogueService, directory.reference_catalogue_service)
    runtime.handle(cmd.DereferenceCatalogueService, directory.dereference_catalogue_service)
    # Asked by services only (the notifier), never by a person: no token, the caller is checked.
    runtime.handle(cmd.GetAlertContact, service.get_alert_contact)
    runtime.handle(cmd.GetAlertContacts, service.get_alert_contacts)
    runtime.on_events(
        LIFECYCLE_QUEUE,
        {
            SpaceOpeningDue: service.open_space_when_due,
            ProxyEndDue: proxies.on_proxy_end_due,
        },
    )


async def _with_sender(
    use_case: Callable[[CommandContext[IdentitySettings], C, Sender], Awaitable[R]],
    sender: Sender,
    ctx: CommandContext[IdentitySettings],
    command: C,
) -> R:
    return await use_case(ctx, command, sender)
