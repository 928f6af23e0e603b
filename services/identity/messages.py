"""What identity sends to people (codes, identifiers, appointments), and how it leaves.

Texts are French, as the people who get them read them. Only what the person needs: never a
health detail, never another person's data beyond the name of the holder one acts for.

A message leaves after the transaction that decided it commits, off the request path (the
`Sender`): a message lost to a crash is not retried — every one of them can be asked again (a
sign-in code, `RemindIdentifier`, `IssueActivationCode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

Channel = Literal["email", "sms"]

CODE_SUBJECT = "Mon espace santé : votre code de connexion"
ACTIVATION_SUBJECT = "Mon espace santé : votre code d'activation"
IDENTIFIER_SUBJECT = "Mon espace santé : votre identifiant"
APPOINTMENT_SUBJECT = "Mon espace santé : vous pouvez agir pour un proche"


@dataclass(frozen=True)
class Outgoing:
    channel: Channel
    to: str
    subject: str
    body: str


class Sender(Protocol):
    def submit(self, channel: Channel, to: str, subject: str, body: str) -> None: ...


def send(sender: Sender, outgoing: list[Outgoing]) -> None:
    for message in outgoing:
        sender.submit(message.channel, message.to, message.subject, message.body)


def sign_in_code(channel: Channel, to: str, code: str) -> Outgoing:
    return Outgoing(
        channel,
        to,
        CODE_SUBJECT,
        f"Votre code de connexion à usage unique : {code}\n"
        "Il expire dans 10 minutes. Un nouveau code remplace le précédent.",
    )


def activation_code(
    channel: Channel, to: str, code: str, expires_at: datetime, *, for_someone_else: bool
) -> Outgoing:
    whose = "de la personne que vous représentez" if for_someone_else else "votre espace"
    return Outgoing(
        channel,
        to,
        ACTIVATION_SUBJECT,
        f"Code d'activation {whose} : {code}\n"
        f"Il sert une seule fois, jusqu'au {expires_at:%d/%m/%Y} (UTC).\n"
        "Vous pouvez aussi vous opposer à la création de l'espace dans les six semaines.",
    )


def identifiers(to: str, lines: list[str]) -> Outgoing:
    return Outgoing(
        "email",
        to,
        IDENTIFIER_SUBJECT,
        "Vous avez demandé le rappel de votre identifiant.\n" + "\n".join(lines),
    )


ROLE_LABELS = {
    "legal_representative": "représentant légal",
    "protection_representative": "personne chargée de la mesure de protection",
    "heir": "ayant droit",
    "unmarried_partner": "concubin",
    "civil_union_partner": "partenaire de PACS",
    "court_expert": "expert judiciaire",
}


def appointed(proxy: Any, holder: Any) -> list[Outgoing]:
    """A proxy is told their identifier at the contact the operator verified."""
    if proxy["email"]:
        channel: Channel = "email"
        to = proxy["email"]
    elif proxy["phone"]:
        channel, to = "sms", proxy["phone"]
    else:
        return []
    name = f"{holder['first_name']} {holder['last_name']}"
    return [appointment(channel, to, str(proxy["proxy_id"]), name, ROLE_LABELS[proxy["role"]])]


def appointment(channel: Channel, to: str, proxy_id: str, holder_name: str, role: str) -> Outgoing:
    return Outgoing(
        channel,
        to,
        APPOINTMENT_SUBJECT,
        f"Vous pouvez désormais agir pour {holder_name} dans Mon espace santé ({role}).\n"
        f"Votre identifiant : {proxy_id}\n"
        "Connectez-vous avec un code à usage unique envoyé à cette adresse.",
    )
