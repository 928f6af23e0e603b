"""Shared words: document types (DOC_01), professions (ACC_07) and specialties, as they travel
on the bus. Professions and specialties are closed lists: an insurer, a bank or an employer has
no word here to register as (ACC_10)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

DOCUMENT_TYPES: Final = (
    "identity",
    "vaccination",
    "medical_summary",  # volet de synthèse médicale
    "discharge_letter",
    "liaison_letter",
    "lab_report",
    "imaging_report",
    "operative_report",
    "act_report",
    "prescription",
    "certificate",
    "professional_letter",
    "care_history",  # from the health insurance, never amounts paid
    "pharmacy_dispensation",
    "organ_donation",
    "advance_directives",
    "occupational_health",
    "holder_document",  # added by the holder (photos, PDFs)
    "administrative",  # deposited by establishment staff (DOC_10)
)


class Profession(StrEnum):
    """Who identity registers as a professional (the RPPS professions the access matrix knows,
    and an establishment's administrative staff, DOC_10)."""

    PHYSICIAN = "physician"
    PHARMACIST = "pharmacist"
    NURSE = "nurse"
    MIDWIFE = "midwife"
    DENTIST = "dentist"
    PHYSIOTHERAPIST = "physiotherapist"
    OCCUPATIONAL_PHYSICIAN = "occupational_physician"  # ACC_11
    REGULATING_PHYSICIAN = "regulating_physician"  # SAMU / centre 15, ACC_09
    SOCIAL_WORKER = "social_worker"  # ACC_12
    ADMINISTRATIVE_STAFF = "administrative_staff"


PROFESSIONS: Final = tuple(p.value for p in Profession)


class Specialty(StrEnum):
    """A physician's specialty (the French specialised diplomas, DES), as registered."""

    GENERAL_PRACTICE = "general_practice"
    ALLERGOLOGY = "allergology"
    ANESTHESIOLOGY = "anesthesiology"
    CARDIOLOGY = "cardiology"
    DERMATOLOGY = "dermatology"
    EMERGENCY_MEDICINE = "emergency_medicine"
    ENDOCRINOLOGY = "endocrinology"
    GASTROENTEROLOGY = "gastroenterology"
    GERIATRICS = "geriatrics"
    GYNECOLOGY_OBSTETRICS = "gynecology_obstetrics"
    HEMATOLOGY = "hematology"
    INFECTIOUS_DISEASES = "infectious_diseases"
    INTENSIVE_CARE = "intensive_care"
    INTERNAL_MEDICINE = "internal_medicine"
    MEDICAL_BIOLOGY = "medical_biology"
    MEDICAL_ONCOLOGY = "medical_oncology"
    NEPHROLOGY = "nephrology"
    NEUROLOGY = "neurology"
    NUCLEAR_MEDICINE = "nuclear_medicine"
    OCCUPATIONAL_MEDICINE = "occupational_medicine"
    OPHTHALMOLOGY = "ophthalmology"
    OTORHINOLARYNGOLOGY = "otorhinolaryngology"
    PATHOLOGY = "pathology"
    PEDIATRICS = "pediatrics"
    PHYSICAL_MEDICINE = "physical_medicine"
    PSYCHIATRY = "psychiatry"
    PUBLIC_HEALTH = "public_health"
    PULMONOLOGY = "pulmonology"
    RADIOLOGY = "radiology"
    RHEUMATOLOGY = "rheumatology"
    SURGERY = "surgery"
    ORTHOPEDIC_SURGERY = "orthopedic_surgery"
    UROLOGY = "urology"
    VASCULAR_MEDICINE = "vascular_medicine"
