"""CSV imports: the X Education export, progress, rejected rows with number and reason."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from leadflow.events.testing import wait_until
from tests.datasets import X_EDUCATION
from tests.integration.intake.conftest import ADMIN, Intake

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
DATASET = X_EDUCATION


def synthesise_emails(upload: Path) -> list[int]:
    """The export has no email: the test makes one per row, every 97th one broken."""
    bad_rows: list[int] = []
    with DATASET.open(newline="") as src, upload.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, [*(reader.fieldnames or []), "Email"])
        writer.writeheader()
        total = 0
        for number, row in enumerate(reader, start=1):
            if number % 97 == 0:
                row["Email"] = f"lead {row['Lead Number']} at example"
                bad_rows.append(number)
            else:
                row["Email"] = f"lead{row['Lead Number']}@example.org"
            writer.writerow(row)
            total += 1
    assert total == 9237
    return bad_rows


async def finished(intake: Intake, import_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body = (await intake.client.get(f"/v1/imports/{import_id}", headers=ADMIN)).json()
        return body if body["status"] != "running" else None

    return await wait_until(done, timeout=240, interval=0.5, message="import finished")


async def test_x_education_export_imports_with_correct_accepted_and_rejected_counts(
    intake: Intake,
    tmp_path: Path,
) -> None:
    upload = tmp_path / "leads.csv"
    bad_rows = synthesise_emails(upload)
    with upload.open("rb") as fh:
        response = await intake.client.post(
            "/v1/imports",
            headers=ADMIN,
            data={"preset": "x-education"},
            files={"file": ("leads.csv", fh, "text/csv")},
        )
    assert response.status_code == 202, response.text
    result = await finished(intake, response.json()["import_id"])
    assert result["status"] == "completed"
    assert result["rows_read"] == 9237
    assert result["rejected"] == len(bad_rows) == 95
    assert result["accepted"] == 9237 - 95 == result["new_leads"]
    assert [r["row"] for r in result["rejected_rows"]] == bad_rows
    assert all(r["field"] == "contact.email" for r in result["rejected_rows"])
    assert (
        await intake.count("SELECT count(*) FROM event_log WHERE event_type = 'lead.captured'")
        == 9237 - 95
    )
    # Select reads as blank; countries are ISO codes; extra columns kept as attributes
    [lead] = await intake.rows(
        "SELECT e.lead_id FROM lead_emails e WHERE email = 'lead660728@example.org'"
    )
    async with intake.kit.connect() as conn:
        [event] = await intake.kit.store.read_stream(conn, lead[0])
    payload = event.payload
    assert payload.contact.country == "IN"  # type: ignore[attr-defined]
    assert payload.contact.city is None  # type: ignore[attr-defined]
    assert payload.external_id == "2a272436-5132-4136-86fa-dcc88c88f482"  # type: ignore[attr-defined]
    assert payload.attributes["totalvisits"] == "5"  # type: ignore[attr-defined]
    assert payload.source.utm_source == "Organic Search"  # type: ignore[attr-defined]


async def test_text_csv_body_with_a_mapping_and_repeated_people(intake: Intake) -> None:
    body = (
        "E-mail,Given,Family,Land\n"
        "a@acme.com,ann,lee,Germany\n"
        "A@ACME.com,Ann,Lee,DE\n"
        ",nobody,here,France\n"
        "b@acme.com,bob,ray,Narnia\n"
    )
    mapping = {
        "E-mail": "contact.email",
        "Given": "contact.first_name",
        "Family": "contact.last_name",
        "Land": "contact.country",
    }
    response = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps(mapping)},
        content=body.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    result = await finished(intake, response.json()["import_id"])
    assert (result["accepted"], result["rejected"], result["new_leads"], result["matched"]) == (
        2,
        2,
        1,
        1,
    )
    assert [(r["row"], r["field"]) for r in result["rejected_rows"]] == [
        (3, "contact.email"),
        (4, "contact.country"),
    ]


async def test_import_refuses_bad_mappings_before_reading_rows(intake: Intake) -> None:
    bad = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps({"E": "contact.shoe"})},
        content=b"E\na@b.com\n",
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "mapping.E"
    no_email = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps({"E": "contact.city"})},
        content=b"E\nParis\n",
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert no_email.status_code == 422
    not_admin = await intake.client.post(
        "/v1/imports",
        content=b"E\n",
        headers={"X-Api-Key": intake.api_key, "Content-Type": "text/csv"},
    )
    assert not_admin.status_code == 403
