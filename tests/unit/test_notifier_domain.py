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
    # when: 08:05 UTC in January is 09:05 in Paris, the zone named
    assert "le 5 janvier 2025 à 09:05 (Europe/Paris)" in alert.text
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


# --- the holder's time zone -----------------------------------------------------------------


def test_times_are_told_in_the_holders_zone_with_its_name__NTF_01() -> None:
    at = datetime(2025, 7, 14, 12, 30, tzinfo=UTC)
    assert domain.local_time(at) == "le 14 juillet 2025 à 14:30 (Europe/Paris)"
    assert domain.local_time(at, "America/Guadeloupe") == (
        "le 14 juillet 2025 à 08:30 (America/Guadeloupe)"
    )
    assert domain.local_time(at, "Indian/Reunion") == "le 14 juillet 2025 à 16:30 (Indian/Reunion)"
    # The same words in the mail, the SMS and (through local_time) the inbox.
    alert = domain.access_alert(logged(at=at), "America/Guadeloupe")
    assert "le 14 juillet 2025 à 08:30 (America/Guadeloupe)" in alert.text
    assert alert.at == at
    sms = domain.sms_text(alert.kind, alert.at, "America/Guadeloupe")
    assert "le 14 juillet 2025 à 08:30 (America/Guadeloupe)" in sms
    assert "Claire Martin" not in sms
    opened = domain.space_opened_alert(
        SpaceOpened(ins="185057512345678", opened_at=at), "Indian/Reunion"
    )
    assert "depuis le 14 juillet 2025 à 16:30 (Indian/Reunion)" in opened.text


def test_an_unknown_or_missing_zone_is_told_as_paris_time__NTF_01() -> None:
    at = datetime(2025, 1, 5, 8, 5, tzinfo=UTC)
    for zone in (None, "", "Mars/Olympus_Mons", "../../etc/passwd"):
        assert domain.zone_named(zone) == "Europe/Paris"
    assert domain.local_time(at, "Mars/Olympus_Mons") == "le 5 janvier 2025 à 09:05 (Europe/Paris)"


def test_a_span_is_told_on_one_day_or_across_two__NTF_01() -> None:
    first = datetime(2025, 3, 5, 13, 5, tzinfo=UTC)
    assert domain.local_span(first, first + timedelta(minutes=1)) == (
        "le 5 mars 2025 entre 14:05 et 14:06 (Europe/Paris)"
    )
    late = datetime(2025, 3, 5, 22, 58, tzinfo=UTC)
    assert domain.local_span(late, late + timedelta(minutes=5)) == (
        "entre le 5 mars 2025 à 23:58 et le 6 mars 2025 à 00:03 (Europe/Paris)"
    )


# --- bursts ---------------------------------------------------------------------------------

T0 = datetime(2025, 3, 5, 13, 5, tzinfo=UTC)


def routed(times: list[datetime], foldable: list[bool] | None = None) -> list[bool]:
    """Which of the alerts at `times` are folded, in order, from no window."""
    burst, folded = domain.Burst(), []
    for at, can_fold in zip(times, foldable or [True] * len(times), strict=True):
        routing = domain.route(burst, at, foldable=can_fold)
        burst = routing.burst
        folded.append(routing.folded)
    return folded


def test_past_the_first_three_in_ten_minutes_alerts_are_folded_into_a_digest__NTF_01() -> None:
    times = [T0 + timedelta(seconds=i) for i in range(200)]
    folded = routed(times)
    assert folded[:3] == [False] * 3
    assert folded[3:] == [True] * 197
    first = domain.route(domain.Burst(), T0, foldable=True)
    assert first.burst == domain.Burst(T0, 1)
    assert first.burst.due_at() == T0 + timedelta(minutes=10)


def test_a_new_window_opens_with_the_first_access_after_the_last_ended__NTF_01() -> None:
    times = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(minutes=9)]
    times += [T0 + timedelta(minutes=10), T0 + timedelta(minutes=11)]
    assert routed(times) == [False, False, False, True, False, False]
    # Policies other than the default are the settings' to choose.
    burst = domain.Burst(T0, 1)
    assert domain.route(burst, T0, foldable=True, alone=1).folded
    assert not domain.route(
        burst, T0 + timedelta(seconds=5), foldable=True, alone=1, window=timedelta(seconds=5)
    ).folded


def test_an_emergency_access_is_never_folded_nor_counted__NTF_02() -> None:
    emergency = domain.access_alert(logged(emergency=True, actor_profession="regulating_physician"))
    assert not emergency.foldable
    assert domain.access_alert(logged()).foldable
    times = [T0 + timedelta(seconds=i) for i in range(6)]
    # An emergency in the middle of a burst goes at once, and the burst's count is unchanged.
    assert routed(times, [True, True, False, True, False, True]) == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    # Other kinds of alert are not accesses: never folded.
    opened = domain.space_opened_alert(SpaceOpened(ins="185057512345678", opened_at=T0))
    assert not opened.foldable


def test_the_digest_says_how_many_and_when_in_the_holders_zone_and_nothing_else__NTF_01() -> None:
    last = T0 + timedelta(seconds=59)
    digest = domain.digest_alert(197, T0, last, "Indian/Reunion")
    assert digest.kind == domain.ACCESS_DIGEST
    assert (
        "197 autres accès à votre dossier le 5 mars 2025 entre 17:05 et 17:05 (Indian/Reunion)"
        in (digest.text)
    )
    sms = domain.digest_sms_text(1, T0, T0 + timedelta(minutes=1))
    assert sms.startswith("Mon espace santé : 1 autre accès à votre dossier le 5 mars 2025")
    assert "entre 14:05 et 14:06 (Europe/Paris)" in sms
    for text in (digest.text, sms, domain.mail_subject(domain.ACCESS_DIGEST)):
        for word in MEDICAL:
            assert word.lower() not in text.lower()
        assert "Claire Martin" not in text
    assert "accès" in domain.mail_subject(domain.ACCESS_DIGEST)


def test_a_digest_is_named_by_its_first_folded_alert_so_a_resend_is_the_same__NTF_01() -> None:
    alert = uuid.uuid4()
    assert domain.digest_id_for(alert) == domain.digest_id_for(alert)
    assert domain.digest_id_for(alert) not in (alert, domain.alert_id_for(alert))


# --- consent collected on the holder's behalf (ACC_05) --------------------------------------


def test_a_consent_collected_for_another_says_for_whom_and_why__ACC_05() -> None:
    text = domain.access_alert(
        logged(
            action="collect_consent",
            consent_for="10009876543",
            consent_reason="second_opinion",
        )
    ).text
    assert text.startswith(
        "Claire Martin (médecin) a recueilli votre consentement pour le professionnel"
        " n° 10009876543 (motif : un second avis) le 5 janvier 2025 à 09:05 (Europe/Paris)."
    )
    for word in MEDICAL:
        assert word.lower() not in text.lower()


def test_an_access_under_a_consent_another_collected_says_who_collected_it_and_why__ACC_05() -> (
    None
):
    text = domain.access_alert(
        logged(
            actor_name="Paul Durand",
            consent_collected_by="10001234567",
            consent_reason="referral",
        )
    ).text
    assert (
        "Paul Durand (médecin) a consulté votre dossier, avec votre consentement recueilli pour"
        " lui par le professionnel n° 10001234567 (motif : vous orienter vers ce professionnel)"
    ) in text
    # An unknown reason code is not repeated as such.
    odd = domain.access_alert(logged(consent_collected_by="10001234567", consent_reason="x"))
    assert "motif : non précisé" in odd.text
    # An access under the holder's own consent says nothing of the kind.
    assert "recueilli" not in domain.access_alert(logged()).text
