"""What every report query shares: the filters, the WHERE over rollup rows, how
numbers are rounded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from leadflow.analytics import report_math


@dataclass(frozen=True)
class Filters:
    """Date range (inclusive days) and segment filters shared by every report."""

    start: date | None = None
    end: date | None = None
    channel: str | None = None
    campaign: str | None = None

    def where(
        self, day_column: str, *, segments: bool = True, dates: bool = True
    ) -> tuple[str, dict[str, Any]]:
        conds: list[str] = ["TRUE"]
        params: dict[str, Any] = {}
        if not dates:
            pass
        elif self.start is not None:
            conds.append(f"{day_column} >= :start")
            params["start"] = self.start
        if dates and self.end is not None:
            conds.append(f"{day_column} <= :end")
            params["end"] = self.end
        if segments and self.channel:
            conds.append("channel = :channel")
            params["channel"] = self.channel
        if segments and self.campaign:
            conds.append("campaign = :campaign")
            params["campaign"] = self.campaign
        return " AND ".join(conds), params

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "channel": self.channel,
            "campaign": self.campaign,
        }


def number(value: Any) -> float:
    if isinstance(value, Decimal):
        return float(value)
    return float(value or 0)


def rounded(value: float | None, ndigits: int = 4) -> float | None:
    return None if value is None else round(value, ndigits)


def rollup_where(
    split: report_math.RangeSplit,
    coarse: str,
    params: dict[str, Any],
    segments: Filters | None = None,
) -> str:
    """Rows of a rollup table covering ``split``: whole periods from the ``coarse`` grain,
    the edge days from the daily rows (one index range each).

    With ``segments`` the table has total rows (segment ''): weekly and monthly rows exist
    for every (channel, campaign, both, neither) total, daily rows only per (channel,
    campaign) and for the grand total, so a filtered edge day sums its campaigns."""
    coarse_seg = daily_seg = ""
    if segments is not None:
        params["ch"] = segments.channel or report_math.ALL
        params["cp"] = segments.campaign or report_math.ALL
        coarse_seg = " AND channel = :ch AND campaign = :cp"
        if not segments.channel and not segments.campaign:
            daily_seg = " AND channel = :ch AND campaign = :cp"
        else:
            daily_seg = " AND channel <> '' AND campaign <> ''"
            daily_seg += " AND channel = :ch" if segments.channel else ""
            daily_seg += " AND campaign = :cp" if segments.campaign else ""
    ors: list[str] = []
    if split.has_full:
        conds = [f"grain = '{coarse}'{coarse_seg}"]
        if split.full_from is not None:
            conds.append("period >= :full_from")
            params["full_from"] = split.full_from
        if split.full_to is not None:
            conds.append("period <= :full_to")
            params["full_to"] = split.full_to
        ors.append(" AND ".join(conds))
    for i, (lo, hi) in enumerate(split.edges):
        conds = [f"grain = 'd'{daily_seg}"]
        if lo is not None:
            conds.append(f"period >= :edge_lo{i}")
            params[f"edge_lo{i}"] = lo
        if hi is not None:
            conds.append(f"period <= :edge_hi{i}")
            params[f"edge_hi{i}"] = hi
        ors.append(" AND ".join(conds))
    return "(" + " OR ".join(f"({o})" for o in ors) + ")"


def stage_row(r: report_math.StageRow) -> dict[str, Any]:
    return {
        "stage": r.stage,
        "count": r.count,
        "conversion_to_next": rounded(r.conversion_to_next),
        "conversion_from_inquiry": rounded(r.conversion_from_inquiry),
    }


def day_after(d: date) -> date:
    return d + timedelta(days=1)
