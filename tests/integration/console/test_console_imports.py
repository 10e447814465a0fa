"""Marketing ops import a file from the console against a real intake (Postgres): the
preview shows the detected delimiter and encoding, the proposed mapping and the problems by
row; the import runs, its status fragment (a progress bar of rows read out of the file's
rows) polls until done and lists the rejected rows."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn

from leadflow.console.api import signing_key
from leadflow.console.app import create_app as console_app
from leadflow.console.settings import ConsoleSettings
from leadflow.devstack.procs import free_port
from leadflow.events.access import verifier_of
from leadflow.intake.app import create_app as intake_app
from leadflow.intake.settings import IntakeSettings
from leadflow.testing import app_client, wait_until
from tests.integration.console.test_console_web import ADMIN, PASSWORD, csrf_of

pytestmark = [pytest.mark.postgres]
ISSUER = "http://console.test"
# Semicolons, Windows-1252; row 3 has a NUL byte, row 4 one column too many.
FILE = (
    "Email;Name;City\nrene@acme.fr;Ren\u00e9e;K\u00f6ln\n".encode("cp1252")
    + b"bob@acme.fr;B\x00b;Paris\n"
    + b"cy@acme.fr;Cy;Lyon;extra\n"
    + b"di@acme.fr;Di;Nice\n"
)


async def test_marketing_ops_preview_then_import_a_semicolon_file_with_rejected_rows(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    intake = intake_app(
        settings_for(
            IntakeSettings,
            port=port,
            run_consumers=False,
            auth_issuer=ISSUER,
            intake_ip_rate_per_second=1000.0,
            intake_ip_burst=1000,
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(intake, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    console = console_app(
        settings_for(
            ConsoleSettings, auth_issuer=ISSUER, console_intake_url=f"http://127.0.0.1:{port}"
        )
    )
    try:
        await wait_until(lambda: server.started, timeout=90, message="intake started")
        async with app_client(console) as client:
            verifier_of(intake.state.kit).add_local_keys(signing_key(console.state.kit).jwks())
            made = await client.post(
                "/v1/users",
                headers=ADMIN,
                json={
                    "email": "mo@example.com",
                    "name": "Mo",
                    "password": PASSWORD,
                    "roles": ["marketing_ops"],
                },
            )
            assert made.status_code == 201, made.text
            login = await client.get("/login")
            r = await client.post(
                "/login",
                data={
                    "username": "mo@example.com",
                    "password": PASSWORD,
                    "csrf_token": csrf_of(login.text),
                },
            )
            assert r.status_code == 303, r.text

            page = await client.get("/imports")
            assert page.status_code == 200 and 'href="/imports"' in page.text, page.text
            csrf = csrf_of(page.text)
            files = {"file": ("people.csv", FILE, "text/csv")}

            shown = await client.post("/imports/preview", data={"csrf_token": csrf}, files=files)
            assert shown.status_code == 200, shown.text
            assert re.search(r'id="preview-delimiter"><code>;</code>', shown.text), shown.text
            assert 'id="preview-encoding">cp1252' in shown.text, shown.text
            assert "contact.email" in shown.text  # the mapping proposed from the header
            assert "city: K\u00f6ln" in shown.text  # a first row, decoded and normalised
            problems = re.search(r'id="preview-problems".*?</table>', shown.text, re.S)
            assert problems and "NUL byte in the row" in problems.group(0), shown.text
            assert "expected 3 columns, found 4" in problems.group(0)

            mapping = {
                "Email": "contact.email",
                "Name": "contact.first_name",
                "City": "contact.city",
            }
            started = await client.post(
                "/imports",
                data={"csrf_token": csrf, "mapping": json.dumps(mapping), "source_system": "fair"},
                files=files,
                headers={"HX-Request": "true"},
            )
            assert started.status_code == 200 and 'id="import-status"' in started.text
            import_id = re.search(r'hx-get="/imports/([0-9a-f-]+)"', started.text)
            assert import_id, started.text  # running: the fragment polls its status

            async def done() -> str | None:
                r = await client.get(f"/imports/{import_id.group(1)}", headers={"HX-Request": "1"})
                return r.text if 'id="import-state">completed' in r.text else None

            status = await wait_until(done, timeout=60, interval=0.3, message="import done")
            assert "hx-trigger" not in status  # finished: no more polling
            assert 'id="import-accepted">2<' in status and 'id="import-rejected">2<' in status
            # The progress bar: every row of the file read, of the rows counted up front.
            assert '<progress id="import-progress" max="4" value="4">' in status, status
            assert "4 of 4 rows (100%)" in status
            rows = re.findall(r"<tr><td>(\d+)</td><td>[^<]*</td><td>([^<]+)</td></tr>", status)
            assert rows == [("2", "NUL byte in the row"), ("3", "expected 3 columns, found 4")]

            whole = await client.get(f"/imports/{import_id.group(1)}")
            assert "<!doctype html>" in whole.text and "NUL byte in the row" in whole.text

            bad = await client.post(
                "/imports", data={"csrf_token": csrf, "mapping": "{"}, files=files
            )
            assert "mapping: not valid JSON" in bad.text
            unmapped = await client.post("/imports", data={"csrf_token": csrf}, files=files)
            assert "Not imported" in unmapped.text and "mapping" in unmapped.text
    finally:
        server.should_exit = True
        await task
