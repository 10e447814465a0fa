"""One field at a time: e-mail syntax and normal form, phone numbers, countries, names,
websites, hygiene flags. Pure functions the contact cleaning and the imports share.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from leadflow.events.catalogue.intake import (
    HygieneFlags,
)
from leadflow.intake.domain.reference import (
    COUNTRY_ALIASES,
    DISPOSABLE_DOMAINS,
    FREE_MAIL_DOMAINS,
    NON_COUNTRY_REGIONS,
    ROLE_LOCAL_PARTS,
    clean_text,
    is_blank,
)

# ---------------------------------------------------------------------------------------
# Email


# A local part made only of these characters, dot-separated, is valid and normalises to
# itself: a fast path may then reuse the domain's (cached) verdict.
_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*")


@lru_cache(maxsize=8192)
def _valid_domain(domain: str) -> str | None:
    """The normalised domain if an address at it can be valid, else ``None``. Cached: the
    domain's checks (IDNA, per-character UTS-46) are most of an address's validation, and
    inquiries come from a limited set of domains."""
    try:
        return str(validate_email("a@" + domain, check_deliverability=False).domain)
    except EmailNotValidError:
        return None


def normalize_email(raw: str) -> str:
    """Syntax-checked, lower-cased email (no DNS: intake must answer fast and offline).

    The local part is lower-cased too: mailbox providers treat it case-insensitively in
    practice, and identity resolution must not split one person on capitalisation.

    The common address (plain ASCII local part within the length limits, a domain already
    seen valid) skips re-validating its domain; any other goes through ``validate_email``
    whole, so verdicts and messages are exactly the validator's.
    """
    candidate = raw.strip()
    if not candidate:
        raise ValueError("email is empty")
    local, at, domain = candidate.rpartition("@")
    if (
        at
        and candidate.isascii()
        and len(local) <= 64
        and len(candidate) <= 254
        and _SIMPLE_LOCAL.fullmatch(local)
    ):
        normalized_domain = _valid_domain(domain)
        # Same length and ASCII: no IDNA form differs, so the validator's length checks on
        # the original, normalised and ASCII forms are all the one above.
        if (
            normalized_domain is not None
            and normalized_domain.isascii()
            and len(normalized_domain) == len(domain)
        ):
            return f"{local}@{normalized_domain}".lower()
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return result.normalized.lower()


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower()


def _domain_in(domain: str, listed: frozenset[str]) -> bool:
    """``domain`` or one of its parent domains is listed (``eu.mailinator.com`` counts)."""
    parts = domain.lower().split(".")
    return any(".".join(parts[i:]) in listed for i in range(len(parts) - 1))


def is_free_mail(domain: str | None) -> bool:
    return bool(domain) and _domain_in(domain or "", FREE_MAIL_DOMAINS)


def is_disposable(domain: str | None) -> bool:
    return bool(domain) and _domain_in(domain or "", DISPOSABLE_DOMAINS)


def is_role_address(email: str | None) -> bool:
    if not email or "@" not in email:
        return False
    local = email.rsplit("@", 1)[0].lower().split("+", 1)[0]
    return local in ROLE_LOCAL_PARTS


def hygiene_flags(email: str | None) -> HygieneFlags:
    domain = email_domain(email)
    return HygieneFlags(
        free_mail=is_free_mail(domain),
        disposable=is_disposable(domain),
        role_address=is_role_address(email),
    )


# ---------------------------------------------------------------------------------------
# Phone, country, names, website


def normalize_phone(raw: str, region: str | None = None) -> str:
    """E.164 (``+919876543210``); ``region`` (alpha-2) reads numbers without a ``+``."""
    text = raw.strip()
    if not text:
        raise ValueError("phone is empty")
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise ValueError(
                "phone has no country code: start it with + or give the contact's country"
            ) from exc
        raise ValueError(f"phone is not a phone number ({exc._msg})") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError("phone has the wrong number of digits for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def normalize_country(raw: str | None) -> str | None:
    """ISO-3166 alpha-2 for a code, a name or a common alias; placeholders give ``None``.

    Raises ``ValueError`` for text that names no country we know, so a typo is reported
    instead of silently dropped. Regions that are not countries give ``None``.
    """
    if is_blank(raw):
        return None
    text = " ".join(str(raw).split())
    key = text.casefold()
    if key in NON_COUNTRY_REGIONS:
        return None
    if key in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[key]
    if len(text) == 2 and text.isalpha():
        found = pycountry.countries.get(alpha_2=text.upper())
        if found is not None:
            return str(found.alpha_2)
    try:
        country = pycountry.countries.lookup(text)
    except LookupError:
        try:
            matches = pycountry.countries.search_fuzzy(text)
        except LookupError:
            matches = []
        # Only trust fuzzy search when it is unambiguous and shares the text's start.
        if len(matches) == 1 and str(matches[0].name).casefold().startswith(key[:4]):
            return str(matches[0].alpha_2)
        raise ValueError(f"country {text!r} is not a country we know") from None
    return str(country.alpha_2)


_NAME_PARTICLES = frozenset(
    {
        "van",
        "von",
        "der",
        "den",
        "de",
        "del",
        "della",
        "da",
        "di",
        "du",
        "la",
        "le",
        "bin",
        "ibn",
        "al",
        "ter",
        "ten",
        "dos",
        "das",
        "y",
    }
)


def _cap_word(word: str) -> str:
    # Capitalise each piece joined by - or ' ("jean-luc" -> "Jean-Luc", "o'neil" -> "O'Neil").
    out = []
    for piece in re.split("([-'\u2019])", word):
        keep = piece in ("-", "'", "\u2019")
        out.append(piece if keep else _cap_piece(piece))
    return "".join(out)


def _cap_piece(piece: str) -> str:
    """Title-case the first CASED character, lower-case the rest. Not ``piece[:1]``: some
    letters upper-case to an uncased mark plus a letter ("\u0149" -> "\u02bcN"), and
    normalising the result again must give the same name. Title case, not upper: "\u00df"
    upper-cases to "SS", which would read as ALL-CAPS and normalise again to "Ss"."""
    for i, char in enumerate(piece):
        if char.lower() != char.upper():
            return piece[:i] + char.title() + piece[i + 1 :].lower()
    return piece


def normalize_name(raw: object) -> str | None:
    """Trimmed name; ALL-CAPS or all-lower input is capitalised, mixed case is kept.

    Mixed case is kept because people who type "McDonald" or "van der Berg" know their name
    better than a rule does.
    """
    text = clean_text(raw, max_length=100)
    if text is None:
        return None
    if text != text.lower() and text != text.upper():
        return text
    words = text.split(" ")
    result = []
    for i, word in enumerate(words):
        if i > 0 and word.lower() in _NAME_PARTICLES:
            result.append(word.lower())
        else:
            result.append(_cap_word(word))
    return " ".join(result)


def normalize_website(raw: object) -> str | None:
    """``https://host/path`` with the host lower-cased; refuses text that is not a URL."""
    text = clean_text(raw, max_length=300)
    if text is None:
        return None
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if "." not in host or " " in host or parts.scheme not in {"http", "https"}:
        raise ValueError("website is not a web address")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{host}{path}"


def website_domain(website: str | None) -> str | None:
    if not website:
        return None
    host = (urlsplit(website).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host or None


def company_domain(email: str | None, website: str | None) -> str | None:
    """The company's domain: the email's unless it is free-mail, else the website's."""
    domain = email_domain(email)
    if domain and not is_free_mail(domain) and not is_disposable(domain):
        return domain
    site = website_domain(website)
    if site and not is_free_mail(site):
        return site
    return None
