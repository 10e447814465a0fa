"""A scripted population through all five services as real processes.

capture (API inquiries, web forms, badge scans, activities, bad input, duplicates) → scoring
(default model) → routing (team rules) → SLA clocks → simulated reps to an outcome; then
analytics' funnel, source and SLA figures must equal what the plan said would happen.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from bench.workload import RepConfig, Workload, WorkloadConfig, make_plan
from leadflow.testing import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(400),
]

PEOPLE = 240


def _waterfall(report: dict[str, Any]) -> dict[str, int]:
    return {row["stage"]: row["count"] for row in report["waterfall"]}


async def test_scripted_population_reaches_analytics_exactly_as_scripted(e2e_stack: Any) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    config = WorkloadConfig(
        seed=11,
        people=PEOPLE,
        concurrency=12,
        reps=RepConfig(accept_delay=(0.0, 0.3), step_delay=(0.0, 0.1), poll_interval=0.3),
    )
    plan = make_plan(config)
    expected = plan.expected()
    started = time.monotonic()
    workload = Workload(e, plan)
    script = await workload.run(settle_timeout=240)
    took = time.monotonic() - started
    print(f"\n[e2e] workload {took:.1f}s: {json.dumps(script.summary(), default=str)[:3000]}")
    assert script.counts["settled"] == 1, (script.summary(), stack.log_tail())

    # What the platform answered at the edge equals the script.
    assert len(script.lead_of_person) == PEOPLE, script.errors[:5]
    assert script.counts["bad.sent"] == expected.bad_requests - sum(
        b.bad_items for b in plan.scan_batches
    )
    assert script.counts["bad.accepted"] == 0
    assert script.counts["scan.rejected"] == sum(b.bad_items for b in plan.scan_batches)
    assert script.counts["scan_replay.duplicate"] == expected.scan_replayed_items
    assert script.counts["scan_replay.accepted"] == 0
    follow_ups = [p for p in plan.people if p.returning or p.typo_duplicate]
    assert script.counts["returning.matched"] + script.counts["typo_duplicate.matched"] == len(
        follow_ups
    )
    assert not [a for a in script.actions if a[3] >= 400], script.errors[:5]

    reports = {"Authorization": f"Bearer {e.admin_token}"}  # reports need a credential
    async with httpx.AsyncClient(base_url=e.analytics, timeout=30, headers=reports) as client:
        # A duplicate with a typo is captured as a lead of its own and then merged into the
        # person's lead; analytics counts every captured lead as an inquiry.
        want = {
            "inquiry": expected.captured,
            "mql": expected.mql,
            "sal": expected.sal,
            "sql": expected.sql,
            "opportunity": expected.opportunity,
            "won": expected.won,
        }
        report: dict[str, Any] = {}

        async def funnel_complete() -> bool:
            nonlocal report
            report = (await client.get("/v1/funnel")).json()
            return _waterfall(report) == want and report["outcomes"] == {
                "lost": expected.lost,
                "disqualified": expected.disqualified,
            }

        try:
            await wait_until(funnel_complete, timeout=90, message="analytics funnel")
        except Exception:
            sources = (await client.get("/v1/sources", params={"group_by": "channel"})).json()
            got = {r["source"]: r["inquiries"] for r in sources["rows"]}
            print(
                "[e2e] inquiries by channel:", got, "expected:", dict(expected.captured_by_channel)
            )
            pytest.fail(
                f"funnel {_waterfall(report)} outcomes {report.get('outcomes')} "
                f"!= expected {want} lost={expected.lost} "
                f"disqualified={expected.disqualified}\n{stack.log_tail()}"
            )
        # Back to marketing: analytics reads routing's and scoring's topics, so scoring's
        # nurture.enrolled may land before routing's lead.recycled/lead.rejected and carry
        # the move itself — the moves out of sales are exact, the event credited is not.
        back = sum(
            f["count"]
            for f in report["period"]["flows"]
            if f["to"] == "nurture" and f["from"] in ("mql", "sal", "sql", "opportunity")
        )
        print(
            "[e2e] flows back to nurture:",
            [f for f in report["period"]["flows"] if f["to"] == "nurture"],
        )
        assert back == expected.rejected + expected.recycled
        assert script.counts["rep.reject"] == expected.rejected
        assert script.counts["rep.recycle"] == expected.recycled

        sources = (await client.get("/v1/sources", params={"group_by": "channel"})).json()
        by_channel = {r["source"]: r for r in sources["rows"]}
        assert {k: r["inquiries"] for k, r in by_channel.items()} == dict(
            expected.captured_by_channel
        )
        assert {k: r["mqls"] for k, r in by_channel.items() if r["mqls"]} == dict(
            expected.mql_by_channel
        )
        assert {k: r["won"] for k, r in by_channel.items() if r["won"]} == dict(
            expected.won_by_channel
        )

        # SLA: every clock the reps' actions started was met on time (they act in seconds);
        # clocks ended by a recycle or an outcome are stopped, neither met nor breached.
        c = script.counts
        want_sla = {
            "mql-assigned-30m": (expected.mql, expected.mql),
            "accept-4bh": (expected.mql, c["rep.accept"] + c["rep.reject"]),
            "contact-1bd": (c["rep.accept"], c["rep.contacted"]),
            "sal-max-14d": (c["rep.accept"], c["rep.qualify"]),
        }
        assert c["rep.accept"] == expected.sal and c["rep.qualify"] == expected.sql
        sla: dict[str, tuple[int, int]] = {}

        async def sla_complete() -> bool:
            nonlocal sla
            reps = (await client.get("/v1/reps")).json()
            sla = {
                r["policy_id"]: (r["started"], r["met_on_time"])
                for r in reps["sla_by_policy"]
                if r["policy_id"] in want_sla
            }
            breached = sum(r["breached"] for r in reps["sla_by_policy"])
            return sla == want_sla and breached == 0

        try:
            await wait_until(sla_complete, timeout=90, message="analytics SLA figures")
        except Exception:
            pytest.fail(f"SLA (started, met on time) {sla} != {want_sla}")
        reps = (await client.get("/v1/reps")).json()
        per_rep = {r["rep_id"]: r for r in reps["rows"]}
        assert sum(r["accepted"] for r in per_rep.values()) == c["rep.accept"]
        assert sum(r["rejected"] for r in per_rep.values()) == c["rep.reject"]
        assert sum(r["won"] for r in per_rep.values()) == expected.won
        assert set(per_rep) <= set(workload.rep_ids)
