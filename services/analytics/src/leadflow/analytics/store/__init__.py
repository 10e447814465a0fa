"""Report queries: every answer comes from the projection tables, never from scanning the log.

The projection tables are small pre-aggregates (per day x segment), so a report is a
``GROUP BY`` over a date range; the rates, percentiles of finished stays, ROI and plans are
then computed with ``report_math`` and ``planning``. The one exception is a lead's timeline,
read from the log by its ``(lead_id, occurred_at)`` index (one lead, not a scan).

One module per report; this package exports the queries the API and the dashboard call.
"""

from leadflow.analytics.store.costs import (
    cost,
    costs,
    costs_of,
    delete_cost,
    insert_cost,
    lock_costs,
)
from leadflow.analytics.store.funnel import attribution, funnel, velocity
from leadflow.analytics.store.leads import checkpoints, stuck, timeline
from leadflow.analytics.store.plan import PlanCurrencyError, plan
from leadflow.analytics.store.query import Filters, day_after
from leadflow.analytics.store.reps import reps
from leadflow.analytics.store.sources import (
    MONEY_COLUMNS,
    SOURCE_DIMENSIONS,
    source_counts,
    sources,
)

__all__ = [
    "MONEY_COLUMNS",
    "SOURCE_DIMENSIONS",
    "Filters",
    "PlanCurrencyError",
    "attribution",
    "checkpoints",
    "cost",
    "costs",
    "costs_of",
    "day_after",
    "delete_cost",
    "funnel",
    "insert_cost",
    "lock_costs",
    "plan",
    "reps",
    "source_counts",
    "sources",
    "stuck",
    "timeline",
    "velocity",
]
