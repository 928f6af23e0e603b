"""identity's rules without I/O: the NIR and its key (SPC_02), minority (SPC_04), lifecycle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from libs.errors import Conflict, InvalidInput
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
