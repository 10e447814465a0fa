"""Intake's pure rules: data hygiene, identity resolution, merging, consent, account match.

Everything here is deterministic and free of I/O so it can be tested exhaustively; the API
and store call these functions and persist what they decide. One module per concern (the
modules say which); this package re-exports their public names, so ``domain.X`` reads as
before.
"""

from __future__ import annotations

# The catalogue's value types the rules speak in, importable from here as before.
from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    AccountMatch,
    ConsentRecord,
    Contact,
    HygieneFlags,
    QualificationAnswers,
    Rating,
    implicit_account_id,
)
from leadflow.intake.domain.badges import (
    BadgeFormatError,
    parse_badge,
    parse_mecard,
    parse_vcard,
)
from leadflow.intake.domain.contact import (
    CONTACT_FIELDS,
    CleanContact,
    clean_contact,
)
from leadflow.intake.domain.errors import (
    FieldError,
    HygieneError,
)
from leadflow.intake.domain.import_mapping import (
    IMPORT_TARGETS,
    PRESET_MAPPINGS,
    X_EDUCATION_MAPPING,
    map_row,
    mapping_errors,
    resolve_mapping,
)
from leadflow.intake.domain.inquiry import (
    CleanInquiry,
    InquiryDraft,
    clean_consent,
    clean_inquiry,
    parse_bool,
)
from leadflow.intake.domain.matching import (
    ACCOUNT_NAMESPACE,
    Account,
    IdentityDecision,
    KnownLead,
    MatchReason,
    account_domains,
    match_account,
    name_key,
    resolve_identity,
)
from leadflow.intake.domain.normalisation import (
    company_domain,
    email_domain,
    hygiene_flags,
    is_disposable,
    is_free_mail,
    is_role_address,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_website,
    website_domain,
)
from leadflow.intake.domain.profiles import (
    MergeOutcome,
    Profile,
    apply_contact,
    consent_change,
    email_quality,
    merge_profiles,
    merged_consent,
)
from leadflow.intake.domain.reference import (
    BLANK_TOKENS,
    COUNTRY_ALIASES,
    DISPOSABLE_DOMAINS,
    FREE_MAIL_DOMAINS,
    NON_COUNTRY_REGIONS,
    ROLE_LOCAL_PARTS,
    clean_text,
    is_blank,
)

__all__ = [
    "ACCOUNT_NAMESPACE",
    "BLANK_TOKENS",
    "CONTACT_FIELDS",
    "COUNTRY_ALIASES",
    "DISPOSABLE_DOMAINS",
    "FREE_MAIL_DOMAINS",
    "IMPORT_TARGETS",
    "NON_COUNTRY_REGIONS",
    "PRESET_MAPPINGS",
    "ROLE_LOCAL_PARTS",
    "X_EDUCATION_MAPPING",
    "Account",
    "AccountMatch",
    "BadgeFormatError",
    "CleanContact",
    "CleanInquiry",
    "ConsentRecord",
    "Contact",
    "FieldError",
    "HygieneError",
    "HygieneFlags",
    "IdentityDecision",
    "InquiryDraft",
    "KnownLead",
    "MatchReason",
    "MergeOutcome",
    "Profile",
    "QualificationAnswers",
    "Rating",
    "SourceInfo",
    "account_domains",
    "apply_contact",
    "clean_consent",
    "clean_contact",
    "clean_inquiry",
    "clean_text",
    "company_domain",
    "consent_change",
    "email_domain",
    "email_quality",
    "hygiene_flags",
    "implicit_account_id",
    "is_blank",
    "is_disposable",
    "is_free_mail",
    "is_role_address",
    "map_row",
    "mapping_errors",
    "match_account",
    "merge_profiles",
    "merged_consent",
    "name_key",
    "normalize_country",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "normalize_website",
    "parse_badge",
    "parse_bool",
    "parse_mecard",
    "parse_vcard",
    "resolve_identity",
    "resolve_mapping",
    "website_domain",
]
