"""Intake's pure rules: data hygiene, identity resolution, merging, consent, account match.

Everything here is deterministic and free of I/O so it can be tested exhaustively; the API
and store call these functions and persist what they decide.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    IMPLICIT_ACCOUNT_NAMESPACE,
    AccountMatch,
    ConsentRecord,
    Contact,
    HygieneFlags,
    QualificationAnswers,
    Rating,
    implicit_account_id,
)

# ---------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class FieldError:
    """One refused input field; ``field`` is a dotted path such as ``contact.email``."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class HygieneError(ValueError):
    """Input refused; carries every field that was wrong, not just the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)


# ---------------------------------------------------------------------------------------
# Reference lists. Built in so intake works offline; big enough for the usual suspects.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FREE_MAIL_DOMAINS: frozenset[str] = _words(
    """
    gmail.com googlemail.com yahoo.com yahoo.co.in yahoo.co.uk yahoo.fr yahoo.de yahoo.es
    yahoo.it yahoo.com.au yahoo.com.br yahoo.co.jp yahoo.in ymail.com rocketmail.com
    hotmail.com hotmail.co.uk hotmail.fr hotmail.de hotmail.it hotmail.es outlook.com
    outlook.in outlook.fr outlook.de live.com live.co.uk live.in live.fr msn.com
    aol.com aim.com icloud.com me.com mac.com gmx.com gmx.de gmx.net gmx.at gmx.ch web.de
    t-online.de freenet.de mail.com email.com usa.com mail.ru inbox.ru list.ru bk.ru
    yandex.ru yandex.com ya.ru protonmail.com protonmail.ch proton.me pm.me tutanota.com
    tuta.io zoho.com zohomail.com qq.com 163.com 126.com yeah.net sina.com sohu.com
    rediffmail.com naver.com daum.net hanmail.net libero.it virgilio.it orange.fr
    wanadoo.fr laposte.net free.fr sfr.fr btinternet.com sky.com virginmedia.com
    ntlworld.com talktalk.net comcast.net verizon.net att.net sbcglobal.net bellsouth.net
    cox.net charter.net earthlink.net juno.com optonline.net shaw.ca rogers.com
    sympatico.ca bigpond.com optusnet.com.au hushmail.com fastmail.com fastmail.fm
    seznam.cz wp.pl o2.pl interia.pl onet.pl ukr.net abv.bg uol.com.br bol.com.br
    terra.com.br hey.com
    """
)

DISPOSABLE_DOMAINS: frozenset[str] = _words(
    """
    mailinator.com mailinator.net guerrillamail.com guerrillamail.net guerrillamail.org
    guerrillamailblock.com sharklasers.com grr.la 10minutemail.com 10minutemail.net
    20minutemail.com temp-mail.org tempmail.com tempmail.net tempmailo.com tempail.com
    throwawaymail.com yopmail.com yopmail.fr yopmail.net trashmail.com trashmail.de
    trashmail.net getnada.com nada.email dispostable.com maildrop.cc mailnesia.com
    fakeinbox.com mintemail.com spamgourmet.com mohmal.com emailondeck.com discard.email
    burnermail.io mytemp.email tempinbox.com mailcatch.com spambox.us getairmail.com
    moakt.com emailfake.com fakemail.net mail-temporaire.fr jetable.org spam4.me
    incognitomail.org mailpoof.com 33mail.com anonaddy.me temp-mail.io minuteinbox.com
    """
)

ROLE_LOCAL_PARTS: frozenset[str] = _words(
    """
    info sales admin administrator support contact hello office marketing webmaster
    postmaster hostmaster noreply no-reply donotreply billing accounts accounting hr
    jobs careers recruiting team help helpdesk enquiries enquiry inquiries inquiry abuse
    security press media mail newsletter service services feedback orders root it legal
    privacy compliance finance purchasing procurement reception events partners
    """
)

# Values that forms and CRM exports use to mean "nothing was chosen".
BLANK_TOKENS: frozenset[str] = frozenset(
    {"", "select", "-", "--", "n/a", "na", "none", "null", "unknown", "not provided", "nil"}
)

COUNTRY_ALIASES: Mapping[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom": "GB",
    "usa": "US",
    "u.s.a.": "US",
    "us": "US",
    "u.s.": "US",
    "america": "US",
    "united states": "US",
    "united states of america": "US",
    "uae": "AE",
    "u.a.e.": "AE",
    "emirates": "AE",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "vietnam": "VN",
    "viet nam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "taiwan": "TW",
    "czech republic": "CZ",
    "czechia": "CZ",
    "macedonia": "MK",
    "moldova": "MD",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "holland": "NL",
    "the netherlands": "NL",
    "hong kong": "HK",
    "macau": "MO",
    "macao": "MO",
    "palestine": "PS",
    "brunei": "BN",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "turkey": "TR",
    "turkiye": "TR",
    "deutschland": "DE",
    "espana": "ES",
    "españa": "ES",
    "schweiz": "CH",
    "suisse": "CH",
    "österreich": "AT",
    "osterreich": "AT",
    "nederland": "NL",
    "italia": "IT",
    "bharat": "IN",
    "vatican": "VA",
    "vatican city": "VA",
    "kosovo": "XK",
    "micronesia": "FM",
    "congo": "CG",
    "drc": "CD",
    "dr congo": "CD",
    "democratic republic of the congo": "CD",
    "east timor": "TL",
    "st lucia": "LC",
}
# Regions that are not a country: known, deliberately no country.
NON_COUNTRY_REGIONS: frozenset[str] = frozenset(
    {
        "asia/pacific region",
        "europe",
        "asia",
        "africa",
        "middle east",
        "apac",
        "emea",
        "latam",
        "other",
        "others",
        "international",
        "worldwide",
        "global",
    }
)


def is_blank(value: object) -> bool:
    """Empty, whitespace, or a form placeholder such as ``Select``."""
    if value is None:
        return True
    return str(value).strip().casefold() in BLANK_TOKENS


def clean_text(value: object, *, max_length: int = 500) -> str | None:
    """Trimmed text with inner whitespace runs collapsed; blanks become ``None``."""
    if is_blank(value):
        return None
    text = " ".join(str(value).split())
    return text[:max_length]


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


# ---------------------------------------------------------------------------------------
# A whole contact


# The single-valued fields a form, an import or a merge sets one by one (the secondary
# addresses are the merge's business: see ``merge_profiles``).
CONTACT_FIELDS: tuple[str, ...] = tuple(f for f in Contact.model_fields if f != "secondary_emails")


@dataclass(frozen=True)
class CleanContact:
    contact: Contact
    flags: HygieneFlags
    email_domain: str | None
    company_domain: str | None


def clean_contact(
    raw: Mapping[str, Any],
    *,
    require_email: bool = True,
    default_region: str | None = None,
    prefix: str = "contact",
) -> CleanContact:
    """Validate and normalise contact fields; raises ``HygieneError`` naming every bad field."""
    errors: list[FieldError] = []
    values: dict[str, str | None] = {}

    email = raw.get("email")
    if is_blank(email):
        if require_email:
            errors.append(FieldError(f"{prefix}.email", "email is required"))
        values["email"] = None
    else:
        try:
            values["email"] = normalize_email(str(email))
        except ValueError as exc:
            errors.append(FieldError(f"{prefix}.email", str(exc)))

    try:
        values["country"] = normalize_country(
            None if raw.get("country") is None else str(raw.get("country"))
        )
    except ValueError as exc:
        errors.append(FieldError(f"{prefix}.country", str(exc)))
        values["country"] = None

    phone = raw.get("phone")
    if is_blank(phone):
        values["phone"] = None
    else:
        try:
            values["phone"] = normalize_phone(str(phone), values.get("country") or default_region)
        except ValueError as exc:
            errors.append(FieldError(f"{prefix}.phone", str(exc)))

    try:
        values["website"] = normalize_website(raw.get("website"))
    except ValueError as exc:
        errors.append(FieldError(f"{prefix}.website", str(exc)))

    values["first_name"] = normalize_name(raw.get("first_name"))
    values["last_name"] = normalize_name(raw.get("last_name"))
    values["city"] = normalize_name(raw.get("city"))
    for name in ("title", "department", "company", "industry"):
        values[name] = clean_text(raw.get(name), max_length=200)

    if errors:
        raise HygieneError(errors)
    contact = Contact(**values)
    return CleanContact(
        contact=contact,
        flags=hygiene_flags(contact.email),
        email_domain=email_domain(contact.email),
        company_domain=company_domain(contact.email, contact.website),
    )


# ---------------------------------------------------------------------------------------
# Identity resolution

MatchReason = Literal["same_email", "same_phone", "same_name_and_domain"]


@dataclass(frozen=True)
class KnownLead:
    """What identity resolution needs to know about an existing lead."""

    lead_id: uuid.UUID
    emails: frozenset[str] = frozenset()
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_domain: str | None = None


@dataclass(frozen=True)
class IdentityDecision:
    """``new``: a lead we never saw; ``same``: the same person (another inquiry);
    ``probable_duplicate``: a different record that is probably the same person, to be
    captured and then merged into ``lead_id``."""

    kind: Literal["new", "same", "probable_duplicate"]
    lead_id: uuid.UUID | None = None
    reason: MatchReason | None = None


def name_key(first: str | None, last: str | None) -> str | None:
    """The comparable form of a person's name, for duplicate detection."""
    key = _name_key(first, last)
    return None if key is None else f"{key[0]}|{key[1]}"


def _name_key(first: str | None, last: str | None) -> tuple[str, str] | None:
    if not first or not last:
        return None
    return (" ".join(first.casefold().split()), " ".join(last.casefold().split()))


def resolve_identity(clean: CleanContact, candidates: Iterable[KnownLead]) -> IdentityDecision:
    """Same normalised email beats same phone beats same name at the same company domain.

    Candidates come oldest first; among equals the oldest lead wins so that duplicates fold
    into the record everyone has been working with.
    """
    contact = clean.contact
    by_phone: KnownLead | None = None
    by_name: KnownLead | None = None
    name = _name_key(contact.first_name, contact.last_name)
    for known in candidates:
        if contact.email and contact.email in known.emails:
            return IdentityDecision("same", known.lead_id, "same_email")
        if by_phone is None and contact.phone and contact.phone == known.phone:
            by_phone = known
        if (
            by_name is None
            and name is not None
            and clean.company_domain
            and clean.company_domain == known.company_domain
            and name == _name_key(known.first_name, known.last_name)
        ):
            by_name = known
    if by_phone is not None:
        return IdentityDecision("probable_duplicate", by_phone.lead_id, "same_phone")
    if by_name is not None:
        return IdentityDecision("probable_duplicate", by_name.lead_id, "same_name_and_domain")
    return IdentityDecision("new")


# ---------------------------------------------------------------------------------------
# Profiles: updates by recency, merges, consent


@dataclass(frozen=True)
class Profile:
    """A lead's current contact data with the time each field was last set."""

    lead_id: uuid.UUID
    contact: Contact
    field_times: Mapping[str, datetime] = field(default_factory=dict)
    consent: ConsentRecord | None = None


def apply_contact(profile: Profile, incoming: Contact, at: datetime) -> tuple[Profile, list[str]]:
    """Take each non-empty incoming field that is newer than what we hold.

    A badge scan uploaded hours late must not overwrite a correction made in between, so
    the comparison is on when the value was observed, not when it arrived.
    """
    current = profile.contact.model_dump()
    times = dict(profile.field_times)
    changed: list[str] = []
    for name in CONTACT_FIELDS:
        value = getattr(incoming, name)
        if value is None or value == current.get(name):
            continue
        held_at = times.get(name)
        if current.get(name) is not None and held_at is not None and held_at > at:
            continue
        if name == "email" and current.get(name) is not None:
            # Another of the person's addresses (a known alias): it becomes the primary only
            # if it is as good a way to reach them; either way the other one is kept.
            before = list(current.get("secondary_emails") or [])
            primary = current[name]
            worse = email_quality(value) < email_quality(primary)
            if worse:
                current["secondary_emails"] = list(dict.fromkeys([*before, value]))
            else:
                others = [e for e in before if e != value]
                current["secondary_emails"] = list(dict.fromkeys([*others, primary]))
            if current["secondary_emails"] != before:
                changed.append("secondary_emails")
            if worse:
                continue
        current[name] = value
        times[name] = at
        changed.append(name)
    return Profile(profile.lead_id, Contact(**current), times, profile.consent), changed


@dataclass(frozen=True)
class MergeOutcome:
    contact: Contact
    field_times: Mapping[str, datetime]
    field_sources: dict[str, str]
    consent: ConsentRecord | None
    consent_changed: bool


def _consent_rank(record: ConsentRecord) -> tuple[bool, datetime]:
    """What a person said outranks a box left unticked; then the later statement wins."""
    return record.stated, record.given_at or datetime.min.replace(tzinfo=UTC)


def merged_consent(
    survivor: ConsentRecord | None, other: ConsentRecord | None
) -> ConsentRecord | None:
    """Marketing consent after a merge: the person's own latest answer, never an inference.

    Unknown (no record) is not an answer, so it neither narrows an opt-in nor widens an
    opt-out; a box left unticked never overrides a stated answer; between two stated
    answers the later one (``given_at``) wins, and a tie keeps the survivor's.
    """
    if other is None:
        return survivor
    if survivor is None:
        return other
    return other if _consent_rank(other) > _consent_rank(survivor) else survivor


def email_quality(email: str | None) -> int:
    """How good an address is as the one to reach a lead at: a business address (2) over a
    role or private web-mail address (1) over a disposable one (0)."""
    if not email:
        return -1
    flags = hygiene_flags(email)
    if flags.disposable:
        return 0
    if flags.free_mail or flags.role_address:
        return 1
    return 2


def _primary_email(a: str | None, ta: datetime | None, b: str | None, tb: datetime | None) -> bool:
    """Whether ``b`` (the other record's address) becomes the primary: the better address
    wins (a work e-mail is not replaced by a private one); between equals, the newer."""
    if b is None:
        return False
    if a is None:
        return True
    qa, qb = email_quality(a), email_quality(b)
    if qa != qb:
        return qb > qa
    return tb is not None and (ta is None or tb > ta)


def merge_profiles(survivor: Profile, other: Profile) -> MergeOutcome:
    """Fold ``other`` into ``survivor``: per field the most recently observed value wins
    (ties keep the survivor's), except the e-mail address, where the better one stays
    primary and the other becomes secondary; consent by :func:`merged_consent`."""
    a, b = survivor.contact.model_dump(), other.contact.model_dump()
    merged: dict[str, Any] = {}
    times: dict[str, datetime] = {}
    sources: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        va, vb = a.get(name), b.get(name)
        ta, tb = survivor.field_times.get(name), other.field_times.get(name)
        if name == "email":
            take_other = _primary_email(va, ta, vb, tb)
        else:
            take_other = vb is not None and (
                va is None or (tb is not None and (ta is None or tb > ta))
            )
        if take_other:
            merged[name] = vb
            if tb is not None:
                times[name] = tb
            sources[name] = str(other.lead_id)
        else:
            merged[name] = va
            if ta is not None:
                times[name] = ta
            if va is not None:
                sources[name] = str(survivor.lead_id)
    addresses = [a.get("email"), *a.get("secondary_emails", ()), b.get("email"),
                 *b.get("secondary_emails", ())]  # fmt: skip
    merged["secondary_emails"] = list(
        dict.fromkeys(e for e in addresses if e and e != merged.get("email"))
    )
    consent = merged_consent(survivor.consent, other.consent)
    return MergeOutcome(Contact(**merged), times, sources, consent, consent != survivor.consent)


def consent_change(
    current: ConsentRecord | None, incoming: ConsentRecord | None
) -> ConsentRecord | None:
    """The consent to record when an inquiry states one, or ``None`` if nothing changes.

    An inquiry without an answer (no record, or a box left unticked on a lead we already
    hold a record for) changes nothing: "unknown" is never read as "no"."""
    if incoming is None:
        return None
    if current is not None and not incoming.stated:
        return None
    if current is not None and current.marketing_opt_in == incoming.marketing_opt_in:
        return None
    # A first explicit "no" is recorded too: it is what later proves we asked.
    return incoming


# ---------------------------------------------------------------------------------------
# Accounts


@dataclass(frozen=True)
class Account:
    """A registered company account. Who owns it is routing's business (routing assigns
    by it, ``PUT /v1/routing/accounts/{key}``); intake only matches leads to it.
    ``owner_rep_id`` is what an older intake stored, never forwarded."""

    account_id: str
    domain: str
    name: str | None = None
    owner_rep_id: str | None = None


# The implicit id (uuid5 of the domain) lives in the catalogue: consumers tell a registered
# account from a domain match by it on events older than ``AccountMatch.registered``.
ACCOUNT_NAMESPACE = IMPLICIT_ACCOUNT_NAMESPACE


def account_domains(domain: str) -> list[str]:
    """``eu.sales.acme.com`` → its candidate account domains, most specific first."""
    parts = domain.lower().split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


def match_account(clean: CleanContact, known: Mapping[str, Account]) -> AccountMatch | None:
    """Match on the company domain (never on free-mail); unknown companies get an implicit
    account keyed by their domain so their leads still group together, marked
    ``registered=False`` so nobody mistakes the grouping for a known account."""
    domain = clean.company_domain
    if not domain:
        return None
    for candidate in account_domains(domain):
        account = known.get(candidate)
        if account is not None:
            return AccountMatch(
                account_id=account.account_id,
                domain=account.domain,
                name=account.name,
                registered=True,
            )
    return AccountMatch(
        account_id=implicit_account_id(domain),
        domain=domain,
        name=clean.contact.company,
        registered=False,
    )


# ---------------------------------------------------------------------------------------
# The channel-independent inquiry


@dataclass(frozen=True)
class InquiryDraft:
    """Raw input from any channel (API, form, scan, import row), before hygiene."""

    contact: Mapping[str, Any]
    source: Mapping[str, Any] = field(default_factory=dict)
    answers: Mapping[str, Any] = field(default_factory=dict)
    consent: Mapping[str, Any] | None = None
    notes: str | None = None
    rating: str | None = None
    external_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class CleanInquiry:
    clean: CleanContact
    source: SourceInfo
    answers: QualificationAnswers
    consent: ConsentRecord | None
    notes: str | None
    rating: Rating | None
    external_id: str | None
    attributes: dict[str, str]
    occurred_at: datetime | None
    external_system: str | None = None  # an import's system; None from the API


_TRUE = frozenset({"true", "yes", "y", "1", "on", "checked", "opt-in", "optin"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "opt-out", "optout"})


def parse_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if is_blank(value):
        return None
    text = str(value).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes/no")


def clean_consent(
    raw: Mapping[str, Any] | None, *, default_source: str | None, prefix: str = "consent"
) -> ConsentRecord | None:
    """A consent record from ``marketing_opt_in`` or an export's ``do_not_email`` flag.

    ``do_not_email = no`` says nothing about opt-in, so it yields no record at all.
    """
    if not raw:
        return None
    opt_in_raw = raw.get("marketing_opt_in")
    dne_raw = raw.get("do_not_email")
    try:
        opt_in = parse_bool(opt_in_raw)
    except ValueError as exc:
        raise HygieneError([FieldError(f"{prefix}.marketing_opt_in", str(exc))]) from None
    try:
        do_not_email = parse_bool(dne_raw)
    except ValueError as exc:
        raise HygieneError([FieldError(f"{prefix}.do_not_email", str(exc))]) from None
    if do_not_email:
        opt_in = False
    if opt_in is None:
        return None
    given_at = raw.get("given_at")
    return ConsentRecord(
        stated=raw.get("stated", True) is not False,
        marketing_opt_in=opt_in,
        text_version=clean_text(raw.get("text_version"), max_length=100),
        given_at=given_at if isinstance(given_at, datetime) else None,
        source=clean_text(raw.get("source"), max_length=100) or default_source,
    )


def clean_inquiry(
    draft: InquiryDraft,
    *,
    channel: str,
    require_email: bool = True,
    default_region: str | None = None,
) -> CleanInquiry:
    """Hygiene for a whole inquiry; every bad field is reported at once."""
    errors: list[FieldError] = []
    clean: CleanContact | None = None
    try:
        clean = clean_contact(
            draft.contact, require_email=require_email, default_region=default_region
        )
    except HygieneError as exc:
        errors.extend(exc.errors)
    consent: ConsentRecord | None = None
    try:
        consent = clean_consent(draft.consent, default_source=channel)
    except HygieneError as exc:
        errors.extend(exc.errors)
    rating: Rating | None = None
    if not is_blank(draft.rating):
        value = str(draft.rating).strip().lower()
        if value in ("hot", "warm", "cold"):
            rating = value  # type: ignore[assignment]
        else:
            errors.append(FieldError("rating", "rating must be hot, warm or cold"))
    if errors or clean is None:
        raise HygieneError(errors)
    source = {k: clean_text(v, max_length=300) for k, v in draft.source.items()}
    source.setdefault("channel", channel)
    if source.get("channel") is None:
        source["channel"] = channel
    answers = {k: clean_text(v, max_length=2000) for k, v in draft.answers.items()}
    return CleanInquiry(
        clean=clean,
        source=SourceInfo(**{k: v for k, v in source.items() if k in SourceInfo.model_fields}),
        answers=QualificationAnswers(
            **{k: v for k, v in answers.items() if k in QualificationAnswers.model_fields}
        ),
        consent=consent,
        notes=clean_text(draft.notes, max_length=4000),
        rating=rating,
        external_id=clean_text(draft.external_id, max_length=200),
        attributes={
            k: v
            for k, v in ((k, clean_text(v)) for k, v in draft.attributes.items())
            if v is not None
        },
        occurred_at=draft.occurred_at,
    )


# ---------------------------------------------------------------------------------------
# Badge payloads: vCard 3/4 and MECARD


class BadgeFormatError(ValueError):
    """A QR payload that is neither a well-formed vCard nor a MECARD."""


def _unescape_vcard(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_unescaped(value: str, sep: str) -> list[str]:
    parts, buf, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            buf.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def parse_vcard(text: str) -> dict[str, str]:
    """Contact fields from a vCard 3.0 or 4.0 (the first card when there are several)."""
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines: list[str] = []
    for line in raw_lines:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]  # folded continuation line
        elif line.strip():
            lines.append(line.strip())
    if not lines or lines[0].upper() != "BEGIN:VCARD":
        raise BadgeFormatError("vCard must start with BEGIN:VCARD")
    try:
        end = next(i for i, line in enumerate(lines) if line.upper() == "END:VCARD")
    except StopIteration:
        raise BadgeFormatError("vCard has no END:VCARD") from None
    version: str | None = None
    fields: dict[str, str] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if ":" not in line:
            raise BadgeFormatError(f"vCard line {number} has no ':' ({line[:40]!r})")
        head, value = line.split(":", 1)
        name_params = head.split(";")
        name = name_params[0].split(".")[-1].upper()  # drop group prefix "item1."
        params = {p.split("=", 1)[0].upper(): p.split("=", 1)[-1].lower() for p in name_params[1:]}
        if name == "VERSION":
            version = value.strip()
        elif name == "N":
            parts = [_unescape_vcard(p) for p in _split_unescaped(value, ";")]
            if parts and parts[0].strip():
                fields.setdefault("last_name", parts[0].strip())
            if len(parts) > 1 and parts[1].strip():
                fields.setdefault("first_name", parts[1].strip())
        elif name == "FN":
            fields.setdefault("_fn", _unescape_vcard(value).strip())
        elif name == "EMAIL":
            # Prefer the work / preferred address when a card carries several.
            if "email" not in fields or "work" in params.get("TYPE", "") or "PREF" in params:
                fields["email"] = _unescape_vcard(value).strip()
        elif name == "TEL":
            number_text = value.strip()
            if number_text.lower().startswith("tel:"):
                number_text = number_text[4:]
            if "tel" not in fields or "work" in params.get("TYPE", "") or "PREF" in params:
                fields["tel"] = _unescape_vcard(number_text)
        elif name == "ORG":
            parts = [_unescape_vcard(p).strip() for p in _split_unescaped(value, ";")]
            if parts and parts[0]:
                fields["company"] = parts[0]
            if len(parts) > 1 and parts[1]:
                fields["department"] = parts[1]
        elif name == "TITLE":
            fields["title"] = _unescape_vcard(value).strip()
        elif name == "URL":
            fields.setdefault("website", _unescape_vcard(value).strip())
        elif name == "ADR":
            parts = [_unescape_vcard(p).strip() for p in _split_unescaped(value, ";")]
            if len(parts) > 3 and parts[3]:
                fields.setdefault("city", parts[3])
            if len(parts) > 6 and parts[6]:
                fields.setdefault("country", parts[6])
        elif name == "NOTE":
            fields.setdefault("notes", _unescape_vcard(value).strip())
    if version not in ("2.1", "3.0", "4.0"):
        raise BadgeFormatError(f"vCard VERSION must be 3.0 or 4.0, not {version!r}")
    fn = fields.pop("_fn", None)
    if fn and "first_name" not in fields and "last_name" not in fields:
        first, _, last = fn.rpartition(" ")
        fields["first_name"], fields["last_name"] = (first, last) if first else (fn, "")
    if "tel" in fields:
        fields["phone"] = fields.pop("tel")
    return {k: v for k, v in fields.items() if v}


def parse_mecard(text: str) -> dict[str, str]:
    """Contact fields from a MECARD QR payload (``MECARD:N:Doe,Jane;EMAIL:...;;``)."""
    body = text.strip()
    if not body.upper().startswith("MECARD:"):
        raise BadgeFormatError("MECARD must start with MECARD:")
    body = body[len("MECARD:") :]
    if not body.endswith(";"):
        raise BadgeFormatError("MECARD must end with ';;'")
    fields: dict[str, str] = {}
    for item in _split_unescaped(body, ";"):
        if not item:
            continue
        if ":" not in item:
            raise BadgeFormatError(f"MECARD field {item[:30]!r} has no ':'")
        key, value = item.split(":", 1)
        key = key.strip().upper()
        value = _unescape_vcard(value).strip()
        if key == "N":
            last, _, first = value.partition(",")
            fields["last_name"], fields["first_name"] = last.strip(), first.strip()
        elif key == "EMAIL":
            fields.setdefault("email", value)
        elif key == "TEL":
            fields.setdefault("phone", value)
        elif key == "ORG":
            fields["company"] = value
        elif key == "TITLE":
            fields["title"] = value
        elif key == "URL":
            fields["website"] = value
        elif key == "ADR":
            parts = [p.strip() for p in value.split(",")]
            if len(parts) >= 7:
                fields["city"], fields["country"] = parts[3], parts[6]
        elif key == "NOTE":
            fields["notes"] = value
    if not fields:
        raise BadgeFormatError("MECARD carries no fields")
    return {k: v for k, v in fields.items() if v}


def parse_badge(text: str) -> dict[str, str]:
    """Contact fields from a QR badge payload: vCard or MECARD, else ``BadgeFormatError``."""
    stripped = text.lstrip()
    if stripped.upper().startswith("BEGIN:VCARD"):
        return parse_vcard(stripped)
    if stripped.upper().startswith("MECARD:"):
        return parse_mecard(stripped)
    raise BadgeFormatError("badge payload is neither a vCard (BEGIN:VCARD) nor a MECARD")


# ---------------------------------------------------------------------------------------
# CSV imports: column mapping

IMPORT_TARGETS: frozenset[str] = frozenset(
    {f"contact.{f}" for f in CONTACT_FIELDS}
    | {f"source.{f}" for f in SourceInfo.model_fields}
    | {f"answers.{f}" for f in QualificationAnswers.model_fields}
    | {
        "consent.marketing_opt_in",
        "consent.do_not_email",
        "consent.text_version",
        "notes",
        "rating",
        "external_id",
        "ignore",
        # history (leadflow.intake.imports): the outcome and when things happened
        "outcome",
        "outcome.amount",
        "outcome.currency",
        "outcome.closed_at",
        "created_at",
    }
)

X_EDUCATION_MAPPING: Mapping[str, str] = {
    "Prospect ID": "external_id",
    "Lead Number": "attributes.lead_number",
    "Lead Origin": "source.utm_medium",
    "Lead Source": "source.utm_source",
    "Do Not Email": "consent.do_not_email",
    "Do Not Call": "attributes.do_not_call",
    "Converted": "outcome",  # history: 1 = won in X Education's own system, 0 = closed
    "Country": "contact.country",
    "City": "contact.city",
    "Specialization": "contact.department",
    "What is your current occupation": "contact.title",
    "What matters most to you in choosing a course": "answers.compelling_event",
    "How did you hear about X Education": "source.referrer",
    "Tags": "answers.comments",
    "Email": "contact.email",
    "email": "contact.email",
}
PRESET_MAPPINGS: Mapping[str, Mapping[str, str]] = {"x-education": X_EDUCATION_MAPPING}


def mapping_errors(mapping: Mapping[str, str]) -> list[FieldError]:
    """Refuse targets that name no field, before any row is read."""
    errors = []
    for column, target in mapping.items():
        if target in IMPORT_TARGETS or (target.startswith("attributes.") and len(target) > 11):
            continue
        errors.append(FieldError(f"mapping.{column}", f"unknown target field {target!r}"))
    return errors


def resolve_mapping(
    header: Sequence[str], mapping: Mapping[str, str], *, keep_unmapped: bool
) -> dict[str, str]:
    """Column → target for this file's header; unmapped columns become attributes when
    ``keep_unmapped`` (so nothing in a vendor export is silently lost)."""
    by_folded = {k.strip().casefold(): v for k, v in mapping.items()}
    resolved: dict[str, str] = {}
    for column in header:
        target = by_folded.get(column.strip().casefold())
        if target is None and keep_unmapped:
            slug = re.sub(r"[^a-z0-9]+", "_", column.strip().casefold()).strip("_")
            target = f"attributes.{slug}" if slug else "ignore"
        if target and target != "ignore":
            resolved[column] = target
    return resolved


def map_row(
    row: Mapping[str, str | None], columns: Mapping[str, str], occurred_at: datetime | None = None
) -> InquiryDraft:
    """One CSV row as an ``InquiryDraft``; placeholders such as ``Select`` read as blank."""
    contact: dict[str, Any] = {}
    source: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    consent: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    top: dict[str, Any] = {}
    for column, target in columns.items():
        value = row.get(column)
        if is_blank(value):
            continue
        group, _, name = target.partition(".")
        if group == "contact":
            contact[name] = value
        elif group == "source":
            source[name] = value
        elif group == "answers":
            answers[name] = value
        elif group == "consent":
            consent[name] = value
        elif group == "attributes":
            attributes[name] = str(value)
        elif group in ("outcome", "created_at"):
            continue  # history: read by ``imports.history_of`` / ``created_at_of``
        else:
            top[group] = value
    return InquiryDraft(
        contact=contact,
        source=source,
        answers=answers,
        consent=consent or None,
        notes=top.get("notes"),
        rating=top.get("rating"),
        external_id=top.get("external_id"),
        attributes=attributes,
        occurred_at=occurred_at,
    )
