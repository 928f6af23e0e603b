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
# RET_03: the occupational health part, kept by its own clock.
OCCUPATIONAL_HEALTH: Final = "occupational_health"

# DOC_01: each type as the standard code French health software exchanges it (the document
# types of the national document-sharing specification, CI-SIS: LOINC where LOINC has one, the
# ANS's own terminology otherwise). One place: the access matrix names types by these words,
# and the dossier's FHIR copy uses the codes.
LOINC: Final = "http://loinc.org"
ANS_TYPES: Final = "urn:oid:1.2.250.1.213.1.1.4.12"  # TRE_A05, ANS complementary types
DOCUMENT_TYPE_CODES: Final[dict[str, tuple[str, str, str]]] = {
    "identity": (ANS_TYPES, "ID_PATIENT", "Identité du patient"),
    "vaccination": (LOINC, "87273-9", "Note de vaccination"),
    "medical_summary": (LOINC, "60591-5", "Synthèse médicale"),
    "discharge_letter": (LOINC, "11490-0", "Lettre de sortie"),
    "liaison_letter": (LOINC, "34133-9", "Lettre de liaison"),
    "lab_report": (LOINC, "11502-2", "CR d'examens biologiques"),
    "imaging_report": (LOINC, "18748-4", "CR d'imagerie médicale"),
    "operative_report": (LOINC, "34874-8", "CR opératoire"),
    "act_report": (LOINC, "28570-0", "CR d'acte"),
    "prescription": (LOINC, "57833-6", "Prescription de médicaments"),
    "certificate": (ANS_TYPES, "CERT_DECL", "Certificat, déclaration"),
    "professional_letter": (LOINC, "11488-4", "Courrier, note de consultation"),
    "care_history": (ANS_TYPES, "REMB", "Historique des remboursements"),
    "pharmacy_dispensation": (LOINC, "60593-1", "Dispensation médicamenteuse"),
    "organ_donation": (ANS_TYPES, "DON_ORGANE", "Expression sur le don d'organes"),
    "advance_directives": (LOINC, "75320-2", "Directives anticipées"),
    "occupational_health": (ANS_TYPES, "DMST", "Dossier médical en santé au travail"),
    "holder_document": (ANS_TYPES, "DOC_PATIENT", "Document déposé par le titulaire"),
    "administrative": (ANS_TYPES, "ADMIN", "Document administratif"),
}


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
    FIRE_BRIGADE_PHYSICIAN = "fire_brigade_physician"  # ACC_11
    SOCIAL_WORKER = "social_worker"  # ACC_12
    MEDICO_SOCIAL_WORKER = "medico_social_worker"  # ACC_12
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


class EstablishmentCategory(StrEnum):
    """What identity registers as an establishment (FINESS categories, grouped): health,
    social and medico-social establishments only (ACC_10: no insurer, bank or employer)."""

    HOSPITAL = "hospital"
    CLINIC = "clinic"
    HEALTH_CENTRE = "health_centre"
    EHPAD = "ehpad"  # nursing home, ACC_12
    PMI = "pmi"  # mother-and-child protection, ACC_12
    SOCIAL_SERVICE = "social_service"
    MEDICO_SOCIAL_SERVICE = "medico_social_service"
    PHARMACY = "pharmacy"
    LABORATORY = "laboratory"
    IMAGING_CENTRE = "imaging_centre"
    EMERGENCY_CALL_CENTRE = "emergency_call_centre"  # SAMU / centre 15, ACC_09


class DataCategory(StrEnum):
    """What the holder may let a catalogue service read (ACC_15), each a set of document
    types. Never the occupational health part nor the administrative part."""

    IDENTITY = "identity"
    VACCINATIONS = "vaccinations"
    SUMMARIES = "summaries"
    RESULTS = "results"
    PRESCRIPTIONS = "prescriptions"
    CARE_HISTORY = "care_history"
    WISHES = "wishes"
    HOLDER_DOCUMENTS = "holder_documents"


DATA_CATEGORY_TYPES: Final[dict[DataCategory, frozenset[str]]] = {
    DataCategory.IDENTITY: frozenset({"identity"}),
    DataCategory.VACCINATIONS: frozenset({"vaccination"}),
    DataCategory.SUMMARIES: frozenset(
        {"medical_summary", "discharge_letter", "liaison_letter", "professional_letter"}
    ),
    DataCategory.RESULTS: frozenset(
        {"lab_report", "imaging_report", "operative_report", "act_report"}
    ),
    DataCategory.PRESCRIPTIONS: frozenset({"prescription", "pharmacy_dispensation"}),
    DataCategory.CARE_HISTORY: frozenset({"care_history"}),
    DataCategory.WISHES: frozenset({"organ_donation", "advance_directives"}),
    DataCategory.HOLDER_DOCUMENTS: frozenset({"holder_document", "certificate"}),
}

# ACC_16: the other member states of the EU and the EEA (ISO 3166-1 alpha-2; Greece is GR).
EU_COUNTRIES: Final = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "GR", "HR", "HU", "IE",
        "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
        "IS", "LI", "NO",
    }
)  # fmt: skip
