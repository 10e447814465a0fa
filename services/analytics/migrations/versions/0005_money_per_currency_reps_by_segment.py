"""analytics: money per currency, reps and SLA rows per segment, queues apart from reps

Money never mixes currencies: ``source_cohort``, ``attribution_revenue`` and ``rep_daily``
are keyed by ``currency`` too (count rows carry currency ''), and ``source_cohort`` counts
won deals per currency (``won_deals``, for the average deal of a plan). ``rep_daily``,
``rep_reasons`` and ``sla_daily`` are keyed by the lead's first-touch channel and campaign,
so the reps report honours the channel and campaign filters; ``rep_daily`` keeps a lead
waiting in a queue under ``queue_id``, never as a rep. ``sla_daily`` rows count on the day a
clock started and carry ``late`` (one late verdict per clock). The fold state and every
projection table are cleared and their checkpoints reset: the live loop replays the log into
the new shape on start.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = "('funnel', 'sources', 'velocity', 'attribution', 'reps', 'stuck')"
RESET = [
    "TRUNCATE analytics_fold, funnel_cohort, funnel_flow, stage_stay, lead_current",
    f"DELETE FROM projection_checkpoints WHERE name IN {NAMES}",
]
MILESTONES = (
    "inquiries bigint NOT NULL DEFAULT 0, mqls bigint NOT NULL DEFAULT 0, "
    "sals bigint NOT NULL DEFAULT 0, sqls bigint NOT NULL DEFAULT 0, "
    "opportunities bigint NOT NULL DEFAULT 0, won bigint NOT NULL DEFAULT 0, "
    "lost bigint NOT NULL DEFAULT 0, disqualified bigint NOT NULL DEFAULT 0, "
)
REPS = (
    "assigned bigint NOT NULL DEFAULT 0, accepted bigint NOT NULL DEFAULT 0, "
    "rejected bigint NOT NULL DEFAULT 0, recycled bigint NOT NULL DEFAULT 0, "
    "sqls bigint NOT NULL DEFAULT 0, opportunities bigint NOT NULL DEFAULT 0, "
    "won bigint NOT NULL DEFAULT 0, lost bigint NOT NULL DEFAULT 0, "
    "won_revenue numeric NOT NULL DEFAULT 0, "
)
SLA = (
    "started bigint NOT NULL DEFAULT 0, warned bigint NOT NULL DEFAULT 0, "
    "breached bigint NOT NULL DEFAULT 0, met_on_time bigint NOT NULL DEFAULT 0, "
    "met_late bigint NOT NULL DEFAULT 0, escalations bigint NOT NULL DEFAULT 0, "
)

UP = [
    "DROP TABLE source_cohort, attribution_revenue, rep_daily, rep_reasons, sla_daily",
    "CREATE TABLE source_cohort (grain text NOT NULL, period date NOT NULL, "
    "channel text NOT NULL, campaign text NOT NULL, form_id text NOT NULL, "
    "event_key text NOT NULL, currency text NOT NULL, " + MILESTONES
    + "pipeline numeric NOT NULL DEFAULT 0, won_revenue numeric NOT NULL DEFAULT 0, "
    "won_deals bigint NOT NULL DEFAULT 0, "
    "PRIMARY KEY (grain, period, channel, campaign, form_id, event_key, currency))",
    "CREATE TABLE attribution_revenue (won_day date NOT NULL, model text NOT NULL, "
    "channel text NOT NULL, campaign text NOT NULL, currency text NOT NULL, "
    "revenue numeric NOT NULL DEFAULT 0, credit double precision NOT NULL DEFAULT 0, "
    "PRIMARY KEY (won_day, model, channel, campaign, currency))",
    "CREATE TABLE rep_daily (day date NOT NULL, rep_id text NOT NULL, team_id text NOT NULL, "
    "queue_id text NOT NULL, channel text NOT NULL, campaign text NOT NULL, "
    "currency text NOT NULL, " + REPS
    + "PRIMARY KEY (day, rep_id, team_id, queue_id, channel, campaign, currency))",
    "CREATE TABLE rep_reasons (day date NOT NULL, rep_id text NOT NULL, team_id text NOT NULL, "
    "channel text NOT NULL, campaign text NOT NULL, kind text NOT NULL, reason text NOT NULL, "
    "n bigint NOT NULL DEFAULT 0, "
    "PRIMARY KEY (day, rep_id, team_id, channel, campaign, kind, reason))",
    "CREATE TABLE sla_daily (day date NOT NULL, policy_id text NOT NULL, "
    "team_id text NOT NULL, rep_id text NOT NULL, channel text NOT NULL, "
    "campaign text NOT NULL, " + SLA + "late bigint NOT NULL DEFAULT 0, "
    "elapsed_seconds double precision NOT NULL DEFAULT 0, "
    "PRIMARY KEY (day, policy_id, team_id, rep_id, channel, campaign))",
    *RESET,
]

DOWN = [
    "DROP TABLE source_cohort, attribution_revenue, rep_daily, rep_reasons, sla_daily",
    "CREATE TABLE source_cohort (grain text NOT NULL, period date NOT NULL, "
    "channel text NOT NULL, campaign text NOT NULL, form_id text NOT NULL, "
    "event_key text NOT NULL, " + MILESTONES
    + "pipeline numeric NOT NULL DEFAULT 0, won_revenue numeric NOT NULL DEFAULT 0, "
    "PRIMARY KEY (grain, period, channel, campaign, form_id, event_key))",
    "CREATE TABLE attribution_revenue (won_day date NOT NULL, model text NOT NULL, "
    "channel text NOT NULL, campaign text NOT NULL, revenue numeric NOT NULL DEFAULT 0, "
    "credit double precision NOT NULL DEFAULT 0, "
    "PRIMARY KEY (won_day, model, channel, campaign))",
    "CREATE TABLE rep_daily (day date NOT NULL, rep_id text NOT NULL, team_id text NOT NULL, "
    + REPS + "PRIMARY KEY (day, rep_id, team_id))",
    "CREATE TABLE rep_reasons (day date NOT NULL, rep_id text NOT NULL, team_id text NOT NULL, "
    "kind text NOT NULL, reason text NOT NULL, n bigint NOT NULL DEFAULT 0, "
    "PRIMARY KEY (day, rep_id, team_id, kind, reason))",
    "CREATE TABLE sla_daily (day date NOT NULL, policy_id text NOT NULL, "
    "team_id text NOT NULL, rep_id text NOT NULL, " + SLA
    + "elapsed_seconds double precision NOT NULL DEFAULT 0, "
    "PRIMARY KEY (day, policy_id, team_id, rep_id))",
    *RESET,
]


def upgrade() -> None:
    for statement in UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWN:
        op.execute(statement)
