"""A company adopting Leadflow loads the X Education export as it is, and learns from day one.

Marketing ops uploads the real file (9,237 leads, no e-mail column, read unmodified from
``../shared/datasets``) with the ``x-education`` preset through intake's public API. The
leads are identified by ``Prospect ID``, ``Converted`` is their history: 3,559 won, the rest
closed. Then, through the public APIs only and with the built-in configuration:

* the funnel counts the history in its inquiry cohort (today's month: the file has no dates):
  9,237 inquiries, 3,559 won, 5,678 lost — and nothing was qualified, nurtured or routed;
* ``POST /v1/scoring/predictive/train`` with its defaults trains on that history; the report
  shows holdout AUC >= 0.89 without the sales-entered columns, beside the rule model's AUC,
  lift and calibration, and says which holdout it used and why (stratified: no dates).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
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
    pytest.mark.timeout(300),
]
ROWS, WON = 9237, 3559


def _say(message: str) -> None:
    print(f"[acceptance import] {message}", flush=True)


@pytest.mark.skipif(not X_EDUCATION.exists(), reason=f"dataset not found at {X_EDUCATION}")
async def test_real_export_imports_unmodified_counts_its_history_and_trains_a_model(
    e2e_stack: Any,
) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    cohort = datetime.now(UTC).date().replace(day=1).isoformat()
    timings: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=60, headers=admin) as client:
        began = time.monotonic()
        preview = await client.post(
            f"{e.intake}/v1/imports/preview",
            params={"preset": "x-education"},
            headers={"Content-Type": "text/csv"},
            content=X_EDUCATION.read_bytes(),
        )
        assert preview.status_code == 200, preview.text
        seen = preview.json()
        assert (seen["encoding"], seen["delimiter"], seen["history"]) == ("utf-8", ",", True)
        assert (seen["rows_checked"], seen["problem_count"]) == (ROWS, 0)
        assert seen["identified_by"] == ["external_id"]

        r = await client.post(
            f"{e.intake}/v1/imports",
            params={"preset": "x-education"},
            headers={"Content-Type": "text/csv"},
            content=X_EDUCATION.read_bytes(),
        )
        assert r.status_code == 202, r.text
        import_id = r.json()["import_id"]
        progress: dict[str, Any] = {}

        async def imported() -> bool:
            nonlocal progress
            progress = (await client.get(f"{e.intake}/v1/imports/{import_id}")).json()
            return progress["status"] != "running"

        await wait_until(imported, timeout=120, interval=0.5, message="import finished")
        timings["import"] = time.monotonic() - began
        assert progress["status"] == "completed", progress
        assert (progress["rows_read"], progress["accepted"], progress["rejected"]) == (
            ROWS,
            ROWS,
            0,
        )
        assert progress["new_leads"] == ROWS
        assert progress["history"] == {"won": WON, "lost": ROWS - WON}

        funnel: dict[str, Any] = {}

        async def funnel_has_the_history() -> bool:
            nonlocal funnel
            funnel = (
                await client.get(f"{e.analytics}/v1/funnel", params={"channel": "import"})
            ).json()
            got = {row["stage"]: row["count"] for row in funnel["waterfall"]}
            # every lead's history closed too, not only its capture: all that is asserted
            return (
                got.get("inquiry") == ROWS
                and got.get("won") == WON
                and funnel["outcomes"]["lost"] == ROWS - WON
            )

        await wait_until(funnel_has_the_history, timeout=120, interval=1, message="funnel")
        timings["projected"] = time.monotonic() - began
        in_cohort = {r["stage"]: r["count"] for r in funnel["cohorts"] if r["cohort"] == cohort}
        assert in_cohort["inquiry"] == ROWS and in_cohort["won"] == WON
        assert funnel["outcomes"]["lost"] == ROWS - WON
        entries = funnel["period"]["entries"]
        # History was never worked here: nobody qualified, nurtured or routed it.
        assert (entries["mql"], entries["nurture"], entries["sal"]) == (0, 0, 0)
        assert (entries["won"], entries["lost"]) == (WON, ROWS - WON)

        async def scoring_has_every_outcome() -> bool:
            body = (await client.get(f"{e.scoring}/v1/scoring/suggestions")).json()
            return body.get("outcomes") == ROWS

        await wait_until(scoring_has_every_outcome, timeout=120, interval=1, message="outcomes")
        trained = await client.post(f"{e.scoring}/v1/scoring/predictive/train")
        timings["trainable"] = time.monotonic() - began
        assert trained.status_code == 201, trained.text
        metrics = trained.json()["metrics"]
        assert metrics["examples"] == ROWS and trained.json()["promoted"] is True
        report = (await client.get(f"{e.scoring}/v1/scoring/predictive/report")).json()

    _say(
        f"timings {timings}; holdout {report['holdout']} ({report['holdout_examples']}): "
        f"AUC {report['auc']} vs rule model {report['rule_model_auc']}, top-decile lift "
        f"{report['top_decile_lift']} vs {report['rule_model_top_decile_lift']}"
    )
    assert report["holdout"]["method"] == "stratified"
    assert "dates" in report["holdout"]["why"]
    assert report["holdout_examples"] == round(WON * 0.2) + round((ROWS - WON) * 0.2)
    assert report["auc"] >= 0.89
    assert report["auc"] > report["rule_model_auc"]
    assert report["top_decile_lift"] > 1.5
    assert sum(b["leads"] for b in report["calibration"]) == report["holdout_examples"]
    features = {w["feature"] for w in metrics["top_weights"]}
    sales_entered = ("tags", "lead_quality", "lead_profile", "asymmetrique", "comments")
    assert not [f for f in features if any(s in f for s in sales_entered)]
