"""Test people: valid NIRs, professionals with card keys."""

from __future__ import annotations

import random
from dataclasses import dataclass

from libs.contracts import commands as cmd
from libs.contracts.vocabulary import Profession, Specialty
from libs.tokens import new_keypair
from services.identity.domain import with_finess_check_digit, with_key


def new_nir(sex: int = 1, year: int = 85, month: int = 5) -> str:
    dept = random.choice(["75", "69", "13", "2A", "2B", "33"])
    body = (
        f"{sex}{year:02d}{month:02d}{dept}{random.randint(1, 999):03d}{random.randint(1, 999):03d}"
    )
    return with_key(body)


def new_rpps() -> str:
    return f"10{random.randint(0, 10**9 - 1):09d}"


@dataclass(frozen=True)
class Professional:
    rpps: str
    first_name: str
    last_name: str
    profession: str
    card_private: str
    card_public: str
    specialty: str | None = None
    country: str | None = None  # another EU or EEA state's (ACC_16)

    def registration(self) -> cmd.RegisterProfessional:
        """What an operator sends to register them."""
        return cmd.RegisterProfessional(
            rpps=self.rpps,
            first_name=self.first_name,
            last_name=self.last_name,
            profession=Profession(self.profession),
            specialty=None if self.specialty is None else Specialty(self.specialty),
            card_public_key=self.card_public,
            country=self.country,
        )


def new_professional(profession: str = "physician", last_name: str = "Martin") -> Professional:
    private, public = new_keypair()
    return Professional(new_rpps(), "Claire", last_name, profession, private, public)


def new_eu_professional(country: str, profession: str = "physician") -> Professional:
    """A professional of another EU or EEA state, identified `<country>-<national id>`."""
    private, public = new_keypair()
    national_id = f"{country}-{random.randint(0, 10**8 - 1):08d}"
    return Professional(national_id, "Anna", "Schmidt", profession, private, public, None, country)


def new_finess(department: str = "75") -> str:
    """A FINESS number with its check digit (SPC: the register's Luhn key)."""
    return with_finess_check_digit(f"{department}{random.randint(0, 10**6 - 1):06d}")
