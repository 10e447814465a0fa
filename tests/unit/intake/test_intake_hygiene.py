"""Data hygiene: emails, phones, countries, names, websites, domain flags, whole contacts."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadflow.intake import domain
from leadflow.intake.domain import HygieneError


def test_email_is_trimmed_and_lower_cased() -> None:
    assert domain.normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"


@pytest.mark.parametrize(
    "bad", ["", "jane", "jane@", "@acme.com", "jane@@acme.com", "jane doe@acme.com", "jane@acme"]
)
def test_bad_email_syntax_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        domain.normalize_email(bad)


@given(
    local=st.from_regex(r"[A-Za-z0-9]{1,12}(\.[A-Za-z0-9]{1,8})?", fullmatch=True),
    host=st.from_regex(r"[A-Za-z]{2,10}\.(com|org|io|co\.uk)", fullmatch=True),
)
def test_email_normalisation_is_idempotent_and_case_blind(local: str, host: str) -> None:
    email = f"{local}@{host}"
    once = domain.normalize_email(email)
    assert domain.normalize_email(once) == once
    assert domain.normalize_email(email.upper()) == once


def _validator_verdict(raw: str) -> str:
    """What ``email_validator`` alone says (the reference the fast path must match)."""
    candidate = raw.strip()
    if not candidate:
        return "error: email is empty"
    try:
        return validate_email(candidate, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        return f"error: {exc}"


def _our_verdict(raw: str) -> str:
    try:
        return domain.normalize_email(raw)
    except ValueError as exc:
        return f"error: {exc}"


DOMAINS = [
    "acme.com", "Acme.COM", "mail.co.uk", "xn--bcher-kva.example", "bücher.example",
    "localhost", "acme", "acme.com.", "-acme.com", "acme..com", "a_b.com", "acme.test",
    "invalid", "x.onion", "[192.168.0.1]", "acme.com@other.com", "b" * 250 + ".com",
    "a" * 64 + ".com", "ex ample.com", "\u00e9cole.fr", "acme.c0m",
]  # fmt: skip


@settings(max_examples=300)
@given(
    local=st.one_of(
        st.from_regex(r"[A-Za-z0-9_+.-]{0,70}", fullmatch=True),
        st.text(min_size=0, max_size=12),
    ),
    host=st.one_of(st.sampled_from(DOMAINS), st.from_regex(r"[a-zA-Z0-9.-]{0,20}", fullmatch=True)),
    pad=st.sampled_from(["", " ", "  "]),
)
@example(local="jane.doe", host="a" * 200 + ".com", pad="")
@example(local="j" * 64, host="b" * 185 + ".com", pad="")
def test_email_normalisation_gives_exactly_the_validators_verdict(
    local: str, host: str, pad: str
) -> None:
    """Addresses at a domain already seen skip re-checking it; the answer (value or error
    message) must still be the validator's own, for any input. Each domain is seen twice
    here, so both the cached and the uncached path are compared."""
    raw = f"{pad}{local}@{host}{pad}"
    assert _our_verdict(raw) == _validator_verdict(raw)
    assert _our_verdict(raw) == _validator_verdict(raw)


def test_phone_becomes_e164_using_the_country_as_region() -> None:
    assert domain.normalize_phone("098765 43210", "IN") == "+919876543210"
    assert domain.normalize_phone("+1 (415) 555-0100") == "+14155550100"
    assert domain.normalize_phone("020 7946 0958", "GB") == "+442079460958"


def test_phone_without_country_code_or_region_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="country code"):
        domain.normalize_phone("415 555 0100")
    with pytest.raises(ValueError):
        domain.normalize_phone("12", "US")
    with pytest.raises(ValueError):
        domain.normalize_phone("call me maybe", "US")


@given(st.integers(min_value=2012000000, max_value=9899999999))
def test_us_numbers_round_trip_through_e164(n: int) -> None:
    e164 = domain.normalize_phone(str(n), "US")
    assert e164 == f"+1{n}"
    assert domain.normalize_phone(e164) == e164


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("India", "IN"),
        ("United States", "US"),
        ("USA", "US"),
        ("us", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("United Arab Emirates", "AE"),
        ("Russia", "RU"),
        ("Vietnam", "VN"),
        ("Hong Kong", "HK"),
        ("Tanzania", "TZ"),
        ("DEU", "DE"),
        ("de", "DE"),
        ("  south   korea ", "KR"),
        ("Germany", "DE"),
    ],
)
def test_country_names_codes_and_aliases_become_alpha2(raw: str, code: str) -> None:
    assert domain.normalize_country(raw) == code


@pytest.mark.parametrize(
    "raw", [None, "", "  ", "Select", "select", "unknown", "Asia/Pacific Region", "N/A"]
)
def test_country_placeholders_and_regions_give_none(raw: str | None) -> None:
    assert domain.normalize_country(raw) is None


def test_unknown_country_is_refused() -> None:
    with pytest.raises(ValueError, match="Narnia"):
        domain.normalize_country("Narnia")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  jane  ", "Jane"),
        ("JANE", "Jane"),
        ("jean-luc", "Jean-Luc"),
        ("o'neil", "O'Neil"),
        ("ludwig van beethoven", "Ludwig van Beethoven"),
        ("McDonald", "McDonald"),
        ("van der Berg", "van der Berg"),
        ("Select", None),
        ("", None),
    ],
)
def test_names_are_trimmed_and_capitalised_but_mixed_case_is_kept(
    raw: str, clean: str | None
) -> None:
    assert domain.normalize_name(raw) == clean


@given(st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Zs")), max_size=40))
@example("\u0149")  # upper-cases to an uncased apostrophe + "N" (once found by hypothesis)
@example("\u00dfa \u0130\u0130")
def test_name_normalisation_is_idempotent(raw: str) -> None:
    once = domain.normalize_name(raw)
    assert domain.normalize_name(once) == once


def test_free_mail_disposable_and_role_addresses_are_flagged() -> None:
    flags = domain.hygiene_flags("someone@gmail.com")
    assert flags.free_mail and not flags.disposable and not flags.role_address
    assert domain.hygiene_flags("x@eu.mailinator.com").disposable
    assert domain.hygiene_flags("info@acme.com").role_address
    assert domain.hygiene_flags("sales+emea@acme.com").role_address
    plain = domain.hygiene_flags("jane@acme.com")
    assert not (plain.free_mail or plain.disposable or plain.role_address)


def test_company_domain_ignores_free_mail_and_falls_back_to_website() -> None:
    assert domain.company_domain("jane@acme.com", None) == "acme.com"
    assert domain.company_domain("jane@gmail.com", "https://www.acme.io/about") == "acme.io"
    assert domain.company_domain("jane@gmail.com", None) is None


def test_website_is_normalised_and_garbage_refused() -> None:
    assert domain.normalize_website("WWW.Acme.com/") == "https://www.acme.com"
    with pytest.raises(ValueError):
        domain.normalize_website("not a site")


def test_clean_contact_reports_every_bad_field_at_once() -> None:
    with pytest.raises(HygieneError) as info:
        domain.clean_contact({"email": "nope", "phone": "xx", "country": "Narnia"})
    fields = {e.field for e in info.value.errors}
    assert fields == {"contact.email", "contact.phone", "contact.country"}


def test_clean_contact_requires_an_email_when_asked() -> None:
    with pytest.raises(HygieneError) as info:
        domain.clean_contact({"first_name": "Jane"})
    assert [e.field for e in info.value.errors] == ["contact.email"]
    assert domain.clean_contact({"first_name": "Jane"}, require_email=False).contact.email is None


def test_clean_contact_normalises_everything() -> None:
    clean = domain.clean_contact(
        {
            "email": " Jane@ACME.com",
            "first_name": "jane",
            "last_name": "DOE",
            "phone": "98765 43210",
            "country": "India",
            "city": "mumbai",
            "company": " Acme  Ltd ",
        }
    )
    c = clean.contact
    assert (c.email, c.first_name, c.last_name, c.phone, c.country, c.city, c.company) == (
        "jane@acme.com",
        "Jane",
        "Doe",
        "+919876543210",
        "IN",
        "Mumbai",
        "Acme Ltd",
    )
    assert clean.email_domain == "acme.com" and clean.company_domain == "acme.com"


def test_clean_inquiry_defaults_channel_and_parses_consent_and_rating() -> None:
    draft = domain.InquiryDraft(
        contact={"email": "a@acme.com"},
        source={"campaign": "spring"},
        consent={"marketing_opt_in": "yes", "text_version": "v2"},
        rating="HOT",
    )
    inquiry = domain.clean_inquiry(draft, channel="api")
    assert inquiry.source.channel == "api" and inquiry.source.campaign == "spring"
    assert inquiry.consent is not None and inquiry.consent.marketing_opt_in
    assert inquiry.consent.text_version == "v2" and inquiry.rating == "hot"


def test_clean_inquiry_refuses_a_bad_rating_and_bad_consent_with_field_names() -> None:
    draft = domain.InquiryDraft(
        contact={"email": "a@acme.com"}, consent={"marketing_opt_in": "perhaps"}, rating="lukewarm"
    )
    with pytest.raises(HygieneError) as info:
        domain.clean_inquiry(draft, channel="api")
    assert {e.field for e in info.value.errors} == {"consent.marketing_opt_in", "rating"}


def test_do_not_email_means_no_consent_and_its_absence_means_unknown() -> None:
    assert domain.clean_consent({"do_not_email": "Yes"}, default_source="import") == (
        domain.ConsentRecord(marketing_opt_in=False, source="import")
    )
    assert domain.clean_consent({"do_not_email": "No"}, default_source="import") is None


def test_rate_limiter_allows_a_burst_then_says_when_to_retry() -> None:
    from leadflow.intake.security import RateLimiter

    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.check("k", now=0.0) for _ in range(3)] == [None, None, None]
    retry = limiter.check("k", now=0.0)
    assert retry is not None and 0.4 < retry <= 0.5
    assert limiter.check("other", now=0.0) is None  # subjects are independent
    assert limiter.check("k", now=0.5) is None


def test_api_keys_are_random_and_only_their_hash_is_kept() -> None:
    from leadflow.intake.security import generate_api_key, hash_api_key

    a, b = generate_api_key(), generate_api_key()
    assert a != b and a.startswith("lf_") and len(a) > 40
    assert hash_api_key(a) == hash_api_key(a) and a not in hash_api_key(a)


def test_sealed_personal_fields_open_only_with_the_key() -> None:
    import uuid

    from leadflow.intake import crypto

    key, event_id = crypto.new_key(), uuid.uuid4()
    data = {"contact": {"email": "jane@acme.com"}, "notes": "met at booth", "rating": "hot"}
    sealed = crypto.seal(key, event_id, data, frozenset({"contact", "notes"}))
    assert "jane" not in str(sealed) and sealed["contact"] == {} and sealed["notes"] is None
    assert sealed["rating"] == "hot"
    assert crypto.unseal(key, sealed) == data
    assert crypto.unseal(None, sealed) == {"contact": {}, "notes": None, "rating": "hot"}
    assert crypto.unseal(crypto.new_key(), sealed)["contact"] == {}
