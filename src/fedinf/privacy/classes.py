"""The default entity type -> data class map, and the combination rules that raise a class.

Rationale (see docs/governance.md):

- ``restricted``: values whose leak causes direct harm or is regulated on its own - credentials and keys, government
  ids, payment cards and bank accounts, medical record and health-plan ids.
- ``confidential``: personal data that identifies or contacts a person - names, e-mail, phone, street address, date
  of birth - and professional health identifiers (NPI, DEA) and diagnosis codes.
- ``internal``: technical or institutional identifiers, not personal on their own - IP addresses, bank routing and
  SWIFT/BIC codes, a postal code given alone.

Combination: a diagnosis code (ICD-10) in the same request as a personal identifier is health data about a person
(special-category data) and raises the class to ``restricted``.
Unknown entity types (e.g. custom patterns without a ``class``) are ``confidential``.
"""

from __future__ import annotations

from types import MappingProxyType

from fedinf.data_class import DataClass

R, C, I = DataClass.RESTRICTED, DataClass.CONFIDENTIAL, DataClass.INTERNAL

SECRETS = ("AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "SLACK_TOKEN",
           "SLACK_WEBHOOK", "GOOGLE_API_KEY", "GOOGLE_OAUTH_TOKEN", "STRIPE_KEY", "TWILIO_KEY", "HUGGINGFACE_TOKEN",
           "GITLAB_TOKEN", "NPM_TOKEN", "PRIVATE_KEY", "JWT", "PASSWORD")
GOVERNMENT = ("US_SSN", "US_ITIN", "PASSPORT_NUMBER", "DRIVER_LICENSE", "UK_NHS", "UK_NINO", "ES_NIF", "IN_AADHAAR",
              "CA_SIN")
FINANCIAL = ("CREDIT_CARD", "IBAN_CODE", "BANK_ACCOUNT")
HEALTH = ("MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID")
PERSONAL = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "DATE_OF_BIRTH")

DEFAULT_ENTITY_CLASSES: MappingProxyType[str, DataClass] = MappingProxyType({
    **dict.fromkeys(SECRETS + GOVERNMENT + FINANCIAL + HEALTH, R),
    **dict.fromkeys(PERSONAL + ("NPI", "DEA_NUMBER", "ICD10_CODE"), C),
    **dict.fromkeys(("IP_ADDRESS", "US_BANK_ROUTING", "SWIFT_BIC", "POSTAL_CODE"), I),
})
UNKNOWN_ENTITY_CLASS = C

# (entity types that trigger, entity types that must also be present, resulting class)
COMBINATIONS: tuple[tuple[frozenset[str], frozenset[str], DataClass], ...] = (
    (frozenset({"ICD10_CODE"}), frozenset(PERSONAL + GOVERNMENT + HEALTH), R),
)
