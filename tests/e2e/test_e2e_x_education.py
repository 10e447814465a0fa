"""The X Education export (9,237 real leads) through all five services as real processes.

The file is read from ../shared/datasets (never copied): the test writes a temporary copy
with one synthetic email per row (the export has none; intake needs one), imports it with
the ``x-education`` preset, and then plays sales from the file's ``Converted`` column.

Qualification: the file carries no engagement intake could score, and sending all 9,237
leads through routing, SLA clocks and a rep each is more than this suite's time budget on a
shared 2-core machine. So the whole file is imported (all import counts asserted), and a
deterministic sample — rows whose ``Lead Number`` is divisible by SAMPLE_EVERY, given an
email at a sample domain — is qualified by a published test model (a fit rule on that
domain, MQL = grade A, nobody disqualified). Reps take exactly the converted sample rows
through accept → contacted → qualify → opportunity → won and leave the others at MQL, so
the funnel must read: inquiries = accepted rows (all of the file); mql = accepted sample
rows; sal = sql = opportunity = won = converted among them.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.workload import Fate, RepConfig, Workload, WorkloadConfig, make_plan
from leadflow.events.testing import wait_until
from leadflow.scoring.domain import DEFAULT_MODEL

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(780),
]

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "x-education-leads.csv"
WON = Fate(("accept", "contacted", "qualify", "opportunity", "won"), amount=1200)


SAMPLE_EVERY = 10
SAMPLE_DOMAIN = "xeducation-sample.com"


def _email(lead_number: str) -> str:
    domain = SAMPLE_DOMAIN if int(lead_number) % SAMPLE_EVERY == 0 else "xeducation-import.com"
    return f"lead{lead_number}@{domain}"


def _copy_with_emails(target: Path) -> dict[str, bool]:
    """The export plus an Email column; returns email -> converted, in file order."""
    converted: dict[str, bool] = {}
    with (
        DATASET.open(encoding="utf-8-sig", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as out,
    ):
        reader = csv.DictReader(src)
        assert reader.fieldnames is not None
        writer = csv.DictWriter(out, [*reader.fieldnames, "Email"])
        writer.writeheader()
        for row in reader:
            email = _email(row["Lead Number"])
            converted[email] = row["Converted"].strip() == "1"
            writer.writerow({**row, "Email": email})
    return converted


def _sample_model() -> dict[str, Any]:
    """The default model plus a rule only the sample meets; only grade A is an MQL."""
    model = copy.deepcopy(DEFAULT_MODEL)
    model["name"] = "e2e-x-education-sample"
    model["fit_rules"].append(
        {
            "id": "e2e_sample",
            "attribute": "email_domain",
            "op": "eq",
            "value": SAMPLE_DOMAIN,
            "points": 100,
            "reason": "e2e sample",
        }
    )
    model["fit_grades"] = [{"grade": "A", "min": 100}, {"grade": "C", "max": 100}]
    model["mql"] = {"cells": ["A1", "A2", "A3", "A4"]}
    model["disqualify_rules"] = []
    return model


def _say(message: str) -> None:
    print(f"[e2e x-education] {message}", flush=True)


@pytest.mark.skipif(not DATASET.exists(), reason=f"dataset not found at {DATASET}")
async def test_x_education_import_funnel_matches_the_file(e2e_stack: Any, tmp_path: Path) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    csv_path = tmp_path / "x-education-with-emails.csv"
    converted_by_email = _copy_with_emails(csv_path)
    rows = len(converted_by_email)
    assert rows == 9237

    setup = Workload(
        e,
        make_plan(
            WorkloadConfig(
                people=0,
                scan_devices=1,
                id_prefix="xed-",
                scoring_model=_sample_model(),
                reps=RepConfig(
                    reps=6,
                    teams=2,
                    accept_delay=(0, 0),
                    step_delay=(0, 0),
                    poll_interval=0.5,
                    max_concurrent_leads=48,
                ),
            )
        ),
    )
    timings: dict[str, float] = {}
    async with setup, httpx.AsyncClient(timeout=60) as client:
        await setup.setup()
        started = time.monotonic()
        r = await client.post(
            f"{e.intake}/v1/imports",
            params={"preset": "x-education"},
            headers={**admin, "Content-Type": "text/csv"},
            content=csv_path.read_bytes(),
        )
        assert r.status_code == 202, r.text
        import_id = r.json()["import_id"]
        progress: dict[str, Any] = {}

        async def import_done() -> bool:
            nonlocal progress
            progress = (
                await setup.request(
                    "GET",
                    f"{e.intake}/v1/imports/{import_id}",
                    what="test.import_status",
                    params={"rejections": 10000},
                    headers=admin,
                )
            ).json()
            return progress["status"] not in ("running", "pending")

        await wait_until(import_done, timeout=240, interval=0.5, message="import finished")
        timings["import"] = time.monotonic() - started
        assert progress["status"] == "completed", progress
        assert progress["rows_read"] == rows
        assert progress["accepted"] + progress["rejected"] == rows
        accepted = progress["accepted"]
        assert progress["new_leads"] + progress["matched"] == accepted
        rejected_rows = {r["row"] for r in progress["rejected_rows"]}
        _say(
            f"import {timings['import']:.1f}s: accepted {accepted}, "
            f"rejected {progress['rejected']} {progress['rejected_rows'][:5]}"
        )

        # Rejections name data rows counted from 1 (the header is not a row).
        assert len(rejected_rows) == progress["rejected"]
        emails = list(converted_by_email)
        accepted_emails = [m for i, m in enumerate(emails, start=1) if i not in rejected_rows]
        sem = asyncio.Semaphore(16)

        async def lead_of(email: str) -> str:
            async with sem:
                found = (
                    await setup.request(
                        "GET",
                        f"{e.intake}/v1/leads",
                        what="test.lookup",
                        params={"email": email},
                        headers=admin,
                    )
                ).json()["items"]
            assert found, email
            return str(found[0]["lead_id"])

        sample = [m for m in accepted_emails if m.endswith("@" + SAMPLE_DOMAIN)]
        won_emails = [m for m in sample if converted_by_email[m]]
        started = time.monotonic()
        won_leads = set(await asyncio.gather(*(lead_of(m) for m in won_emails)))
        timings["lookup"] = time.monotonic() - started
        _say(
            f"{len(sample)} sample leads, {len(won_leads)} converted; lookups "
            f"{timings['lookup']:.1f}s"
        )
        setup.fate_for = lambda lead_id, cycle: WON if lead_id in won_leads else None

        want = {
            "inquiry": accepted,
            "mql": len(sample),
            "sal": len(won_leads),
            "sql": len(won_leads),
            "opportunity": len(won_leads),
            "won": len(won_leads),
        }
        funnel: dict[str, int] = {}

        async def funnel_matches() -> bool:
            nonlocal funnel
            report = (
                await setup.request("GET", f"{e.analytics}/v1/funnel", what="test.funnel")
            ).json()
            got = {row["stage"]: row["count"] for row in report["waterfall"]}
            if got != funnel:
                _say(f"funnel now {got}")
            funnel = got
            return funnel == want

        started = time.monotonic()
        async with setup.reps_working():
            try:
                await wait_until(
                    funnel_matches, timeout=480, interval=1.0, message="funnel matches the file"
                )
            except Exception:
                pytest.fail(
                    f"funnel {funnel} != {want}; script "
                    f"{setup.script.summary()}\n{stack.log_tail()}"
                )
        timings["outcomes"] = time.monotonic() - started
        _say(f"funnel {want}; timings {timings}")
        assert setup.script.counts["rep.won"] == len(won_leads)
        assert not [a for a in setup.script.actions if a[3] >= 400], setup.script.errors[:5]
