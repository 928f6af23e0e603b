"""notifier's rules, without I/O: who is alerted of what, and the words of each alert.

An alert says who, when and what — never any medical content: no document title, type or
content, no message subject or body. An e-mail can be read over a shoulder or by whoever shares
the mailbox; the details are in the space, behind sign-in.

Times are told in the holder's time zone, always with the zone's IANA name, the same way in
mails, SMS and the inbox: `le 5 mars 2025 à 14:05 (Europe/Paris)`. The name rather than "heure
de Paris": one unambiguous word per zone for overseas holders (`America/Guadeloupe`,
`Indian/Reunion`), no table of labels to keep, and an app shows exactly what the mail said.
Europe/Paris until the holder chooses (identity's `SetContactPreferences.time_zone`).

Bursts (NTF_01 without flooding): a care team may open a dossier 200 times in a minute. In a
window of `DIGEST_WINDOW` (10 minutes) from a holder's first access alert, the first
`ALERTS_BEFORE_DIGEST` (3) go out one by one; the others are kept in the inbox like any alert
(every access is there and in access's history) and told together by one digest mail or SMS at
the window's end ("197 autres accès … entre 14:05 et 14:06"). Emergency accesses (NTF_02) are
never folded: each goes out at once. Alerts of other kinds (space opened, messages, …) are not
accesses and go out one by one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.contracts.events import (
    AccessLogged,
    HeldBackNoticeDue,
    HolderCameOfAge,
    MessageSent,
    SpaceOpened,
    SpaceReactivated,
)

PARIS_ZONE: Final = "Europe/Paris"
PARIS: Final = ZoneInfo(PARIS_ZONE)

# Bursts: per holder, in a window of DIGEST_WINDOW from the first access alert, the first
# ALERTS_BEFORE_DIGEST go out one by one, the rest in one digest at the window's end.
ALERTS_BEFORE_DIGEST: Final = 3
DIGEST_WINDOW: Final = timedelta(minutes=10)

# Alert kinds, as stored and as published in `HolderAlerted.kind`.
ACCESS = "access"
SPACE_OPENED = "space_opened"
SPACE_REACTIVATED = "space_reactivated"
CAME_OF_AGE = "came_of_age"
NEW_MESSAGE = "new_message"
DOSSIER_UPDATED = "dossier_updated"
# Not an alert of its own: the mail or SMS that tells the accesses of a burst together.
ACCESS_DIGEST = "access_digest"

_MONTHS: Final = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

# What the actor did, in plain words. Only the verb: never what was read or deposited.
_ACTIONS: Final = {
    "read": "a consulté votre dossier",
    "deposit": "a ajouté un document à votre dossier",
    "message": "vous a écrit par la messagerie sécurisée",
    "read_history": "a consulté l'historique des accès à votre dossier",
    "copy": "a obtenu une copie de votre dossier",
    "mask": "a masqué ou démasqué un document de votre dossier",
    "request_deletion": "a demandé la suppression d'un document de votre dossier",
    "collect_consent": "a recueilli votre consentement pour un autre professionnel",
}
_UNKNOWN_ACTION: Final = "a accédé à votre dossier"

_PROFESSIONS: Final = {
    "physician": "médecin",
    "pharmacist": "pharmacien",
    "nurse": "infirmier",
    "midwife": "sage-femme",
    "dentist": "chirurgien-dentiste",
    "physiotherapist": "masseur-kinésithérapeute",
    "occupational_physician": "médecin du travail",
    "regulating_physician": "médecin régulateur",
    "fire_brigade_physician": "médecin de sapeurs-pompiers",
    "social_worker": "travailleur social",
    "medico_social_worker": "professionnel médico-social",
    "administrative_staff": "personnel administratif",
}

_SUBJECTS: Final = {
    ACCESS: "Mon espace santé : un accès à votre dossier",
    SPACE_OPENED: "Mon espace santé : votre espace est ouvert",
    SPACE_REACTIVATED: "Mon espace santé : votre espace est réactivé",
    CAME_OF_AGE: "Mon espace santé : vous gérez désormais votre espace",
    DOSSIER_UPDATED: "Mon espace santé : votre dossier a été mis à jour",
    NEW_MESSAGE: "Mon espace santé : vous avez un nouveau message",
    ACCESS_DIGEST: "Mon espace santé : d'autres accès à votre dossier",
}

# ACC_05: why a consent was collected for another professional (`ConsentReason`), in plain
# words; the professional's free text stays in access.
_CONSENT_REASONS: Final = {
    "referral": "vous orienter vers ce professionnel",
    "second_opinion": "un second avis",
    "continuity_of_care": "la continuité de vos soins",
    "holder_unable": "vous n'étiez pas en mesure de le donner vous-même",
}
_UNKNOWN_CONSENT_REASON: Final = "non précisé"

# Alert ids derive from the cause: the same cause always names the same alert (and Message-ID).
_ALERT_NAMESPACE: Final = uuid.UUID("8a1f7f39-4a53-4d0e-9a51-2f0d7f6b3c11")


@dataclass(frozen=True)
class AlertText:
    kind: str
    text: str
    # The instant the alert tells of (the access, the opening, …), if it tells of one.
    at: datetime | None = None
    # A non-emergency access: may be folded into its burst's digest.
    foldable: bool = False


def should_alert_access(event: AccessLogged) -> bool:
    """NTF_01: every granted access by someone other than the holder is alerted.

    Product choice: denied attempts are not alerted. Nothing was seen or changed; they are kept
    in the holder's access history (the access service's traces, ACC_03), where the holder can
    read them at any time, without an alarming e-mail for each refused attempt.
    The holder's own accesses are not alerted either: they know.
    A professional's permission to write to the holder (action "message") is not an access to
    the dossier: the message itself raises its alert (MessageSent, NTF_03), once.
    """
    return event.actor_kind != "holder" and event.outcome == "granted" and event.action != "message"


def alert_id_for(cause_event_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_ALERT_NAMESPACE, str(cause_event_id))


def zone_named(name: str | None) -> str:
    """The holder's zone if it is one this machine knows, else Paris: an alert is never lost
    for a zone name (identity checks them; an old or strange one falls back)."""
    if not name:
        return PARIS_ZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return PARIS_ZONE
    return name


def _day(local: datetime) -> str:
    day = "1er" if local.day == 1 else str(local.day)
    return f"le {day} {_MONTHS[local.month - 1]} {local.year}"


def paris_time(at: datetime) -> str:
    """`le 5 mars 2025 à 09:05` in Paris time (summer time included), without the zone's name."""
    local = at.astimezone(PARIS)
    return f"{_day(local)} à {local:%H:%M}"


def local_time(at: datetime, zone: str = PARIS_ZONE) -> str:
    """`le 5 mars 2025 à 09:05 (Europe/Paris)`: in the holder's zone, which is named."""
    zone = zone_named(zone)
    local = at.astimezone(ZoneInfo(zone))
    return f"{_day(local)} à {local:%H:%M} ({zone})"


def local_span(first: datetime, last: datetime, zone: str = PARIS_ZONE) -> str:
    """`le 5 mars 2025 entre 14:05 et 14:06 (Europe/Paris)`, or across days
    `entre le 5 mars 2025 à 23:58 et le 6 mars 2025 à 00:03 (Europe/Paris)`."""
    zone = zone_named(zone)
    start, end = first.astimezone(ZoneInfo(zone)), last.astimezone(ZoneInfo(zone))
    if start.date() == end.date():
        return f"{_day(start)} entre {start:%H:%M} et {end:%H:%M} ({zone})"
    return f"entre {_day(start)} à {start:%H:%M} et {_day(end)} à {end:%H:%M} ({zone})"


def profession_words(profession: str | None) -> str | None:
    if not profession:
        return None
    return _PROFESSIONS.get(profession, profession.replace("_", " "))


def who(name: str, profession: str | None, kind: str) -> str:
    role = profession_words(profession)
    if role is None and kind == "operator":
        role = "Assurance Maladie"
    return f"{name} ({role})" if role else name


def action_words(action: str) -> str:
    return _ACTIONS.get(action, _UNKNOWN_ACTION)


def consent_reason_words(code: str | None) -> str:
    return _CONSENT_REASONS.get(code or "", _UNKNOWN_CONSENT_REASON)


def _what(event: AccessLogged) -> str:
    """What the actor did; for a consent collected by one professional for another (ACC_05),
    for whom or by whom, and why — ids and the reason's code only, never the free text."""
    reason = consent_reason_words(event.consent_reason)
    if event.consent_for:
        return (
            f"a recueilli votre consentement pour le professionnel n° {event.consent_for}"
            f" (motif : {reason})"
        )
    if event.consent_collected_by:
        return (
            f"{action_words(event.action)}, avec votre consentement recueilli pour lui par le"
            f" professionnel n° {event.consent_collected_by} (motif : {reason})"
        )
    return action_words(event.action)


def access_alert(event: AccessLogged, zone: str = PARIS_ZONE) -> AlertText:
    """Who, when, what: built from the trace's actor, time and action only; an emergency
    access says so (NTF_02, ACC_09), and how to object to them; a consent collected by one
    professional for another says who collected it and why (ACC_05)."""
    actor = who(event.actor_name, event.actor_profession, event.actor_kind)
    emergency = "En situation d'urgence, " if event.emergency else ""
    objection = (
        " Vous pouvez aussi vous opposer à l'accès en urgence depuis votre espace."
        if event.emergency
        else ""
    )
    text = (
        f"{emergency}{actor} {_what(event)} {local_time(event.at, zone)}."
        " Le détail de chaque accès figure dans l'historique de votre espace santé ;"
        " si vous ne reconnaissez pas cet accès, vous pouvez bloquer ce professionnel"
        f" depuis votre espace.{objection}"
    )
    return AlertText(ACCESS, text, event.at, foldable=not event.emergency)


def space_opened_alert(event: SpaceOpened, zone: str = PARIS_ZONE) -> AlertText:
    """NTF_02."""
    text = (
        f"Votre espace santé est ouvert depuis {local_time(event.opened_at, zone)}."
        " Vous pouvez vous y connecter pour consulter votre dossier, choisir qui y accède et"
        " échanger avec vos professionnels de santé."
    )
    return AlertText(SPACE_OPENED, text, event.opened_at)


def space_reactivated_alert(event: SpaceReactivated, zone: str = PARIS_ZONE) -> AlertText:
    """RET_01: the holder is told their space was reopened (by them, their representative or
    the operator)."""
    text = (
        f"Votre espace santé a été réactivé {local_time(event.reactivated_at, zone)}."
        " Son contenu est de nouveau accessible selon vos choix."
    )
    return AlertText(SPACE_REACTIVATED, text, event.reactivated_at)


def came_of_age_alert(event: HolderCameOfAge) -> AlertText:
    """SPC_04: at eighteen the person takes over the space from their legal representative."""
    text = (
        "Vous avez 18 ans : vous gérez désormais vous-même votre espace santé, et votre"
        " représentant légal n'y a plus accès. Vous pouvez vous connecter avec un code à usage"
        " unique, choisir qui accède à votre dossier, ou demander la fermeture de l'espace ouvert"
        " pendant votre minorité."
    )
    return AlertText(CAME_OF_AGE, text)


def sms_text(kind: str, at: datetime | None = None, zone: str = PARIS_ZONE) -> str:
    """An SMS says what kind of alert waits in the space and when, never who or what (a phone's
    lock screen shows it): the detail is read in the space."""
    when = "" if at is None else f", {local_time(at, zone)}"
    return f"{mail_subject(kind)}{when}. Le détail est dans votre espace santé."


def held_back_notice_alert(event: HeldBackNoticeDue) -> AlertText:
    """DOC_07 / NTF_03: two weeks after a document was held back for its announcement: the
    holder learns that the dossier was updated and is invited to see a professional; nothing
    about the document (neither its type nor its author)."""
    text = (
        "Votre dossier médical a été mis à jour. Nous vous invitons à prendre contact avec un"
        " professionnel de santé (votre médecin traitant, par exemple) pour en parler avec lui."
    )
    return AlertText(DOSSIER_UPDATED, text)


def message_alert(event: MessageSent, zone: str = PARIS_ZONE) -> AlertText:
    """NTF_03. Neither the body nor the subject: a subject can say as much as a diagnosis."""
    if event.sender_kind == "operator":
        sender = "L'Assurance Maladie"
    else:
        sender = event.sender_name or "un professionnel de santé"
    text = (
        f"Vous avez reçu un nouveau message sécurisé de {sender}"
        f" {local_time(event.sent_at, zone)}. Lisez-le dans la messagerie de"
        " votre espace santé."
    )
    return AlertText(NEW_MESSAGE, text, event.sent_at)


# --- bursts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    """A holder's current window of access alerts: when it began (None: none yet) and how many
    of its alerts went out one by one."""

    started_at: datetime | None = None
    sent: int = 0

    def due_at(self, window: timedelta = DIGEST_WINDOW) -> datetime:
        """When the window ends and its digest goes."""
        assert self.started_at is not None
        return self.started_at + window


@dataclass(frozen=True)
class Routing:
    burst: Burst  # the holder's window after this alert
    folded: bool  # told by the window's digest rather than on its own


def route(
    burst: Burst,
    now: datetime,
    *,
    foldable: bool,
    alone: int = ALERTS_BEFORE_DIGEST,
    window: timedelta = DIGEST_WINDOW,
) -> Routing:
    """NTF_01 without flooding: an alert going out (mail, SMS) is sent on its own while its
    window has sent fewer than `alone`; past that it is folded into the window's digest.
    An alert that cannot be folded (an emergency access, NTF_02; not an access) always goes at
    once and is not counted. A window opens with the first access alert after the last ended."""
    if not foldable:
        return Routing(burst, folded=False)
    if burst.started_at is None or now >= burst.due_at(window):
        return Routing(Burst(now, 1), folded=False)
    if burst.sent < alone:
        return Routing(Burst(burst.started_at, burst.sent + 1), folded=False)
    return Routing(burst, folded=True)


def digest_id_for(first_folded_alert_id: uuid.UUID) -> uuid.UUID:
    """A burst's digest is named by its first folded alert: a redone transaction names it
    the same, and it is the digest mail's Message-ID and SMS idempotency key."""
    return uuid.uuid5(_ALERT_NAMESPACE, f"digest:{first_folded_alert_id}")


def _accesses(count: int) -> str:
    return "1 autre accès" if count == 1 else f"{count} autres accès"


def digest_alert(count: int, first: datetime, last: datetime, zone: str = PARIS_ZONE) -> AlertText:
    """The accesses of a burst past the first few, told together: how many and when, nothing
    of who or what (each is in the inbox and the history, behind sign-in)."""
    text = (
        f"{_accesses(count)} à votre dossier {local_span(first, last, zone)}, en plus de ceux"
        " qui vous ont été signalés un par un. Pour ne pas vous envoyer un message par accès,"
        " nous les regroupons ici : chacun (qui, quand, quoi) figure dans les alertes et"
        " l'historique des accès de votre espace santé ; si vous n'en reconnaissez pas un, vous"
        " pouvez bloquer ce professionnel depuis votre espace."
    )
    return AlertText(ACCESS_DIGEST, text, last)


def digest_sms_text(count: int, first: datetime, last: datetime, zone: str = PARIS_ZONE) -> str:
    return (
        f"Mon espace santé : {_accesses(count)} à votre dossier {local_span(first, last, zone)}."
        " Le détail est dans votre espace santé."
    )


def mail_subject(kind: str) -> str:
    return _SUBJECTS.get(kind, "Mon espace santé : une nouvelle alerte")


def mail_body(text: str, display_name: str | None) -> str:
    # For a minor, the mail goes to the legal representative: name whose space it is about.
    about = f" (espace santé de {display_name})" if display_name else ""
    return (
        f"Bonjour,\n\n{text}\n\n"
        f"Cette alerte est aussi conservée dans votre espace santé{about}.\n"
        "Ceci est un message automatique : merci de ne pas y répondre.\n"
    )


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> timedelta:
    """Backoff after `attempts` failed sends: base, 2×base, 4×base, … up to max."""
    exponent = max(attempts - 1, 0)
    return timedelta(seconds=min(base_seconds * 2 ** min(exponent, 30), max_seconds))
