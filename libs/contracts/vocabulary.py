"""Shared words: document types (DOC_01) and professions (ACC_07), as they travel on the bus."""

from __future__ import annotations

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

PROFESSIONS: Final = (
    "physician",
    "pharmacist",
    "nurse",
    "midwife",
    "dentist",
    "physiotherapist",
    "occupational_physician",
    "regulating_physician",
    "social_worker",
    "administrative_staff",
)
