"""SMS through the provider's HTTP API (libs/sms.py) against a real HTTP server speaking it
(tests/support/sms.py), and identity's `CodeSender` sending sign-in codes by SMS or e-mail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from libs.sms import SmsGateway, SmsRefused, SmsUnavailable
from services.identity import messages
from services.identity.background import CodeSender
from services.identity.settings import IdentitySettings
from tests.support.sms import SmsServer
from tests.support.smtp import SmtpServer, free_port

pytestmark = pytest.mark.integration


def new_number() -> str:
    """A French mobile number no other test uses (the server is shared by the session)."""
    return f"+3367{secrets.randbelow(10**7):07d}"


@contextlib.contextmanager
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog entry, INFO included (whatever level the services set)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


def identity_settings(values: dict[str, Any], **overrides: Any) -> IdentitySettings:
    return IdentitySettings(**{**values, **overrides})


# --- the gateway ---------------------------------------------------------------------------------


async def test_a_message_reaches_the_provider_with_its_text_sender_and_idempotency_key(
    sms: SmsServer,
) -> None:
    number = new_number()
    async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante") as gateway:
        await gateway.send(number, "Votre code : 123456", idempotency_key="k-1-" + number)

    [received] = await sms.inbox.wait_for(number)
    assert (received.sender, received.to, received.text, received.idempotency_key) == (
        "MonEspaceSante",
        number,
        "Votre code : 123456",
        "k-1-" + number,
    )
    assert received.received_at is not None


async def test_the_api_key_goes_as_a_bearer_token_and_a_wrong_one_is_a_permanent_refusal(
    sms: SmsServer,
) -> None:
    number = new_number()
    async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante") as gateway:
        await gateway.send(number, "bonjour", idempotency_key="right-" + number)
    async with SmsGateway(sms.url, "not-the-key", sender="MonEspaceSante") as gateway:
        with pytest.raises(SmsRefused) as refused:
            await gateway.send(number, "bonjour", idempotency_key="wrong-" + number)

    assert refused.value.status == 401
    attempts = {a.idempotency_key: a for a in sms.attempts if a.to == number}
    assert attempts["right-" + number].authorization == f"Bearer {sms.api_key}"
    assert attempts["wrong-" + number].authorization == "Bearer not-the-key"
    assert [m.idempotency_key for m in sms.inbox.to(number)] == ["right-" + number]


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_a_4xx_from_the_provider_is_a_permanent_refusal(sms: SmsServer, status: int) -> None:
    number = new_number()
    sms.fail_next(1, status=status, to=number)
    async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante") as gateway:
        with pytest.raises(SmsRefused) as refused:
            await gateway.send(number, "bonjour", idempotency_key="k-" + number)
    assert refused.value.status == status
    assert sms.inbox.to(number) == []


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_a_5xx_or_a_too_many_requests_from_the_provider_is_a_temporary_failure(
    sms: SmsServer, status: int
) -> None:
    number = new_number()
    sms.fail_next(1, status=status, retry_after=2, to=number)
    async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante") as gateway:
        with pytest.raises(SmsUnavailable) as unavailable:
            await gateway.send(number, "bonjour", idempotency_key="k-" + number)
        assert (unavailable.value.status, unavailable.value.retry_after) == (status, 2.0)
        # The same send again, once the provider is back: it goes.
        await gateway.send(number, "bonjour", idempotency_key="k-" + number)
    assert len(await sms.inbox.wait_for(number)) == 1


async def test_a_provider_that_cannot_be_reached_is_a_temporary_failure() -> None:
    nobody = f"http://127.0.0.1:{free_port()}/v1/messages"
    async with SmsGateway(nobody, "key", sender="MonEspaceSante", timeout=2) as gateway:
        with pytest.raises(SmsUnavailable) as unavailable:
            await gateway.send(new_number(), "bonjour", idempotency_key="k")
    assert unavailable.value.status is None


async def test_a_provider_answering_too_late_is_a_temporary_failure_and_the_retry_sends_once(
    sms: SmsServer,
) -> None:
    number = new_number()
    sms.slow_next(1, seconds=1.0, to=number)
    async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante", timeout=0.3) as gateway:
        with pytest.raises(SmsUnavailable):
            await gateway.send(number, "bonjour", idempotency_key="k-" + number)
        await sms.inbox.wait_for(number)  # the provider got it all the same
        await gateway.send(number, "bonjour", idempotency_key="k-" + number)

    assert len(sms.inbox.to(number)) == 1
    assert [a.status for a in sms.attempts if a.to == number] == [202, 200]


async def test_a_number_not_in_e164_is_refused_before_anything_is_sent(sms: SmsServer) -> None:
    before = len(sms.attempts)
    async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante") as gateway:
        for number in ("0612345678", "+0612345678", "+33 6 12 34 56 78", ""):
            with pytest.raises(SmsRefused):
                await gateway.send(number, "bonjour", idempotency_key="k")
    assert len(sms.attempts) == before


async def test_logs_say_the_outcome_and_the_last_two_digits_never_the_number_text_or_key(
    sms: SmsServer, caplog: pytest.LogCaptureFixture
) -> None:
    number, text = new_number(), f"Votre code : {secrets.randbelow(10**6):06d}"
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log through the standard library
    with logs() as captured:
        async with SmsGateway(sms.url, sms.api_key, sender="MonEspaceSante") as gateway:
            await gateway.send(number, text, idempotency_key="k-" + number)
            sms.fail_next(1, status=503, to=number)
            with pytest.raises(SmsUnavailable):
                await gateway.send(number, text, idempotency_key="k2-" + number)

    assert [(e["event"], e["to"], e.get("status")) for e in captured] == [
        ("sms_sent", "…" + number[-2:], 202),
        ("sms_unavailable", "…" + number[-2:], 503),
    ]
    everything = repr(captured) + caplog.text
    for secret in (number, number[1:], text, sms.api_key):
        assert secret not in everything


# --- identity's CodeSender -----------------------------------------------------------------------


async def test_a_sign_in_code_submitted_by_sms_reaches_the_holders_phone__SPC_03(
    sms: SmsServer, settings_values: dict[str, Any]
) -> None:
    number = new_number()
    code = messages.sign_in_code("sms", number, "482913")
    sender = CodeSender(identity_settings(settings_values))
    await sender.start()
    sender.submit(code.channel, code.to, code.subject, code.body)
    await sender.stop()

    [received] = await sms.inbox.wait_for(number, timeout=5)
    assert received.text == code.body  # the subject is the e-mail's only
    assert "482913" in received.text
    assert received.sender == "MonEspaceSante"


async def test_a_sign_in_code_by_e_mail_still_goes_by_smtp__SPC_03(
    smtp: SmtpServer, settings_values: dict[str, Any]
) -> None:
    address = f"holder-{secrets.token_hex(4)}@example.org"
    code = messages.sign_in_code("email", address, "730164")
    sender = CodeSender(identity_settings(settings_values))
    await sender.start()
    sender.submit(code.channel, code.to, code.subject, code.body)
    await sender.stop()

    [mail] = await smtp.mailbox.wait_for(address, timeout=5)
    assert mail["Subject"] == messages.CODE_SUBJECT
    assert "730164" in mail.get_content()


async def test_submit_returns_before_the_sms_goes_and_stop_waits_for_it__SPC_03(
    sms: SmsServer, settings_values: dict[str, Any]
) -> None:
    number = new_number()
    sms.slow_next(1, seconds=0.5, to=number)
    sender = CodeSender(identity_settings(settings_values))
    await sender.start()
    started = time.monotonic()
    sender.submit("sms", number, "", "Votre code : 111111")
    assert time.monotonic() - started < 0.1
    assert sms.inbox.to(number) == []
    await sender.stop()
    assert [m.text for m in sms.inbox.to(number)] == ["Votre code : 111111"]


async def test_an_sms_the_provider_cannot_take_now_is_retried_with_the_same_key_and_goes_once(
    sms: SmsServer, settings_values: dict[str, Any]
) -> None:
    number = new_number()
    sms.fail_next(2, status=503, to=number)
    sender = CodeSender(identity_settings(settings_values), sms_retry_delay=0.05)
    await sender.start()
    sender.submit("sms", number, "", "Votre code : 222222")
    await sender.stop()

    [received] = sms.inbox.to(number)
    attempts = [a for a in sms.attempts if a.to == number]
    assert [a.status for a in attempts] == [503, 503, 202]
    assert {a.idempotency_key for a in attempts} == {received.idempotency_key}


async def test_a_refused_sms_is_logged_and_neither_retried_nor_raised(
    sms: SmsServer, settings_values: dict[str, Any]
) -> None:
    number = new_number()
    sms.fail_next(1, status=400, to=number)
    sender = CodeSender(identity_settings(settings_values), sms_retry_delay=0.05)
    await sender.start()
    with logs() as captured:
        sender.submit("sms", number, "", "Votre code : 333333")
        await sender.stop()

    assert [a.status for a in sms.attempts if a.to == number] == [400]
    assert sms.inbox.to(number) == []
    [failed] = [e for e in captured if e["event"] == "code_sms_failed"]
    assert "SmsRefused" in failed["error"] and number not in failed["error"]


async def test_an_sms_that_never_gets_through_is_given_up_after_its_tries(
    settings_values: dict[str, Any],
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/v1/messages"
    settings = identity_settings(settings_values, sms_gateway_url=nobody)
    sender = CodeSender(settings, sms_attempts=2, sms_retry_delay=0.05)
    await sender.start()
    with logs() as captured:
        sender.submit("sms", new_number(), "", "Votre code : 444444")
        await sender.stop()
    assert [e["event"] for e in captured].count("sms_unavailable") == 2
    assert [e["event"] for e in captured][-1] == "code_sms_failed"


async def test_without_a_gateway_an_sms_is_logged_as_impossible_and_nothing_crashes(
    settings_values: dict[str, Any],
) -> None:
    number = new_number()
    settings = identity_settings(settings_values, sms_gateway_url="", sms_api_key=None)
    assert settings.sms_gateway_url is None  # an empty setting is no setting
    sender = CodeSender(settings)
    await sender.start()
    with logs() as captured:
        sender.submit("sms", number, "", "Votre code : 555555")
        await sender.stop()
    assert captured == [
        {
            "event": "code_sms_impossible",
            "log_level": "warning",
            "to": "…" + number[-2:],
            "reason": "no SMS gateway configured (SMS_GATEWAY_URL, SMS_API_KEY)",
        }
    ]


async def test_stop_gives_up_on_sends_still_in_flight_after_its_timeout(
    sms: SmsServer, settings_values: dict[str, Any]
) -> None:
    number = new_number()
    sms.slow_next(1, seconds=2.0, to=number)
    sender = CodeSender(identity_settings(settings_values), stop_timeout=0.2)
    await sender.start()
    with logs() as captured:
        sender.submit("sms", number, "", "Votre code : 666666")
        await asyncio.wait_for(sender.stop(), timeout=1.0)
    assert {"event": "code_sends_abandoned", "log_level": "warning", "count": 1} in captured
