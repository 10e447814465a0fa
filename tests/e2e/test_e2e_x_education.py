"""The X Education export (9,237 real leads) through all five services as real processes.

The file is read unmodified from ``../shared/datasets`` (``tests/datasets.py``): it has no
e-mail column, so its leads are identified by ``Prospect ID``, and ``Converted`` is their
history. Imported with the ``x-education`` preset, the history must reach every service as
history: analytics' funnel reads exactly the file (inquiries = rows, won = converted rows,
lost = the others, in the import's cohort), scoring keeps every outcome for training, and
nothing is qualified, nurtured, routed or put under an SLA — re-importing the file changes
nothing.
"""

from __future__ import annotations

import csv
import time
from typing import Any

import httpx
import pytest

from leadflow.testing import wait_until
from tests.datasets import X_EDUCATION

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(600),
]


def _file_counts() -> tuple[int, int]:
    with X_EDUCATION.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return len(rows), sum(1 for r in rows if r["Converted"].strip() == "1")


def _say(message: str) -> None:
    print(f"[e2e x-education] {message}", flush=True)


@pytest.mark.skipif(not X_EDUCATION.exists(), reason=f"dataset not found at {X_EDUCATION}")
async def test_x_education_history_reaches_every_service_as_history(e2e_stack: Any) -> None:
    rows, converted = _file_counts()
    assert (rows, converted) == (9237, 3559)
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60, headers=admin) as client:

        async def import_file() -> dict[str, Any]:
            r = await client.post(
                f"{e.intake}/v1/imports",
                params={"preset": "x-education"},
                headers={"Content-Type": "text/csv"},
                content=X_EDUCATION.read_bytes(),
            )
            assert r.status_code == 202, r.text
            progress: dict[str, Any] = {}

            async def done() -> bool:
                nonlocal progress
                url = f"{e.intake}/v1/imports/{r.json()['import_id']}"
                progress = (await client.get(url)).json()
                return progress["status"] != "running"

            await wait_until(done, timeout=240, interval=0.5, message="import finished")
            assert progress["status"] == "completed", progress
            return progress

        first = await import_file()
        assert (first["accepted"], first["rejected"], first["new_leads"]) == (rows, 0, rows)
        assert first["history"] == {"won": converted, "lost": rows - converted}
        want = {"inquiry": rows, "mql": converted, "sal": converted, "sql": converted,
                "opportunity": converted, "won": converted}  # fmt: skip
        funnel: dict[str, Any] = {}

        async def funnel_matches() -> bool:
            nonlocal funnel
            funnel = (await client.get(f"{e.analytics}/v1/funnel")).json()
            # the lost histories too (each lead's capture and close may fold apart)
            return {r["stage"]: r["count"] for r in funnel["waterfall"]} == want and funnel[
                "outcomes"
            ]["lost"] == rows - converted

        try:
            await wait_until(funnel_matches, timeout=240, interval=1, message="funnel = file")
        except Exception:
            pytest.fail(f"funnel {funnel.get('waterfall')} != {want}\n{stack.log_tail()}")
        _say(f"imported and projected in {time.monotonic() - started:.1f}s")
        assert funnel["outcomes"]["lost"] == rows - converted
        entries = funnel["period"]["entries"]
        assert (entries["mql"], entries["nurture"], entries["sal"]) == (0, 0, 0)

        async def scoring_has_every_outcome() -> bool:
            body = (await client.get(f"{e.scoring}/v1/scoring/suggestions")).json()
            return body.get("outcomes") == rows and body.get("won") == converted

        await wait_until(scoring_has_every_outcome, timeout=240, interval=1, message="outcomes")

        again = await import_file()
        assert (again["new_leads"], again["unchanged"]) == (0, rows)
        assert (await client.get(f"{e.analytics}/v1/funnel")).json()["waterfall"] == funnel[
            "waterfall"
        ]
