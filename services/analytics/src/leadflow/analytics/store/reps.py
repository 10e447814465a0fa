"""The reps report: hand-off outcomes per rep and team, and SLA verdicts."""

from __future__ import annotations

from typing import Any

from leadflow.analytics import report_math, segments
from leadflow.analytics.rep_projection import REP_COLUMNS, SLA_COLUMNS
from leadflow.analytics.store.query import Filters, number, rounded
from leadflow.events.sql import Tx


async def reps(
    tx: Tx,
    f: Filters,
    team: str | None = None,
    rep: str | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    """One row per rep (its team: the latest it worked in), queues apart; the channel and
    campaign filters apply (the lead's first touch), as in every other report."""
    where, params = f.where("day")
    extra = ""
    if team:
        extra += " AND team_id = :team"
        params["team"] = team
    if rep:
        extra += " AND rep_id = :rep"
        params["rep"] = rep
    sums = ", ".join(f"sum({c})" for c in REP_COLUMNS)
    rows = []
    queues = []
    money: dict[str, dict[str, float]] = {}
    for rep_id, currency, revenue in await tx.fetch(
        f"SELECT rep_id, currency, sum(won_revenue) FROM rep_daily WHERE {where}{extra} "
        "AND currency <> '' AND rep_id <> :none GROUP BY 1, 2 ORDER BY 1, 2",
        **params,
        none=segments.UNKNOWN,
    ):
        money.setdefault(rep_id, {})[currency] = number(revenue)
    for row in await tx.fetch(
        f"SELECT rep_id, (array_agg(team_id ORDER BY day DESC, team_id))[1], {sums} "
        f"FROM rep_daily WHERE {where}{extra} AND rep_id <> :none GROUP BY 1 ORDER BY 1",
        **params,
        none=segments.UNKNOWN,
    ):
        c = {k: number(v) for k, v in zip(REP_COLUMNS, row[2:], strict=True)}
        decided = c["accepted"] + c["rejected"]
        rows.append(
            {
                "rep_id": row[0],
                "team_id": row[1],
                **{k: int(v) for k, v in c.items() if k != "won_revenue"},
                "money": [
                    {"currency": cur, "won_revenue": round(v, 2)}
                    for cur, v in sorted(money.get(row[0], {}).items())
                ],
                "acceptance_rate": rounded(report_math.rate(c["accepted"], decided)),
                "rejection_rate": rounded(report_math.rate(c["rejected"], decided)),
            }
        )
    if not rep:
        for queue_id, team_id, n in await tx.fetch(
            "SELECT queue_id, (array_agg(team_id ORDER BY day DESC, team_id))[1], "
            f"sum(assigned) FROM rep_daily WHERE {where}{extra} AND queue_id <> :none "
            "GROUP BY 1 ORDER BY 1",
            **params,
            none=segments.UNKNOWN,
        ):
            queues.append({"queue_id": queue_id, "team_id": team_id, "assigned": int(n)})
    reasons = [
        {"kind": k, "reason": r, "count": int(n)}
        for k, r, n in await tx.fetch(
            f"SELECT kind, reason, sum(n) FROM rep_reasons WHERE {where}{extra} "
            "GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
            **params,
        )
    ]
    sla_extra = extra
    if policy:
        sla_extra += " AND policy_id = :policy"
        params["policy"] = policy
    sums = ", ".join(f"sum({c})" for c in SLA_COLUMNS)
    sla_rows = []
    for row in await tx.fetch(
        f"SELECT policy_id, team_id, rep_id, {sums} FROM sla_daily WHERE {where}{sla_extra} "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        **params,
    ):
        c = {k: number(v) for k, v in zip(SLA_COLUMNS, row[3:], strict=True)}
        sla_rows.append({"policy_id": row[0], "team_id": row[1], "rep_id": row[2], **c})
    return {
        "filters": {**f.as_dict(), "team": team, "rep": rep, "policy": policy},
        "rows": rows,
        "queues": queues,
        "reasons": reasons,
        "sla": [_sla(r) for r in sla_rows],
        "sla_by_policy": _sla_rollup(sla_rows, ("policy_id",)),
        "sla_by_team": _sla_rollup(sla_rows, ("team_id",)),
        "sla_by_rep": _sla_rollup(sla_rows, ("rep_id",)),
    }


def _sla(c: dict[str, Any]) -> dict[str, Any]:
    """Compliance = clocks met on time / clocks with a verdict (on time + late), each clock
    counted once, on the day it started: sla-monitor's ``met_on_time_pct`` / 100
    (docs/metrics.md)."""
    out = {k: (int(v) if k in SLA_COLUMNS[:7] else v) for k, v in c.items()}
    out["compliance"] = rounded(report_math.rate(c["met_on_time"], c["met_on_time"] + c["late"]))
    met = c["met_on_time"] + c["met_late"]
    out["mean_response_hours"] = rounded(c["elapsed_seconds"] / met / 3600) if met else None
    del out["elapsed_seconds"]
    return out


def _sla_rollup(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    acc: dict[tuple[Any, ...], dict[str, float]] = {}
    for r in rows:
        k = tuple(r[x] for x in keys)
        tot = acc.setdefault(k, dict.fromkeys(SLA_COLUMNS, 0.0))
        for c in SLA_COLUMNS:
            tot[c] += r[c]
    return [_sla({**dict(zip(keys, k, strict=True)), **v}) for k, v in sorted(acc.items())]
