"""Messaging rules, without I/O: who takes part in a thread and who writes in it or reads it
(MSG_01, MSG_03), when a space takes no new message (RET_05), what an attachment must be, who is
told of a deposit and how (DOC_02 / MSG_02), how texts and files are sealed at rest, and how a
listing is cut into pages no reply can make too big."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from libs import sealing
from libs.contracts.rpc import ErrorCode
from libs.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.tokens import Claims

SpaceStatus = Literal["open", "closed"]
Sender = Literal["holder", "representative", "professional"]
Side = Literal["holder", "professional", "establishment"]

DEPOSIT_SUBJECT = "Nouveau document dans votre dossier"
PATIENT_DEPOSIT_SUBJECT = "Nouveau document dans le dossier d'un patient"
# What is sealed, each under its own nonce and with its own associated data.
SUBJECT = "messaging/message-subject"
BODY = "messaging/message-body"
MAX_SUBJECT_CHARS = 300  # as SendMessage bounds them
MAX_BODY_CHARS = 100_000
MAX_PARTICIPANTS = 26  # the holder's side, the 20 professionals and 5 establishments named
MAX_ATTACHMENTS = 10  # as the contracts bound them; the settings may allow fewer
MAX_FILENAME_CHARS = 300


def check_can_receive(status: str | None) -> None:
    """RET_05: a closed space takes no new message; an unopened one has no box yet."""
    if status == "closed":
        raise Conflict(
            "the space is closed: it takes no new message",
            code=ErrorCode.SPACE_CLOSED,
            rule="RET_05",
        )
    if status != "open":
        raise Conflict(
            "the space is not open: it has no messaging box", code=ErrorCode.SPACE_NOT_OPEN
        )


# --- who takes part (MSG_01, MSG_03) ----------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """Who acts, as a thread knows them: the holder's side of a space (the holder, or their
    representative: `id` is the INS) or a professional (`id` is their identifier)."""

    side: Side
    id: str
    sender: Sender
    # Whether the access service must allow it first: a professional (MSG_01), and a
    # representative, whose appointment access knows (SPC_04, SPC_05).
    asks_access: bool
    # MSG_01: a professional reads and writes for the establishments (FINESS) they work in now.
    establishments: frozenset[str] = frozenset()

    def takes_part(self, participants: Participants) -> bool:
        return (self.side, self.id) in participants or any(
            side == "establishment" and finess in self.establishments
            for side, finess in participants
        )


def party_of(actor: Claims, ins: str) -> Party:
    """MSG_03: only the holder's side of this space and identified professionals use messaging."""
    if actor.kind == "holder":
        if actor.sub != ins:
            raise Forbidden("a holder writes only in their own box", code=ErrorCode.NOT_YOUR_BOX)
        return Party("holder", ins, "holder", asks_access=False)
    if actor.kind == "representative":
        if actor.acts_for != ins:
            raise Forbidden(
                "a representative acts only for the holder they represent",
                code=ErrorCode.NOT_YOUR_BOX,
            )
        return Party("holder", ins, "representative", asks_access=True)
    if actor.kind == "professional":
        return Party("professional", actor.sub, "professional", asks_access=True)
    raise Forbidden("only the holder's side and professionals use the messaging box")


def box_reader(actor: Claims, ins: str) -> Party:
    """MSG_03: the box (every thread the holder's side takes part in) is shown to the holder's
    side only."""
    if actor.kind in ("holder", "representative"):
        return party_of(actor, ins)
    raise Forbidden("only the holder reads their messaging box", code=ErrorCode.NOT_YOUR_BOX)


def lister(actor: Claims, ins: str | None) -> Party:
    """Who lists threads: a professional, theirs (about one space, or all); the holder's side,
    those of the space it names."""
    if actor.kind == "professional":
        return party_of(actor, ins or "")
    if ins is None:
        raise InvalidInput("name the space (ins) whose threads to list")
    return party_of(actor, ins)


def reads_ask_access(party: Party) -> bool:
    """Reading a thread takes taking part in it (MSG_03); a representative's appointment is
    asked of access too (it may have ended). A professional reads what was written to them
    without asking: reading a thread is not reading the dossier."""
    return party.sender == "representative"


Participants = list[tuple[Side, str]]


def participants_of_new_thread(
    party: Party, ins: str, professionals: Sequence[str], establishments: Sequence[str] = ()
) -> Participants:
    """MSG_01: the holder's side always takes part. The holder's side names the professionals
    and establishments (read by their staff of the moment) it writes to; a professional writes
    to the holder and names no one else (they could not tell whether the holder wants that one
    to read: the holder decides who reads)."""
    named = list(dict.fromkeys(professionals))
    places = list(dict.fromkeys(establishments))
    if party.side == "holder":
        if not named and not places:
            raise InvalidInput(
                "name the professionals (RPPS) or establishments (FINESS) this thread is with"
            )
        return [
            ("holder", ins),
            *(("professional", p) for p in named),
            *(("establishment", f) for f in places),
        ]
    if places or any(p != party.id for p in named):
        raise InvalidInput("a professional starts a thread with the holder only")
    return [("holder", ins), ("professional", party.id)]


def own_thread(party: Party, ins: str) -> Participants:
    """A message sent without a thread: the holder's side alone (as in the single box, where the
    holder's messages were read by no one else); a professional's, with the holder."""
    if party.side == "holder":
        return [("holder", ins)]
    return [("holder", ins), ("professional", party.id)]


def check_reads(party: Party, participants: Participants, thread_id: UUID) -> None:
    """MSG_03: a thread is shown to its participants only; to anyone else it does not exist."""
    if not party.takes_part(participants):
        raise NotFound(f"no thread {thread_id} of yours")


def check_writes(party: Party, kind: str, participants: Participants, thread_id: UUID) -> None:
    """MSG_01 / MSG_03: a participant writes in a conversation; notices take no reply."""
    check_reads(party, participants, thread_id)
    if kind != "conversation":
        raise Conflict(
            "a notices thread takes no reply: start a thread with the professional instead"
        )


def holder_reads(participants: Participants) -> bool:
    return any(side == "holder" for side, _ in participants)


# --- attachments ----------------------------------------------------------------------------

# The types a message may carry, and how their bytes announce themselves. Text and CDA have no
# magic number: text must be UTF-8 without control characters, and a CDA an XML document whose
# root is HL7's ClinicalDocument (no DTD: a CDA has none, and a DTD is where XML bombs live).
PDF, JPEG, PNG, TEXT, CDA = (
    "application/pdf",
    "image/jpeg",
    "image/png",
    "text/plain",
    "application/hl7-cda+xml",
)
ATTACHMENT_TYPES = (PDF, JPEG, PNG, TEXT, CDA)
# The names CDA documents travel under elsewhere (IHE XDS says text/xml): stored as CDA.
CDA_ALIASES = frozenset({"text/xml", "application/xml", CDA})
_SIGNATURES = {PDF: b"%PDF-", JPEG: b"\xff\xd8\xff", PNG: b"\x89PNG\r\n\x1a\n"}
_XML_PROLOG = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--.*?-->|<\?[^>]*\?>)\s*)*", re.DOTALL
)
_CDA_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?ClinicalDocument[\s>/]")
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int  # each
    max_count: int  # per message
    max_total_bytes: int  # per message
    types: frozenset[str]


@dataclass(frozen=True)
class CheckedAttachment:
    media_type: str
    content: bytes
    sha256: bytes
    filename: str | None


def check_attachments(
    attachments: Sequence[tuple[str, str, str, str | None]], limits: AttachmentLimits
) -> list[CheckedAttachment]:
    """Each (media type, base64 content, SHA-256 hex, file name) as it may be stored;
    InvalidInput, naming which and why, otherwise. Sizes are checked before decoding."""
    if len(attachments) > limits.max_count:
        raise InvalidInput(f"a message carries at most {limits.max_count} attachments")
    total = sum(_decoded_size(content_b64) for _, content_b64, _, _ in attachments)
    if total > limits.max_total_bytes:
        raise InvalidInput(
            f"the attachments of a message are limited to {limits.max_total_bytes} bytes together"
        )
    return [
        check_attachment(i, media_type, content_b64, sha256, filename, limits)
        for i, (media_type, content_b64, sha256, filename) in enumerate(attachments)
    ]


def check_attachment(
    index: int,
    media_type: str,
    content_b64: str,
    sha256_hex: str,
    filename: str | None,
    limits: AttachmentLimits,
) -> CheckedAttachment:
    which = f"attachment {index}"
    claimed = media_type.lower()
    kind = CDA if claimed in CDA_ALIASES else claimed
    if kind not in limits.types:
        raise InvalidInput(
            f"{which}: {media_type} is not accepted; accepted: {', '.join(sorted(limits.types))}"
        )
    if _decoded_size(content_b64) > limits.max_bytes:
        raise InvalidInput(
            f"{which} is larger than the limit of {limits.max_bytes} bytes"
            f" ({limits.max_bytes / 2**20:.1f} MiB) once decoded"
        )
    try:
        content = base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{which}: content_b64 is not valid base64 (standard, padded)") from None
    if not content:
        raise InvalidInput(f"{which} is empty")
    digest = hashlib.sha256(content).digest()
    if digest.hex() != sha256_hex.lower():
        raise InvalidInput(f"{which}: its SHA-256 is not the one declared: it was altered")
    if not is_what_it_claims(content, kind):
        raise InvalidInput(f"{which} is not {media_type}: its bytes say otherwise")
    return CheckedAttachment(kind, content, digest, filename)


def is_what_it_claims(content: bytes, media_type: str) -> bool:
    """Whether the bytes are of the type claimed, by their signature (or, for text and CDA,
    by what they must be)."""
    if media_type in _SIGNATURES:
        return content.startswith(_SIGNATURES[media_type])
    if media_type == TEXT:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return _TEXT_CONTROLS.search(text) is None
    if media_type == CDA:
        prolog = _XML_PROLOG.match(content)
        rest = content[prolog.end() if prolog else 0 :]
        if not rest.startswith(b"<") or rest.startswith(b"<!"):
            return False  # a DOCTYPE, or not XML
        root = _CDA_ROOT.match(rest)
        return root is not None and b"urn:hl7-org:v3" in rest[: rest.find(b">") + 1]
    return False


def encode_content(content: bytes) -> str:
    return base64.b64encode(content).decode()


def _decoded_size(content_b64: str) -> int:
    padding = len(content_b64[-2:]) - len(content_b64[-2:].rstrip("="))
    return len(content_b64) // 4 * 3 - padding


# --- deposits (DOC_02 / MSG_02) ------------------------------------------------------------


def posts_deposit_notice(author_kind: str) -> bool:
    """DOC_02 / MSG_02: a professional's deposit is sent to the holder. The holder's own
    deposits (and any other) are not: the holder knows, and the message would not be theirs."""
    return author_kind == "professional"


Role = Literal["holder", "treating_physician", "prescriber"]


@dataclass(frozen=True)
class Recipient:
    side: Side
    id: str
    role: Role

    @property
    def notices_for(self) -> str:
        return f"{self.side}:{self.id}"


def deposit_recipients(
    ins: str, author_id: str, treating_physician: str | None, prescriber: str | None
) -> list[Recipient]:
    """MSG_02: a professional's deposit goes to the holder, to the treating physician and to the
    prescriber where there is one; never to its author (who knows), and once to each (a treating
    physician who prescribed is told as the treating physician)."""
    recipients = [Recipient("holder", ins, "holder")]
    others: tuple[tuple[str | None, Role], ...] = (
        (treating_physician, "treating_physician"),
        (prescriber, "prescriber"),
    )
    for rpps, role in others:
        if rpps is None or rpps == author_id or any(r.id == rpps for r in recipients[1:]):
            continue
        recipients.append(Recipient("professional", rpps, role))
    return recipients


def deposit_notice(author_name: str | None) -> str:
    """DOC_02 / MSG_02: the holder is told of a deposit; neither title nor content is sent."""
    author = author_name or "Un professionnel de santé"
    return f"{author} a déposé un nouveau document dans votre dossier"


def notice(role: Role, author_name: str | None, document_type: str) -> tuple[str, str]:
    """The notice's subject and body for its reader: the author and the document's type, never
    its title or content (those the reader finds in the dossier, if access lets them)."""
    if role == "holder":
        return DEPOSIT_SUBJECT, deposit_notice(author_name)
    author = author_name or "Un professionnel de santé"
    as_whom = "médecin traitant" if role == "treating_physician" else "prescripteur"
    return PATIENT_DEPOSIT_SUBJECT, (
        f"{author} a déposé un document ({document_type}) dans le dossier de votre patient."
        f" Vous en êtes informé en tant que {as_whom} (art. L. 1111-15 du code de la santé"
        " publique)."
    )


# --- sealing at rest ------------------------------------------------------------------------


def seal_text(key: bytes, nonce: bytes, text: str, message_id: UUID, ins: str, part: str) -> bytes:
    """AES-256-GCM of a subject or body (`part`), bound to its message and holder."""
    return sealing.seal(key, nonce, text.encode(), sealing.associated_data(part, message_id, ins))


def unseal_text(
    key: bytes, nonce: bytes, sealed: bytes, message_id: UUID, ins: str, part: str
) -> str:
    """Raises cryptography.exceptions.InvalidTag if anything was altered or moved."""
    return sealing.unseal(
        key, nonce, sealed, sealing.associated_data(part, message_id, ins)
    ).decode()


def attachment_part(position: int, part: Literal["content", "name"]) -> str:
    """What an attachment's bytes or name are: bound to their place in the message, so that
    neither can be moved to another attachment, message or holder."""
    return f"messaging/attachment/{position}/{part}"


def seal_attachment(
    key: bytes, nonce: bytes, data: bytes, message_id: UUID, ins: str, part: str
) -> bytes:
    return sealing.seal(key, nonce, data, sealing.associated_data(part, message_id, ins))


def unseal_attachment(
    key: bytes, nonce: bytes, sealed: bytes, message_id: UUID, ins: str, part: str
) -> bytes:
    """Raises cryptography.exceptions.InvalidTag if anything was altered or moved."""
    return sealing.unseal(key, nonce, sealed, sealing.associated_data(part, message_id, ins))


# --- pages of a listing ---------------------------------------------------------------------

# A message's entry in a reply besides its texts: ids, kinds, date, field names, punctuation.
ENTRY_OVERHEAD_BYTES = 1024
_NAME_BYTES_ASSUMED = 1024


# An attachment's entry in a message of a listing (its bytes are fetched one by one).
ATTACHMENT_ENTRY_BYTES = 6 * 4 * MAX_FILENAME_CHARS + 512
# A thread's entry in ListThreads: its first message's subject, its participants, ids, dates.
THREAD_ENTRY_BYTES = 6 * 4 * MAX_SUBJECT_CHARS + MAX_PARTICIPANTS * (6 * 64 + 64) + 1024
MAX_THREADS_PAGE = 100  # as ListThreads bounds page_size


def reply_size(
    sealed_subject_bytes: int, sealed_body_bytes: int, text_bytes: int, attachments: int = 0
) -> int:
    """An upper bound of a message's bytes in a listing's reply, from stored sizes alone: texts
    travel as JSON strings, never more than 6 bytes (an escape) per byte of their UTF-8."""
    sealed = max(0, sealed_subject_bytes - sealing.TAG_BYTES) + max(
        0, sealed_body_bytes - sealing.TAG_BYTES
    )
    return 6 * (sealed + text_bytes) + ENTRY_OVERHEAD_BYTES + attachments * ATTACHMENT_ENTRY_BYTES


def max_reply_size() -> int:
    """The largest entry a message within the bounds makes (for the settings' check)."""
    return reply_size(
        4 * MAX_SUBJECT_CHARS + sealing.TAG_BYTES,
        4 * MAX_BODY_CHARS + sealing.TAG_BYTES,
        _NAME_BYTES_ASSUMED,
        MAX_ATTACHMENTS,
    )


def max_threads_reply_size() -> int:
    """The largest page of ListThreads: entries are small and bounded, so a page is too."""
    return MAX_THREADS_PAGE * THREAD_ENTRY_BYTES


def base64_size(size: int) -> int:
    return 4 * -(-size // 3)
