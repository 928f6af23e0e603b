"""identity's rules without I/O: the NIR and its key (SPC_02), minority (SPC_04), lifecycle."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from libs.contracts import commands as cmd
from libs.errors import Conflict, InvalidInput, Unauthenticated
from services.identity import domain


def test_key_is_97_minus_the_number_mod_97__SPC_02() -> None:
    body = "1850575123456"
    assert domain.nir_key(body) == 97 - int(body) % 97
    assert domain.validate_nir(domain.with_key(body)) == domain.with_key(body)


def test_corsican_departments_count_as_19_and_18__SPC_02() -> None:
    for dept, digits in (("2A", "19"), ("2B", "18")):
        body = f"18505{dept}123456"
        assert domain.nir_key(body) == 97 - int(f"18505{digits}123456") % 97
        assert domain.validate_nir(domain.with_key(body)).startswith(f"18505{dept}")


def test_spaces_and_dots_are_ignored_and_lowercase_corsica_accepted__SPC_02() -> None:
    nir = domain.with_key("18505" + "2A" + "123456")
    spaced = (
        f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7].lower()} {nir[7:10]}.{nir[10:13]} {nir[13:]}"
    )
    assert domain.validate_nir(spaced) == nir


@pytest.mark.parametrize(
    "text",
    ["", "12345", "18505751234567", "1850575123456789", "985057512345678", "18505AB12345612"],
)
def test_malformed_nir_is_refused_with_its_reason__SPC_02(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        domain.validate_nir(text)
    assert refused.value.code == "invalid_nir"
    assert "13 characters" in refused.value.message


def test_wrong_key_is_refused_and_the_right_one_named__SPC_02() -> None:
    nir = domain.with_key("2870675123456")
    wrong = nir[:-2] + f"{(int(nir[-2:]) % 96) + 1:02d}"
    with pytest.raises(InvalidInput) as refused:
        domain.validate_nir(wrong)
    assert refused.value.code == "invalid_nir_key"
    assert nir[-2:] in refused.value.message


def test_a_minor_is_under_eighteen_on_the_day__SPC_04() -> None:
    assert domain.is_minor(date(2008, 11, 24), date(2026, 11, 23))
    assert not domain.is_minor(date(2008, 11, 23), date(2026, 11, 23))


def test_a_minors_alerts_go_to_the_legal_representative__NTF_04() -> None:
    assert (
        domain.alert_contact(True, "kid@example.org", "parent@example.org") == "parent@example.org"
    )
    assert domain.alert_contact(False, "adult@example.org", None) == "adult@example.org"


def test_objection_only_while_announced_and_within_six_weeks__SPC_01() -> None:
    announced = datetime(2026, 1, 1, tzinfo=UTC)
    domain.check_objection(
        "announced", announced, announced + timedelta(weeks=6) - timedelta(seconds=1)
    )
    with pytest.raises(Conflict):
        domain.check_objection("announced", announced, announced + timedelta(weeks=6))
    with pytest.raises(Conflict):
        domain.check_objection("open", announced, announced)
    assert domain.can_open("announced") and not domain.can_open("objected")


# --- identifiers are ASCII (issue 5, item 8) --------------------------------------------------


@pytest.mark.parametrize(
    "translate",
    [
        # full-width digits, Arabic-Indic digits: `\d` and int() would take them
        str.maketrans("0123456789", "０１２３４５６７８９"),
        str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
    ],
)
def test_a_nir_in_non_ascii_digits_is_refused__SPC_02(translate: dict[int, str]) -> None:
    nir = domain.with_key("1850575123456")
    with pytest.raises(InvalidInput) as refused:
        domain.validate_nir(nir.translate(translate))
    assert refused.value.code == "invalid_nir"


def test_a_nir_with_a_trailing_newline_is_refused__SPC_02() -> None:
    with pytest.raises(InvalidInput):
        domain.validate_nir(domain.with_key("1850575123456") + "\n")


# --- the identity commands refuse bad input at the edge ---------------------------------------


def _holder(**overrides: object) -> cmd.RegisterHolder:
    values: dict[str, object] = {
        "nir": domain.with_key("1850575123456"),
        "first_name": "Jeanne",
        "last_name": "Durand",
        "birth_date": "1985-05-01",
        **overrides,
    }
    return cmd.RegisterHolder.model_validate(values)


@pytest.mark.parametrize(
    "email",
    [
        "jeanne@example.org\r\nBcc: all@example.org",
        "jeanne\n@example.org",
        "jeanne@example.org\x00",
        "not an address",
        "jeanne@localhost",
        "x" * 250 + "@example.org",
    ],
)
def test_an_invalid_email_is_refused(email: str) -> None:
    with pytest.raises(ValidationError):
        _holder(email=email)
    with pytest.raises(ValidationError):
        _holder(legal_representative_email=email)


def test_an_email_is_normalised() -> None:
    assert _holder(email="Jeanne.Durand@EXAMPLE.org").email == "Jeanne.Durand@example.org"


@pytest.mark.parametrize("phone", ["06 12 34 56 78", "0612345678", "+33 6 12 34 56 78"])
def test_a_french_phone_in_national_form_is_normalised_to_e164(phone: str) -> None:
    assert _holder(phone=phone).phone == "+33612345678"


@pytest.mark.parametrize(
    "phone", ["123", "06 12 34 56 78\n", "０６１２３４５６７８", "call me", ""]
)
def test_an_invalid_phone_is_refused(phone: str) -> None:
    with pytest.raises(ValidationError):
        _holder(phone=phone)


@pytest.mark.parametrize(
    "name", ["", "   ", "Jeanne\x00", "Jea\nnne", "Jeanne\u202e", "J" * 101, "\x1b[31mJ"]
)
def test_names_are_bounded_and_free_of_control_characters(name: str) -> None:
    with pytest.raises(ValidationError):
        _holder(first_name=name)


def test_names_keep_their_accents_and_hyphens() -> None:
    assert _holder(first_name=" Anne-Éloïse ").first_name == "Anne-Éloïse"


@pytest.mark.parametrize(
    "rpps", ["1000123456", "100012345678", "１０００１２３４５６７", "10001234567\n"]
)
def test_an_rpps_is_eleven_ascii_digits(rpps: str) -> None:
    with pytest.raises(ValidationError):
        cmd.RegisterProfessional(
            rpps=rpps,
            first_name="Claire",
            last_name="Martin",
            profession="physician",
            card_public_key="A" * 43,
        )


@pytest.mark.parametrize(
    "ins", ["１８５０５７５１２３４５６７８", "18505751234567\n", "1850575123456"]
)
def test_an_ins_is_fifteen_ascii_characters(ins: str) -> None:
    with pytest.raises(ValidationError):
        cmd.RequestHolderCode(ins=ins)


# --- sign-in codes (SPC_03): who gets one, lockout per holder, rate windows -------------------

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POLICY = domain.SignInPolicy()


def test_a_code_goes_only_to_an_adult_holder_of_a_live_space_with_an_email__SPC_03() -> None:
    adult = date(1985, 5, 1)
    by_mail = ("email", "a@example.org")
    assert domain.code_recipient("open", adult, "a@example.org", TODAY) == by_mail
    # an announced space, for the person to object to it themselves (SPC_01)
    assert domain.code_recipient("announced", adult, "a@example.org", TODAY) == by_mail
    # a closed space can still be signed into, to ask for its reactivation (RET_01)
    assert domain.code_recipient("closed", adult, "a@example.org", TODAY) == by_mail
    assert domain.code_recipient(None, None, None, TODAY) is None  # no such INS
    assert domain.code_recipient("objected", adult, "a@example.org", TODAY) is None
    assert domain.code_recipient("open", adult, None, TODAY) is None  # SPC_06
    # never after death
    assert domain.code_recipient("open", adult, "a@example.org", TODAY, deceased=True) is None


def test_a_code_goes_by_the_channel_the_holder_chose_or_the_one_they_have__SPC_03() -> None:
    adult = date(1985, 5, 1)
    both = {"phone": "+33612345678", "channel": "sms"}
    assert domain.code_recipient("open", adult, "a@example.org", TODAY, **both) == (  # type: ignore[arg-type]
        "sms",
        "+33612345678",
    )
    # chose SMS but has no phone: by e-mail; chose e-mail but has none: by SMS
    sms_only = domain.code_recipient("open", adult, None, TODAY, phone="+33612345678")
    assert sms_only == ("sms", "+33612345678")
    assert domain.code_recipient("open", adult, "a@example.org", TODAY, channel="sms") == (
        "email",
        "a@example.org",
    )


def test_the_person_or_the_operator_objects_nobody_else__SPC_01() -> None:
    ins = "185057800608436"
    assert domain.may_object("holder", ins, ins)
    assert domain.may_object("operator", "cnam-agent", ins)
    assert not domain.may_object("holder", "285057800608436", ins)
    assert not domain.may_object("professional", "10000000001", ins)


def test_a_minor_gets_no_code_of_their_own__SPC_04() -> None:
    assert domain.code_recipient("open", date(2015, 5, 1), "kid@example.org", TODAY) is None


def test_wrong_codes_lock_the_holder_after_the_limit__SPC_03() -> None:
    guard = domain.Guard()
    for attempt in range(1, POLICY.max_failures):
        guard = domain.after_failure(guard, NOW + timedelta(seconds=attempt), POLICY)
        assert guard.failures == attempt and not domain.is_locked(guard, NOW)
    last = NOW + timedelta(seconds=POLICY.max_failures)
    guard = domain.after_failure(guard, last, POLICY)
    assert domain.is_locked(guard, last)
    assert domain.is_locked(guard, last + POLICY.lockout - timedelta(seconds=1))
    assert not domain.is_locked(guard, last + POLICY.lockout)
    # after the lock, counting starts again
    again = domain.after_failure(guard, last + POLICY.lockout, POLICY)
    assert again.failures == 1 and not domain.is_locked(again, last + POLICY.lockout)


def test_old_failures_are_forgotten_after_their_window__SPC_03() -> None:
    guard = domain.Guard()
    for _ in range(POLICY.max_failures - 1):
        guard = domain.after_failure(guard, NOW, POLICY)
    later = NOW + POLICY.failure_window
    assert domain.guard_expired(guard, later, POLICY)
    assert domain.after_failure(guard, later, POLICY).failures == 1


def test_a_code_matches_only_while_live__SPC_03() -> None:
    expires = NOW + timedelta(minutes=10)
    assert domain.code_matches("h", expires, "h", NOW)
    assert not domain.code_matches("h", expires, "other", NOW)
    assert not domain.code_matches("h", expires, "h", expires)
    assert not domain.code_matches(None, None, "h", NOW)


def test_rate_windows_are_fixed_and_aligned() -> None:
    hour = timedelta(hours=1)
    start = domain.rate_window_start(NOW + timedelta(minutes=59), hour)
    assert start == NOW
    assert domain.rate_window_start(NOW + hour, hour) == NOW + hour
    assert domain.caller_key(None) == "caller:anonymous"


def test_only_the_named_service_user_is_a_service_caller__NTF_04() -> None:
    assert domain.is_service_caller("notifier", "notifier")
    assert not domain.is_service_caller("guest", "notifier")
    assert not domain.is_service_caller(None, "notifier")
    assert not domain.is_service_caller("", "")


def test_alert_channels_are_coarse_facts__NTF_04() -> None:
    assert domain.alert_channels("a@example.org", "+33612345678") == ["email", "sms"]
    assert domain.alert_channels(None, None) == []
    assert domain.alert_phone(True, "+33612345678") is None


# --- activation, reactivation, representatives (SPC_03, RET_01, SPC_04, SPC_05) -------------


def test_an_activation_code_is_ten_unambiguous_characters_used_once_before_it_expires__SPC_03() -> (
    None
):
    code = domain.new_activation_code()
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}", code)
    assert domain.normalise_activation_code(f" {code.lower()} ") == code.replace("-", "")
    later = NOW + timedelta(weeks=1)
    domain.check_activation("announced", True, None, later, NOW)
    with pytest.raises(Unauthenticated):  # wrong: nothing else is said
        domain.check_activation("closed", False, NOW, None, NOW)
    with pytest.raises(Conflict, match="already used"):
        domain.check_activation("open", True, NOW, later, NOW)
    with pytest.raises(Conflict, match="expired"):
        domain.check_activation("announced", True, None, NOW, NOW)
    with pytest.raises(Conflict, match="objected"):
        domain.check_activation("objected", True, None, later, NOW)


def test_a_space_is_reactivated_within_ten_calendar_years_never_after_death__RET_01() -> None:
    closed = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    domain.check_reactivation("closed", closed, False, datetime(2034, 2, 28, 11, 59, tzinfo=UTC))
    with pytest.raises(Conflict, match="ten years"):
        domain.check_reactivation("closed", closed, False, datetime(2034, 2, 28, 12, tzinfo=UTC))
    with pytest.raises(Conflict, match="died"):
        domain.check_reactivation("closed", closed, True, NOW)
    with pytest.raises(Conflict, match="not closed"):
        domain.check_reactivation("open", None, False, NOW)


def test_parental_authority_ends_at_the_start_of_the_eighteenth_birthday__SPC_04() -> None:
    assert domain.coming_of_age_at(date(2010, 6, 1)) == datetime(2028, 6, 1, tzinfo=UTC)
    # Born on 29 February: of age on 1 March when the year has no 29 February.
    assert domain.coming_of_age_at(date(2008, 2, 29)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.representative_term(
        "legal_representative", date(2015, 1, 1), None, None, NOW
    ) == datetime(2033, 1, 1, tzinfo=UTC)
    with pytest.raises(Conflict):  # an adult has no parental authority over them
        domain.representative_term("legal_representative", date(1990, 1, 1), None, None, NOW)


def test_a_protection_measure_needs_its_reference_and_an_adult__SPC_05() -> None:
    adult = date(1950, 1, 1)
    assert domain.representative_term("protection_representative", adult, None, "RG 1", NOW) is None
    assert domain.representative_term(
        "protection_representative", adult, date(2030, 1, 1), "RG 1", NOW
    ) == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="reference"):
        domain.representative_term("protection_representative", adult, None, None, NOW)
    with pytest.raises(Conflict):
        domain.representative_term("protection_representative", date(2015, 1, 1), None, "RG", NOW)
    # While the measure is in force the holder's own decisions are the representative's.
    assert not domain.may_act_for("holder", "X", "X", None, NOW, holder_represented=True)
    assert domain.may_act_for("holder", "X", "X", None, NOW)


# --- the directory (ACC_06, ACC_16) ---------------------------------------------------------


def test_a_finess_carries_a_luhn_check_digit_corsica_counting_as_20__ACC_06() -> None:
    assert domain.validate_finess("750712184") == "750712184"  # AP-HP, a real one
    assert domain.validate_finess("75 071 2184") == "750712184"
    assert domain.luhn_check_digit("7992739871") == 3  # the textbook example
    corsica = domain.with_finess_check_digit("2A000001")
    assert domain.validate_finess(corsica.lower()) == corsica
    for wrong in ("750712185", "75071218", "2C0000016", "７50712184", ""):
        with pytest.raises(InvalidInput) as refused:
            domain.validate_finess(wrong)
        assert refused.value.code == "invalid_finess"


def test_a_professional_of_another_eu_state_is_identified_with_their_country__ACC_16() -> None:
    eu = frozenset({"DE", "IT"})
    domain.check_professional_id("10000000001", None, eu)  # RPPS
    domain.check_professional_id("759912345", None, eu)  # ADELI
    domain.check_professional_id("DE-12345", "DE", eu)
    for professional_id, country in (("DE-12345", None), ("DE-12345", "IT"), ("FR-1", "FR")):
        with pytest.raises(InvalidInput):
            domain.check_professional_id(professional_id, country, eu)


def test_data_is_deleted_on_request_from_an_open_or_archived_space_only__RET_02() -> None:
    domain.check_deletable("open")
    domain.check_deletable("closed")
    for status in ("announced", "objected"):
        with pytest.raises(Conflict, match="object"):
            domain.check_deletable(status)  # type: ignore[arg-type]
