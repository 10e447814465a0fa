"""Real-data proof: the X Education leads (9,237) go through scoring's own path — intake-shaped
events on ``leadflow.intake``, built with intake's X Education column mapping, then
``Converted`` as sales outcomes on ``leadflow.routing`` — and the predictive model trained
through ``POST /v1/scoring/predictive/train`` must reach AUC >= 0.88 on the time-based
holdout, without the sales-entered columns (Tags, Lead Quality, Lead Profile, Asymmetrique*).

The CSV is read from ``../shared/datasets`` (never copied into the repository).
"""

from __future__ import annotations

import csv
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from leadflow.events.catalogue.intake import ActivityRecorded, LeadCaptured
from leadflow.events.catalogue.routing import DealLost, DealWon, LeadRejected
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.kit import ServiceKit
from leadflow.intake import domain as intake
from leadflow.scoring.app import create_app
from leadflow.scoring.settings import ScoringSettings
from leadflow.testing import app_client, produce_events, wait_until
from tests.datasets import X_EDUCATION

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(1200)]
CSV = X_EDUCATION
AUTH = {"Authorization": "Bearer test-admin-token"}
SALES_ENTERED = ("tags", "lead_quality", "lead_profile", "asymmetrique")
REJECT_REASONS = ("wrong_fit", "no_budget", "bad_data", "not_interested")


def kit_of(client: httpx.AsyncClient) -> ServiceKit:
    kit: ServiceKit = client._transport.app.state.kit  # type: ignore[attr-defined]
    return kit


def load_rows() -> tuple[list[str], list[dict[str, str]]]:
    with CSV.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    rows.sort(key=lambda r: int(r["Lead Number"]))  # lead numbers grow with time
    return header, rows


def intake_events(
    header: list[str], rows: list[dict[str, str]], start: datetime
) -> tuple[list[Envelope], list[tuple[uuid.UUID, datetime, dict[str, str]]]]:
    """What intake's import emits for each row (its X Education preset, unmapped columns kept
    as attributes), plus the row's last activity as an ActivityRecorded."""
    columns = intake.resolve_mapping(header, intake.X_EDUCATION_MAPPING, keep_unmapped=True)
    envelopes: list[Envelope] = []
    leads = []
    for i, row in enumerate(rows):
        at = start + timedelta(minutes=3 * i)
        inquiry = intake.clean_inquiry(
            intake.map_row(row, columns), channel="import", require_email=False
        )
        lead_id = uuid.uuid4()
        captured = LeadCaptured(
            inquiry_id=uuid.uuid4(),
            capture_method="import",
            contact=inquiry.clean.contact,
            source=inquiry.source,
            answers=inquiry.answers,
            consent=inquiry.consent,
            flags=inquiry.clean.flags,
            email_domain=inquiry.clean.email_domain,
            external_id=inquiry.external_id,
            attributes=inquiry.attributes,
        )
        envelopes.append(Envelope.new(captured, lead_id=lead_id, occurred_at=at))
        if row["Last Activity"].strip():
            activity = ActivityRecorded(
                activity_id=f"xedu-{row['Lead Number']}-last",
                activity_type=row["Last Activity"],
            )
            envelopes.append(
                Envelope.new(activity, lead_id=lead_id, occurred_at=at + timedelta(minutes=1))
            )
        leads.append((lead_id, at, row))
    return envelopes, leads


def outcome_events(leads: list[tuple[uuid.UUID, datetime, dict[str, str]]]) -> list[Envelope]:
    """``Converted`` as what sales reports: won; or, for the rest, a rejection with a reason
    (one in three) or a lost deal."""
    out = []
    for lead_id, at, row in leads:
        payload: EventPayload
        number = int(row["Lead Number"])
        if row["Converted"] == "1":
            payload = DealWon(amount=Decimal("1200"), currency="USD", rep_id="rep-1")
        elif zlib.crc32(str(number).encode()) % 3 == 0:
            reason = REJECT_REASONS[number % len(REJECT_REASONS)]
            payload = LeadRejected(rep_id="rep-1", reason_code=reason)
        else:
            payload = DealLost(reason_code="no_decision", rep_id="rep-1")
        out.append(Envelope.new(payload, lead_id=lead_id, occurred_at=at + timedelta(hours=2)))
    return out


async def scalar(client: httpx.AsyncClient, sql: str) -> int:
    async with kit_of(client).connect() as conn:
        return int(await conn.fetchval(sql) or 0)


@pytest.mark.skipif(not CSV.exists(), reason=f"dataset {CSV} is not on this machine")
async def test_x_education_outcomes_train_a_model_with_auc_over_088_without_sales_columns(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    header, rows = load_rows()
    start = datetime.now(UTC) - timedelta(days=30)
    envelopes, leads = intake_events(header, rows, start)
    outcomes = outcome_events(leads)
    app = create_app(settings_for(ScoringSettings, consumer_batch_size=1000))
    async with app_client(app) as client:
        began = time.perf_counter()
        await produce_events(kafka_bootstrap, isolation.topic("intake"), envelopes)
        await wait_until(
            lambda: _count(client, "SELECT count(*) FROM inbox", len(envelopes)),
            timeout=900,
            message="scoring consumed every intake event",
        )
        ingested = time.perf_counter() - began
        await produce_events(kafka_bootstrap, isolation.topic("routing"), outcomes)
        await wait_until(
            lambda: _count(
                client,
                "SELECT count(DISTINCT lead_id) FROM outcomes "
                "WHERE outcome IN ('won', 'lost', 'rejected')",
                len(leads),
            ),
            timeout=600,
            message="every outcome recorded",
        )
        consumed = time.perf_counter() - began

        # No sales-entered column reached a snapshot, while the behaviour columns did.
        async with kit_of(client).connect() as conn:
            keys = {
                r[0]
                for r in await conn.fetch(
                    "SELECT DISTINCT jsonb_object_keys(snapshot->'features') FROM outcomes"
                )
            }
        assert not [k for k in keys if any(s in k for s in SALES_ENTERED)]
        assert "attr.total_time_spent_on_website" in keys
        assert any(k.startswith("activity.") for k in keys)

        r = await client.post("/v1/scoring/predictive/train", headers=AUTH, json={})
        assert r.status_code == 201, r.text
        trained = r.json()
        metrics = trained["metrics"]
        assert trained["promoted"] is True
        assert metrics["holdout_examples"] == round(len(leads) * 0.2)
        # time-based: everything held out is newer than everything trained on
        assert metrics["holdout_from"] >= metrics["train_to"]

        report = (await client.get("/v1/scoring/predictive/report", headers=AUTH)).json()
        print(
            f"\nX Education: {len(leads)} leads, {len(envelopes)} intake events "
            f"+ {len(outcomes)} outcomes consumed in {consumed:.1f}s (intake {ingested:.1f}s)"
            f"\n  holdout (newest {metrics['holdout_examples']}, time-based): "
            f"rule-model AUC {report['rule_model_auc']:.4f} | predictive AUC {report['auc']:.4f}"
            f" | top-decile lift {report['top_decile_lift']:.2f}"
            f" (rule model {report['rule_model_top_decile_lift']:.2f})"
        )
        for band in report["calibration"]:
            print(f"  {band['band']}: {band['leads']:5d} leads, predicted "
                  f"{band['mean_predicted']:.3f}, observed {band['observed_rate']:.3f}")  # fmt: skip
        assert report["serving_version"] == trained["version"]
        assert report["auc"] >= 0.88
        assert report["auc"] > report["rule_model_auc"]
        assert report["top_decile_lift"] > 1.5
        assert sum(b["leads"] for b in report["calibration"]) == metrics["holdout_examples"]

        # The same data cannot beat the model in service: stored, measured, not promoted.
        again = (await client.post("/v1/scoring/predictive/train", headers=AUTH)).json()
        assert again["promoted"] is False
        assert again["metrics"]["incumbent"]["version"] == trained["version"]

        suggestions = (await client.get("/v1/scoring/suggestions", headers=AUTH)).json()
        assert suggestions["rejected"] == sum(isinstance(o.payload, LeadRejected) for o in outcomes)
        assert suggestions["rules"], "per-rule rejection statistics"


async def _count(client: httpx.AsyncClient, sql: str, expected: int) -> bool:
    return await scalar(client, sql) >= expected
