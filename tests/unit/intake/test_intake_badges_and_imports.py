"""Badge payloads (vCard 3/4, MECARD) and CSV column mapping (incl. the X Education export)."""

from __future__ import annotations

import csv

import pytest

from leadflow.intake import domain
from leadflow.intake.domain import BadgeFormatError
from tests.datasets import X_EDUCATION

VCARD3 = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;John;;;\r\nFN:John Doe\r\n"
    "ORG:Acme Inc.;Sales\r\nTITLE:VP\\, Sales\r\n"
    "EMAIL;TYPE=INTERNET:john@home.example\r\n"
    "item1.EMAIL;TYPE=INTERNET,WORK:john@acme.com\r\n"
    "TEL;TYPE=WORK:+44 20 7946 0958\r\n"
    "ADR;TYPE=WORK:;;1 Long\r\n  Road;London;;SW1;United Kingdom\r\nEND:VCARD\r\n"
)
VCARD4 = (
    "BEGIN:VCARD\nVERSION:4.0\nFN:Priya Sharma\nEMAIL;PREF=1:priya@infy.example\n"
    "TEL;VALUE=uri;TYPE=work:tel:+91-98765-43210\nURL:https://infy.example\nEND:VCARD"
)
DATASET = X_EDUCATION


def test_vcard3_is_parsed_with_folding_escapes_groups_and_work_email() -> None:
    fields = domain.parse_badge(VCARD3)
    assert fields == {
        "last_name": "Doe",
        "first_name": "John",
        "company": "Acme Inc.",
        "department": "Sales",
        "title": "VP, Sales",
        "email": "john@acme.com",
        "phone": "+44 20 7946 0958",
        "city": "London",
        "country": "United Kingdom",
    }


def test_vcard4_uses_fn_and_tel_uri() -> None:
    fields = domain.parse_badge(VCARD4)
    assert fields["first_name"] == "Priya" and fields["last_name"] == "Sharma"
    assert fields["phone"] == "+91-98765-43210" and fields["email"] == "priya@infy.example"
    clean = domain.clean_contact(fields)
    assert clean.contact.phone == "+919876543210"


def test_mecard_is_parsed_with_escaped_separators() -> None:
    fields = domain.parse_badge(
        r"MECARD:N:Doe,Jane;ORG:Smith\; Sons;TEL:+14155550100;EMAIL:jane@acme.com;;"
    )
    assert fields == {
        "last_name": "Doe",
        "first_name": "Jane",
        "company": "Smith; Sons",
        "phone": "+14155550100",
        "email": "jane@acme.com",
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("BEGIN:VCARD\nVERSION:3.0\nFN:X\n", "END:VCARD"),
        ("BEGIN:VCARD\nFN:X\nEND:VCARD", "VERSION"),
        ("BEGIN:VCARD\nVERSION:3.0\nthis line is broken\nEND:VCARD", "line 3"),
        ("MECARD:N:Doe,Jane", ";;"),
        ("MECARD:;;", "no fields"),
        ("hello world", "neither"),
    ],
)
def test_malformed_badges_get_a_clear_error(payload: str, message: str) -> None:
    with pytest.raises(BadgeFormatError, match=message):
        domain.parse_badge(payload)


def test_mapping_refuses_unknown_targets_naming_the_column() -> None:
    errors = domain.mapping_errors({"E-mail": "contact.email", "Foo": "contact.shoe_size"})
    assert [e.field for e in errors] == ["mapping.Foo"]


def test_unmapped_columns_are_kept_as_attributes_when_asked() -> None:
    cols = domain.resolve_mapping(
        ["Email", "TotalVisits", "Converted"], domain.X_EDUCATION_MAPPING, keep_unmapped=True
    )
    assert cols == {
        "Email": "contact.email",
        "TotalVisits": "attributes.totalvisits",
        "Converted": "outcome",  # history: the preset reads it as the outcome
    }
    assert domain.resolve_mapping(["TotalVisits"], {}, keep_unmapped=False) == {}


def test_select_reads_as_blank_in_an_import_row() -> None:
    cols = domain.resolve_mapping(
        ["Email", "City", "Country", "Do Not Email"],
        domain.X_EDUCATION_MAPPING,
        keep_unmapped=False,
    )
    draft = domain.map_row(
        {"Email": "a@b.com", "City": "Select", "Country": "India", "Do Not Email": "Yes"}, cols
    )
    assert draft.contact == {"email": "a@b.com", "country": "India"}
    inquiry = domain.clean_inquiry(draft, channel="import")
    assert inquiry.clean.contact.country == "IN" and inquiry.clean.contact.city is None
    assert inquiry.consent is not None and inquiry.consent.marketing_opt_in is False


def test_every_x_education_row_maps_and_cleans_once_an_email_is_given() -> None:
    with DATASET.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = domain.resolve_mapping(
            [*(reader.fieldnames or []), "Email"], domain.X_EDUCATION_MAPPING, keep_unmapped=True
        )
        rows = 0
        countries: set[str | None] = set()
        for row in reader:
            row["Email"] = f"lead{row['Lead Number']}@example.org"
            inquiry = domain.clean_inquiry(domain.map_row(row, cols), channel="import")
            assert inquiry.external_id == row["Prospect ID"]
            countries.add(inquiry.clean.contact.country)
            rows += 1
    assert rows == 9237
    assert {"IN", "US", "AE", None} <= countries
