"""notifier's rules, without I/O: who is alerted of what, and the words of each alert.

An alert says who, when and what — never any medical content: no document title, type or
content, no message subject or body. An e-mail can be read over a shoulder or by whoever shares
the mailbox; the details are in the space, behind sign-in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from libs.contracts.events import (
    AccessLogged,
    HeldBackNoticeDue,
    HolderCameOfAge,
    MessageSent,
    SpaceOpened,
    SpaceReactivated,
)

PARIS: Final = ZoneInfo("Europe/Paris")

# Alert kinds, as stored and as published in `HolderAlerted.kind`.
ACCESS = "access"
SPACE_OPENED = "space_opened"
SPACE_REACTIVATED = "space_reactivated"
CAME_OF_AGE = "came_of_age"
NEW_MESSAGE = "new_message"
DOSSIER_UPDATED = "dossier_updated"

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
}

# Alert ids derive from the cause: the same cause always names the same alert (and Message-ID).
_ALERT_NAMESPACE: Final = uuid.UUID("8a1f7f39-4a53-4d0e-9a51-2f0d7f6b3c11")


@dataclass(frozen=True)
class AlertText:
    kind: str
    text: str


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


def paris_time(at: datetime) -> str:
    """`le 5 mars 2025 à 09:05` in Paris time (summer time included)."""
    local = at.astimezone(PARIS)
    day = "1er" if local.day == 1 else str(local.day)
    return f"le {day} {_MONTHS[local.month - 1]} {local.year} à {local:%H:%M}"


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


def access_alert(event: AccessLogged) -> AlertText:
    """Who, when, what: built from the trace's actor, time and action only; an emergency
    access says so (NTF_02, ACC_09), and how to object to them."""
    actor = who(event.actor_name, event.actor_profession, event.actor_kind)
    emergency = "En situation d'urgence, " if event.emergency else ""
    objection = (
        " Vous pouvez aussi vous opposer à l'accès en urgence depuis votre espace."
        if event.emergency
        else ""
    )
    text = (
        f"{emergency}{actor} {action_words(event.action)} {paris_time(event.at)}"
        " (heure de Paris)."
        " Le détail de chaque accès figure dans l'historique de votre espace santé ;"
        " si vous ne reconnaissez pas cet accès, vous pouvez bloquer ce professionnel"
        f" depuis votre espace.{objection}"
    )
    return AlertText(ACCESS, text)


def space_opened_alert(event: SpaceOpened) -> AlertText:
    """NTF_02."""
    text = (
        f"Votre espace santé est ouvert depuis {paris_time(event.opened_at)} (heure de Paris)."
        " Vous pouvez vous y connecter pour consulter votre dossier, choisir qui y accède et"
        " échanger avec vos professionnels de santé."
    )
    return AlertText(SPACE_OPENED, text)


def space_reactivated_alert(event: SpaceReactivated) -> AlertText:
    """RET_01: the holder is told their space was reopened (by them, their representative or
    the operator)."""
    text = (
        f"Votre espace santé a été réactivé {paris_time(event.reactivated_at)} (heure de Paris)."
        " Son contenu est de nouveau accessible selon vos choix."
    )
    return AlertText(SPACE_REACTIVATED, text)


def came_of_age_alert(event: HolderCameOfAge) -> AlertText:
    """SPC_04: at eighteen the person takes over the space from their legal representative."""
    text = (
        "Vous avez 18 ans : vous gérez désormais vous-même votre espace santé, et votre"
        " représentant légal n'y a plus accès. Vous pouvez vous connecter avec un code à usage"
        " unique, choisir qui accède à votre dossier, ou demander la fermeture de l'espace ouvert"
        " pendant votre minorité."
    )
    return AlertText(CAME_OF_AGE, text)


def sms_text(kind: str) -> str:
    """An SMS says what kind of alert waits in the space, never who or what (a phone's lock
    screen shows it): the detail is read in the space."""
    return f"{mail_subject(kind)}. Le détail est dans votre espace santé."


def held_back_notice_alert(event: HeldBackNoticeDue) -> AlertText:
    """DOC_07 / NTF_03: two weeks after a document was held back for its announcement: the
    holder learns that the dossier was updated and is invited to see a professional; nothing
    about the document (neither its type nor its author)."""
    text = (
        "Votre dossier médical a été mis à jour. Nous vous invitons à prendre contact avec un"
        " professionnel de santé (votre médecin traitant, par exemple) pour en parler avec lui."
    )
    return AlertText(DOSSIER_UPDATED, text)


def message_alert(event: MessageSent) -> AlertText:
    """NTF_03. Neither the body nor the subject: a subject can say as much as a diagnosis."""
    if event.sender_kind == "operator":
        sender = "L'Assurance Maladie"
    else:
        sender = event.sender_name or "un professionnel de santé"
    text = (
        f"Vous avez reçu un nouveau message sécurisé de {sender}"
        f" {paris_time(event.sent_at)} (heure de Paris). Lisez-le dans la messagerie de"
        " votre espace santé."
    )
    return AlertText(NEW_MESSAGE, text)


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
