"""Identity resolution, updates by recency, merges (consent never widened), account match."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from leadflow.intake import domain
from leadflow.intake.domain import Account, AccountMatch, ConsentRecord, Contact, KnownLead, Profile

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def clean(**fields: str) -> domain.CleanContact:
    return domain.clean_contact(fields, require_email=False)


def test_same_normalised_email_is_the_same_lead() -> None:
    known = [KnownLead(A, emails=frozenset({"jane@acme.com"}))]
    decision = domain.resolve_identity(clean(email="JANE@Acme.com "), known)
    assert decision == domain.IdentityDecision("same", A, "same_email")


def test_same_phone_is_a_probable_duplicate() -> None:
    known = [KnownLead(A, emails=frozenset({"j@acme.com"}), phone="+14155550100")]
    decision = domain.resolve_identity(clean(email="jd@other.com", phone="+1 415 555 0100"), known)
    assert decision == domain.IdentityDecision("probable_duplicate", A, "same_phone")


def test_same_name_at_same_company_domain_is_a_probable_duplicate() -> None:
    known = [
        KnownLead(
            A,
            emails=frozenset({"jane@acme.com"}),
            first_name="Jane",
            last_name="Doe",
            company_domain="acme.com",
        )
    ]
    d = domain.resolve_identity(
        clean(email="j.doe@acme.com", first_name="JANE", last_name="doe"), known
    )
    assert d == domain.IdentityDecision("probable_duplicate", A, "same_name_and_domain")


def test_same_name_on_free_mail_is_not_a_duplicate() -> None:
    known = [
        KnownLead(
            A,
            emails=frozenset({"jane@gmail.com"}),
            first_name="Jane",
            last_name="Doe",
            company_domain=None,
        )
    ]
    d = domain.resolve_identity(
        clean(email="jane.doe@gmail.com", first_name="Jane", last_name="Doe"), known
    )
    assert d.kind == "new"


def test_email_match_beats_phone_match_and_oldest_wins_among_equals() -> None:
    known = [
        KnownLead(A, emails=frozenset({"x@acme.com"}), phone="+14155550100"),
        KnownLead(B, emails=frozenset({"jane@acme.com"})),
        KnownLead(C, emails=frozenset({"y@acme.com"}), phone="+14155550100"),
    ]
    assert (
        domain.resolve_identity(clean(email="jane@acme.com", phone="+14155550100"), known).lead_id
        == B
    )
    assert (
        domain.resolve_identity(clean(email="new@acme.com", phone="+14155550100"), known).lead_id
        == A
    )


def test_newer_values_update_the_profile_but_late_arrivals_do_not_overwrite() -> None:
    profile = Profile(A, Contact(email="j@acme.com", title="CTO"), {"title": T0})
    updated, changed = domain.apply_contact(
        profile, Contact(title="CEO", city="Pune"), T0 + timedelta(hours=1)
    )
    assert changed == ["title", "city"] and updated.contact.title == "CEO"
    # a badge scanned before the correction, uploaded after it
    late, changed = domain.apply_contact(updated, Contact(title="VP"), T0)
    assert changed == [] and late.contact.title == "CEO"


def test_merge_takes_each_field_from_the_most_recent_record() -> None:
    survivor = Profile(
        A,
        Contact(email="a@acme.com", title="CTO", city="Pune"),
        {"email": T0, "title": T0, "city": T0 + timedelta(days=2)},
    )
    other = Profile(
        B,
        Contact(email="b@acme.com", title="CEO", phone="+14155550100"),
        {"email": T0 + timedelta(days=1), "title": T0 + timedelta(days=1), "phone": T0},
    )
    outcome = domain.merge_profiles(survivor, other)
    assert outcome.contact.title == "CEO" and outcome.contact.city == "Pune"
    assert outcome.contact.phone == "+14155550100"
    assert outcome.field_sources["title"] == str(B) and outcome.field_sources["city"] == str(A)


def test_merge_takes_the_persons_latest_answer_and_never_infers_one() -> None:
    early, late = T0, T0 + timedelta(days=1)
    yes = ConsentRecord(marketing_opt_in=True, text_version="v1", given_at=early)
    no_later = ConsentRecord(marketing_opt_in=False, given_at=late)
    unticked = ConsentRecord(marketing_opt_in=False, stated=False, given_at=late)
    contact = Contact(email="a@acme.com")

    def merged(a: ConsentRecord | None, b: ConsentRecord | None) -> domain.MergeOutcome:
        return domain.merge_profiles(Profile(A, contact, {}, a), Profile(B, contact, {}, b))

    # unknown is not an answer: it neither narrows an opt-in nor widens an opt-out
    assert merged(yes, None).consent == yes and not merged(yes, None).consent_changed
    assert merged(None, no_later).consent == no_later
    assert merged(no_later, None).consent == no_later
    # a box left unticked never overrides what the person said, however recent
    assert merged(yes, unticked).consent == yes and not merged(yes, unticked).consent_changed
    # two answers: the later one is the person's current wish
    assert merged(yes, no_later).consent == no_later and merged(yes, no_later).consent_changed
    assert merged(no_later, yes).consent == no_later


consents = st.one_of(
    st.none(),
    st.builds(
        ConsentRecord,
        marketing_opt_in=st.booleans(),
        stated=st.booleans(),
        given_at=st.one_of(st.none(), st.sampled_from([T0, T0 + timedelta(hours=1)])),
    ),
)


@given(consents, consents)
def test_merge_never_invents_consent(a: ConsentRecord | None, b: ConsentRecord | None) -> None:
    """The merged consent is always one of the two records: opted in only if a record the
    person gave says so, opted out only if one says so."""
    outcome = domain.merged_consent(a, b)
    assert outcome in (a, b)
    if a is not None and b is not None and a.stated and not b.stated:
        assert outcome == a  # an unticked box never beats an answer


def test_consent_change_only_when_the_stated_consent_differs() -> None:
    yes = ConsentRecord(marketing_opt_in=True)
    no = ConsentRecord(marketing_opt_in=False)
    unticked = ConsentRecord(marketing_opt_in=False, stated=False)
    assert domain.consent_change(None, None) is None
    assert domain.consent_change(yes, yes) is None
    assert domain.consent_change(yes, no) == no
    assert domain.consent_change(None, yes) == yes
    # a second inquiry with the newsletter box unticked is "unknown", never "no"
    assert domain.consent_change(yes, unticked) is None
    # ... while on a lead with no answer yet it records "not given"
    assert domain.consent_change(None, unticked) == unticked


def test_merge_keeps_the_business_address_primary_and_the_private_one_secondary() -> None:
    work = Profile(A, Contact(email="jane@acme.com", phone="+14155550100"), {"email": T0})
    private = Profile(
        B, Contact(email="jane.doe@gmail.com", phone="+14155550100"),
        {"email": T0 + timedelta(days=1)},
    )  # fmt: skip
    outcome = domain.merge_profiles(work, private)
    assert outcome.contact.email == "jane@acme.com"
    assert outcome.contact.secondary_emails == ["jane.doe@gmail.com"]
    assert outcome.field_sources["email"] == str(A)
    # the other way round (the survivor is the private address): the work one is promoted
    outcome = domain.merge_profiles(private, work)
    assert outcome.contact.email == "jane@acme.com"
    assert outcome.contact.secondary_emails == ["jane.doe@gmail.com"]
    # two business addresses: the newer is primary, the other is kept
    newer = Profile(B, Contact(email="jane@acme.io"), {"email": T0 + timedelta(days=1)})
    outcome = domain.merge_profiles(work, newer)
    assert outcome.contact.email == "jane@acme.io"
    assert outcome.contact.secondary_emails == ["jane@acme.com"]


def test_a_repeat_inquiry_from_a_private_alias_keeps_the_work_address_primary() -> None:
    profile = Profile(A, Contact(email="jane@acme.com"), {"email": T0})
    updated, changed = domain.apply_contact(
        profile, Contact(email="jane.doe@gmail.com"), T0 + timedelta(days=1)
    )
    assert updated.contact.email == "jane@acme.com"
    assert updated.contact.secondary_emails == ["jane.doe@gmail.com"]
    assert changed == ["secondary_emails"]


def test_account_is_matched_on_company_domain_and_parent_domains() -> None:
    accounts = {"acme.com": Account("acct-1", "acme.com", "Acme", "rep-7")}
    match = domain.match_account(clean(email="jane@eu.acme.com"), accounts)
    assert match is not None and match.account_id == "acct-1"
    # an owner an older intake stored is not forwarded: account owners are routing's
    assert match.owner_rep_id is None


def test_free_mail_never_matches_an_account() -> None:
    accounts = {"gmail.com": Account("acct-x", "gmail.com")}
    assert domain.match_account(clean(email="jane@gmail.com"), accounts) is None


def test_unknown_company_gets_a_stable_implicit_account() -> None:
    a = domain.match_account(clean(email="a@newco.io", company="NewCo"), {})
    b = domain.match_account(clean(email="b@NEWCO.io"), {})
    assert a is not None and b is not None and a.account_id == b.account_id
    assert a.domain == "newco.io" and a.name == "NewCo"


def test_only_a_registered_account_is_marked_registered() -> None:
    accounts = {"acme.com": Account("acct-1", "acme.com", "Acme")}
    registered = domain.match_account(clean(email="jane@eu.acme.com"), accounts)
    implicit = domain.match_account(clean(email="a@newco.io", company="NewCo"), accounts)
    assert registered is not None and registered.registered is True
    assert implicit is not None and implicit.registered is False


def test_an_older_account_fact_without_registered_is_read_from_its_id() -> None:
    # Events written before ``registered`` existed: the implicit id (uuid5 of the domain)
    # says "domain match"; any other id was registered through the accounts API.
    implicit = AccountMatch.model_validate(
        {"account_id": domain.implicit_account_id("newco.io"), "domain": "newco.io"}
    )
    known = AccountMatch.model_validate({"account_id": "acct-1", "domain": "acme.com"})
    assert implicit.registered is False and known.registered is True
    assert (
        AccountMatch.model_validate(
            {"account_id": "acct-1", "domain": "acme.com", "registered": False}
        ).registered
        is False
    )
