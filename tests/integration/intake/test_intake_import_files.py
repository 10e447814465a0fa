"""Files as people have them through the real app and Postgres: Windows-1252, semicolons,
.xlsx, a NUL byte in one row; a preview that writes nothing; history with dates."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.integration.intake.conftest import ADMIN, Intake
from tests.integration.intake.test_intake_imports import finished

pytestmark = [pytest.mark.postgres]
MAPPING = {"Email": "contact.email", "Name": "contact.first_name", "City": "contact.city"}


async def _import(intake: Intake, body: bytes, **params: str) -> dict[str, Any]:
    response = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps(MAPPING), **params},
        content=body,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    return await finished(intake, response.json()["import_id"])


async def test_a_windows_1252_semicolon_file_imports_instead_of_a_500(intake: Intake) -> None:
    body = "Email;Name;City\nrene@acme.fr;Ren\u00e9e;K\u00f6ln\nzoe@acme.fr;Zo\u00eb;Li\u00e8ge\n"
    result = await _import(intake, body.encode("cp1252"))
    assert result["status"] == "completed", result
    assert (result["accepted"], result["rejected"]) == (2, 0)
    assert result["file"]["encoding"] == "cp1252" and result["file"]["delimiter"] == ";"
    [[contact]] = await intake.rows(
        "SELECT contact FROM leads l JOIN lead_emails e USING (lead_id) "
        "WHERE e.email = 'rene@acme.fr'"
    )
    assert contact["first_name"] == "Ren\u00e9e" and contact["city"] == "K\u00f6ln"


async def test_one_nul_byte_rejects_its_row_only(intake: Intake) -> None:
    body = (
        b"Email,Name,City\n"
        + b"a@acme.com,Ann,Oslo\n"
        + b"b@acme.com,B\x00b,Oslo\n"
        + b"c@acme.com,Cy,Oslo,extra\n"
        + b"d@acme.com,Di,Oslo\n"
    )
    result = await _import(intake, body)
    assert result["status"] == "completed", result
    assert (result["accepted"], result["rejected"], result["new_leads"]) == (2, 2, 2)
    assert [(r["row"], r["reason"]) for r in result["rejected_rows"]] == [
        (2, "NUL byte in the row"),
        (3, "expected 3 columns, found 4"),
    ]


async def test_an_xlsx_workbook_with_history_and_dates(intake: Intake) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Record ID", "Phone", "Stage Won", "Deal Value", "Close Date", "Created"])
    sheet.append(["r-1", "+44 20 7946 0001", "yes", 1200, "2024-03-05", "2024-01-10"])
    sheet.append(["r-2", "+44 20 7946 0002", "no", None, None, "2024-02-01"])
    buffer = io.BytesIO()
    book.save(buffer)
    mapping = {
        "Record ID": "external_id",
        "Phone": "contact.phone",
        "Stage Won": "outcome",
        "Deal Value": "outcome.amount",
        "Close Date": "outcome.closed_at",
        "Created": "created_at",
    }
    response = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps(mapping), "source_system": "old-crm"},
        content=buffer.getvalue(),
        headers={
            **ADMIN,
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["format"] == "xlsx"
    result = await finished(intake, response.json()["import_id"])
    assert result["status"] == "completed", result
    assert result["history"] == {"won": 1, "lost": 1}
    [[lead_id]] = await intake.rows(
        "SELECT lead_id FROM external_ids WHERE system = 'old-crm' AND external_id = 'r-1'"
    )
    async with intake.kit.connect() as conn:
        captured, won = await intake.kit.store.read_stream(conn, lead_id)
    assert captured.occurred_at.date().isoformat() == "2024-01-10"
    assert won.event_type == "history.deal_won"
    assert won.occurred_at.date().isoformat() == "2024-03-05"
    assert str(won.payload.amount) == "1200"  # type: ignore[attr-defined]


async def test_preview_reports_format_mapping_rows_and_problems_and_writes_nothing(
    intake: Intake,
) -> None:
    body = "E-mail;First Name;Converted\na@acme.com;ann;1\nnot-an-email;bob;0\n;;\n"
    before = await intake.count("SELECT count(*) FROM imports")
    response = await intake.client.post(
        "/v1/imports/preview",
        content=body.encode("cp1252"),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert (preview["encoding"], preview["delimiter"]) == ("utf-8", ";")
    assert preview["suggested_mapping"] == {
        "E-mail": "contact.email",
        "First Name": "contact.first_name",
        "Converted": "outcome",
    }
    assert preview["history"] is True
    [row] = preview["rows"]
    assert row["contact"] == {"email": "a@acme.com", "first_name": "Ann"}
    assert row["history"]["outcome"] == "won"
    assert [(p["row"], p["field"]) for p in preview["problems"]] == [(2, "contact.email")]
    assert await intake.count("SELECT count(*) FROM imports") == before
    assert await intake.count("SELECT count(*) FROM event_log") == 0


async def test_an_unreadable_workbook_is_a_422_naming_the_file(intake: Intake) -> None:
    response = await intake.client.post(
        "/v1/imports",
        params={"mapping": json.dumps(MAPPING)},
        content=b"PK\x03\x04 not really a zip",
        headers={**ADMIN, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "file"
