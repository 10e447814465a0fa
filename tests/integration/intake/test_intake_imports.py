"""CSV imports: the X Education export, progress, rejected rows with number and reason."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from leadflow.intake.store import imports as import_store
from leadflow.testing import wait_until
from leadflow.testing.between import write_after_statement
from tests.datasets import X_EDUCATION
from tests.integration.intake.conftest import ADMIN, Intake

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
DATASET = X_EDUCATION


async def finished(intake: Intake, import_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body = (await intake.client.get(f"/v1/imports/{import_id}", headers=ADMIN)).json()
        return body if body["status"] != "running" else None

    return await wait_until(done, timeout=240, interval=0.5, message="import finished")


async def test_x_education_export_imports_unmodified_and_a_reimport_changes_nothing(
    intake: Intake,
) -> None:
    """The real export as it is (no e-mail column): leads identified by Prospect ID, the
    ``Converted`` column as history, every other column kept as attributes; the same file
    again adds no lead and no event."""
    data = DATASET.read_bytes()
    response = await intake.client.post(
        "/v1/imports",
        headers={**ADMIN, "Content-Type": "text/csv"},
        params={"preset": "x-education"},
        content=data,
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert (started["encoding"], started["delimiter"], started["history"]) == ("utf-8", ",", True)
    result = await finished(intake, started["import_id"])
    assert result["status"] == "completed", result
    assert (result["rows_read"], result["accepted"], result["rejected"]) == (9237, 9237, 0)
    assert result["new_leads"] == 9237
    assert result["history"] == {"won": 3559, "lost": 9237 - 3559}
    counts = dict(
        await intake.rows("SELECT event_type, count(*) FROM event_log GROUP BY event_type")
    )
    assert counts == {
        "lead.captured": 9237,
        "history.deal_won": 3559,
        "history.deal_lost": 9237 - 3559,
    }
    [lead] = await intake.rows(
        "SELECT lead_id FROM external_ids WHERE system = 'x-education' "
        "AND external_id = '2a272436-5132-4136-86fa-dcc88c88f482'"
    )
    async with intake.kit.connect() as conn:
        captured, closed = await intake.kit.store.read_stream(conn, lead[0])
    payload: Any = captured.payload
    assert payload.historical is True and payload.contact.email is None
    # The id travels with its system: routing matches CRM outcomes by the pair.
    assert payload.external_id == "2a272436-5132-4136-86fa-dcc88c88f482"
    assert payload.external_system == "x-education"
    assert payload.contact.country == "IN"
    assert payload.contact.city is None  # "Select" reads as blank
    assert payload.attributes["totalvisits"] == "5"
    assert payload.source.utm_source == "Organic Search"
    assert "converted" not in payload.attributes
    assert closed.event_type == "history.deal_lost" and closed.payload.historical is True
    assert closed.occurred_at >= captured.occurred_at  # no dates in the file: import time

    again = await intake.client.post(
        "/v1/imports",
        headers={**ADMIN, "Content-Type": "text/csv"},
        params={"preset": "x-education"},
        content=data,
    )
    result = await finished(intake, again.json()["import_id"])
    assert result["status"] == "completed", result
    assert (result["new_leads"], result["unchanged"], result["matched"]) == (0, 9237, 9237)
    assert await intake.count("SELECT count(*) FROM event_log") == sum(counts.values())


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
    no_identity = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps({"E": "contact.city"})},
        content=b"E\nParis\n",
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert no_identity.status_code == 422
    assert no_identity.json()["title"] == "No identity column"
    not_admin = await intake.client.post(
        "/v1/imports",
        content=b"E\n",
        headers={"X-Api-Key": intake.api_key, "Content-Type": "text/csv"},
    )
    assert not_admin.status_code == 403


async def test_an_imported_leads_event_carries_its_id_with_the_source_system(
    intake: Intake,
) -> None:
    body = "Id,E-mail\n00Q5g00000AbCdE,ext@acme.com\n"
    response = await intake.client.post(
        "/v1/imports",
        params={
            "mapping": json.dumps({"Id": "external_id", "E-mail": "contact.email"}),
            "source_system": "salesforce",
        },
        content=body.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    result = await finished(intake, response.json()["import_id"])
    assert result["new_leads"] == 1, result
    [lead] = await intake.rows(
        "SELECT lead_id FROM external_ids WHERE system = 'salesforce' "
        "AND external_id = '00Q5g00000AbCdE'"
    )
    async with intake.kit.connect() as conn:
        [captured] = await intake.kit.store.read_stream(conn, lead[0])
    payload: Any = captured.payload
    assert (payload.external_id, payload.external_system) == ("00Q5g00000AbCdE", "salesforce")


async def test_an_imports_counts_and_rejected_rows_are_read_at_one_moment(
    intake: Intake,
) -> None:
    """``GET /v1/imports/{id}`` reads the import's counts, then its rejected rows. A batch of
    a running import that commits between the two must not show a rejected row that the
    ``rejected`` count does not have. Here one more rejection (row 9) commits right after the
    first statement: the answer is the moment it started (2 rejected, 2 rows), the next one
    shows both (3 and 3)."""
    body = "E-mail,Land\na@acme.com,DE\n,France\nb@acme.com,Narnia\n"
    response = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps({"E-mail": "contact.email", "Land": "contact.country"})},
        content=body.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    import_id = response.json()["import_id"]
    assert (await finished(intake, import_id))["rejected"] == 2

    async def next_batch() -> None:  # what the import's next batch writes
        async with intake.kit.transaction() as writer:
            await import_store.import_progress(
                writer,
                uuid.UUID(import_id),
                import_store.ImportCounts(rows_read=1, rejected=1),
                [(9, "contact.email", "missing")],
            )

    # between the counts and the rejected rows
    with write_after_statement("fetchrow", "FROM imports", next_batch) as b:
        during = (await intake.client.get(f"/v1/imports/{import_id}", headers=ADMIN)).json()
    after = (await intake.client.get(f"/v1/imports/{import_id}", headers=ADMIN)).json()
    assert b.wrote_after and "FROM imports" in b.wrote_after  # the batch did commit in between
    assert (during["rejected"], [r["row"] for r in during["rejected_rows"]]) == (2, [2, 3])
    assert (after["rejected"], [r["row"] for r in after["rejected_rows"]]) == (3, [2, 3, 9])
