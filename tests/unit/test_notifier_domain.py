"""notifier's rules and words, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.contracts.events import AccessLogged, MessageSentV1, SpaceOpened
from services.notifier import domain


def logged(**overrides: Any) -> AccessLogged:
    values: dict[str, Any] = {
        "trace_id": uuid.uuid4(),
        "decision_id": uuid.uuid4(),
        "ins": "185057512345678",
        "actor_kind": "professional",
        "actor_id": "10001234567",
        "actor_name": "Claire Martin",
        "actor_profession": "physician",
        "action": "read",
        "outcome": "granted",
        "rule": "ACC_05:consent",
        "at": datetime(2025, 1, 5, 8, 5, tzinfo=UTC),
    }
    return AccessLogged(**{**values, **overrides})


# Words that would betray medical content if they reached an alert.
MEDICAL = (
    "biopsie",
    "VIH",
    "compte rendu",
    "lab_report",
    "imaging_report",
    "ordonnance",
    "prescription",
    "résultat",
)


def test_alert_text_says_who_when_what_and_no_medical_content__NTF_01() -> None:
    event = logged()
    alert = domain.access_alert(event)
    assert alert.kind == "access"
    # who
    assert "Claire Martin" in alert.text
    assert "médecin" in alert.text
    # when: 08:05 UTC in January is 09:05 in Paris
    assert "le 5 janvier 2025 à 09:05" in alert.text
    assert "heure de Paris" in alert.text
    # what
    assert "a consulté votre dossier" in alert.text
    # and nothing else from the trace: no rule, no ids, no medical words
    for leaked in (event.rule, str(event.trace_id), str(event.decision_id), event.actor_id):
        assert leaked not in alert.text
    for word in MEDICAL:
        assert word.lower() not in alert.text.lower()
    body = domain.mail_body(alert.text, "Jeanne Durand")
    assert alert.text in body
    for word in MEDICAL:
        assert word.lower() not in body.lower()
        assert word.lower() not in domain.mail_subject(alert.kind).lower()


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("read", "a consulté votre dossier"),
        ("deposit", "a ajouté un document à votre dossier"),
        ("read_history", "a consulté l'historique des accès à votre dossier"),
        ("message", "vous a écrit par la messagerie sécurisée"),
        ("something_new", "a accédé à votre dossier"),
    ],
)
def test_the_action_is_said_in_plain_words__NTF_01(action: str, words: str) -> None:
    assert words in domain.access_alert(logged(action=action)).text


def test_the_time_is_paris_time_summer_and_winter__NTF_01() -> None:
    assert domain.paris_time(datetime(2025, 7, 14, 12, 30, tzinfo=UTC)) == (
        "le 14 juillet 2025 à 14:30"
    )
    assert domain.paris_time(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == (
        "le 1er janvier 2026 à 00:30"
    )


def test_granted_accesses_by_others_are_alerted_not_the_holders_nor_denied__NTF_01() -> None:
    assert domain.should_alert_access(logged())
    assert domain.should_alert_access(logged(actor_kind="operator", actor_profession=None))
    assert not domain.should_alert_access(logged(actor_kind="holder", actor_profession=None))
    assert not domain.should_alert_access(logged(outcome="denied"))


def test_permission_to_message_is_not_alerted_twice_the_message_is__NTF_03() -> None:
    assert not domain.should_alert_access(logged(action="message"))


def test_an_unknown_profession_is_shown_as_given_and_an_operator_named_as_such() -> None:
    assert domain.who("A B", "osteopath", "professional") == "A B (osteopath)"
    assert domain.who("A B", None, "professional") == "A B"
    assert domain.who("agent 1", None, "operator") == "agent 1 (Assurance Maladie)"


def test_space_opened_alert__NTF_02() -> None:
    alert = domain.space_opened_alert(
        SpaceOpened(ins="185057512345678", opened_at=datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
    )
    assert alert.kind == "space_opened"
    assert "Votre espace santé est ouvert depuis le 1er mars 2025 à 11:00" in alert.text


def test_message_alert_names_the_sender_but_neither_subject_nor_body__NTF_03() -> None:
    # A version 1 event (still readable) had a subject: read as version 2, it is ignored.
    alert = domain.message_alert(
        MessageSentV1(
            message_id=uuid.uuid4(),
            ins="185057512345678",
            sender_kind="professional",
            sender_id="10001234567",
            sender_name="Claire Martin",
            subject="Résultats de votre biopsie",
            sent_at=datetime(2025, 3, 1, 10, 0, tzinfo=UTC),
        ).upgraded()
    )
    assert alert.kind == "new_message"
    assert "nouveau message sécurisé de Claire Martin" in alert.text
    assert "biopsie" not in alert.text.lower()
    assert "résultat" not in alert.text.lower()


def test_the_alert_id_is_the_causes_so_a_resent_mail_is_the_same__NTF_01() -> None:
    cause = uuid.uuid4()
    assert domain.alert_id_for(cause) == domain.alert_id_for(cause)
    assert domain.alert_id_for(cause) != domain.alert_id_for(uuid.uuid4())


def test_retry_backs_off_doubling_up_to_a_cap() -> None:
    delays = [domain.retry_delay(n, 30.0, 3600.0) for n in (1, 2, 3, 4, 10, 1000)]
    assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delays[4] == delays[5] == timedelta(hours=1)


def test_an_emergency_access_is_alerted_as_one_with_the_way_to_object__NTF_02__ACC_09() -> None:
    text = domain.access_alert(logged(emergency=True, actor_profession="regulating_physician")).text
    assert text.startswith("En situation d'urgence, ")
    assert "vous opposer à l'accès en urgence" in text
    assert "urgence" not in domain.access_alert(logged()).text
