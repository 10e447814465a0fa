"""analytics: one shared per-lead fold for the six projections; funnel/sources as rollups

The six projections now advance together from one pass over the log: their per-lead state
lives once in ``analytics_fold``. Funnel and source counts are kept per day, ISO week and
month (``grain`` d/w/m), funnel counts also per channel / campaign totals (segment ''), so a
report sums a handful of rows. Every projection is cleared and its checkpoint reset: the
live loop replays the log into the new shape on start.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = "('funnel', 'sources', 'velocity', 'attribution', 'reps', 'stuck')"

DDL = [
    "DROP TABLE IF EXISTS analytics_lead_state",
    "DROP TABLE IF EXISTS funnel_cohort",
    "DROP TABLE IF EXISTS funnel_flow",
    "DROP TABLE IF EXISTS source_cohort",
    "CREATE TABLE analytics_fold (lead_id uuid PRIMARY KEY, state jsonb NOT NULL)",
    # grain d/w/m; period = first day of the day/week/month; '' = every channel/campaign.
    # Key order = filter order: grain, channel, campaign equal; period a range.
    """
    CREATE TABLE funnel_cohort (
        grain text NOT NULL, channel text NOT NULL, campaign text NOT NULL,
        period date NOT NULL, milestone text NOT NULL, leads bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (grain, channel, campaign, period, milestone)
    )
    """,
    """
    CREATE TABLE funnel_flow (
        grain text NOT NULL, channel text NOT NULL, campaign text NOT NULL,
        period date NOT NULL, from_stage text NOT NULL, to_stage text NOT NULL,
        via text NOT NULL, n bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (grain, channel, campaign, period, from_stage, to_stage, via)
    )
    """,
    """
    CREATE TABLE source_cohort (
        grain text NOT NULL, period date NOT NULL, channel text NOT NULL,
        campaign text NOT NULL, form_id text NOT NULL, event_key text NOT NULL,
        inquiries bigint NOT NULL DEFAULT 0, mqls bigint NOT NULL DEFAULT 0,
        sals bigint NOT NULL DEFAULT 0, sqls bigint NOT NULL DEFAULT 0,
        opportunities bigint NOT NULL DEFAULT 0, won bigint NOT NULL DEFAULT 0,
        lost bigint NOT NULL DEFAULT 0, disqualified bigint NOT NULL DEFAULT 0,
        pipeline numeric NOT NULL DEFAULT 0, won_revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (grain, period, channel, campaign, form_id, event_key)
    )
    """,
    "TRUNCATE stage_stay, attribution_revenue, rep_daily, rep_reasons, sla_daily, lead_current",
    f"DELETE FROM projection_checkpoints WHERE name IN {NAMES}",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    # The 0001 shape is rebuilt from the log: drop the new tables, recreate the old ones.
    for table in ("analytics_fold", "funnel_cohort", "funnel_flow", "source_cohort"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute(
        "CREATE TABLE analytics_lead_state (projection text NOT NULL, lead_id uuid NOT NULL, "
        "state jsonb NOT NULL, PRIMARY KEY (projection, lead_id))"
    )
    op.execute(
        "CREATE TABLE funnel_cohort (cohort_day date NOT NULL, channel text NOT NULL, "
        "campaign text NOT NULL, milestone text NOT NULL, leads bigint NOT NULL DEFAULT 0, "
        "PRIMARY KEY (cohort_day, channel, campaign, milestone))"
    )
    op.execute(
        "CREATE TABLE funnel_flow (day date NOT NULL, channel text NOT NULL, campaign text "
        "NOT NULL, from_stage text NOT NULL, to_stage text NOT NULL, via text NOT NULL, "
        "n bigint NOT NULL DEFAULT 0, PRIMARY KEY (day, channel, campaign, from_stage, "
        "to_stage, via))"
    )
    op.execute(
        "CREATE TABLE source_cohort (cohort_day date NOT NULL, channel text NOT NULL, "
        "campaign text NOT NULL, form_id text NOT NULL, event_key text NOT NULL, "
        "inquiries bigint NOT NULL DEFAULT 0, mqls bigint NOT NULL DEFAULT 0, "
        "sals bigint NOT NULL DEFAULT 0, sqls bigint NOT NULL DEFAULT 0, "
        "opportunities bigint NOT NULL DEFAULT 0, won bigint NOT NULL DEFAULT 0, "
        "lost bigint NOT NULL DEFAULT 0, disqualified bigint NOT NULL DEFAULT 0, "
        "pipeline numeric NOT NULL DEFAULT 0, won_revenue numeric NOT NULL DEFAULT 0, "
        "PRIMARY KEY (cohort_day, channel, campaign, form_id, event_key))"
    )
    op.execute(f"DELETE FROM projection_checkpoints WHERE name IN {NAMES}")
