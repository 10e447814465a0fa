"""analytics: the hand-off and SLA events each reps/SLA figure counts, one row per event

``rep_daily`` and ``sla_daily`` are counts; a figure's drill-down (the leads behind "r1
accepted 12") needs the events themselves. ``rep_fact`` and ``sla_fact`` are written by the
same fold step that adds to the counts, with the same keys (day, rep, team, queue or policy,
channel, campaign) and the count column as ``kind``, so a count and its rows cannot disagree.
The fold state and every projection table are cleared and their checkpoints reset: the live
loop replays the log, filling the new tables from the start.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = "('funnel', 'sources', 'velocity', 'attribution', 'reps', 'stuck')"
RESET = [
    "TRUNCATE analytics_fold, funnel_cohort, funnel_flow, source_cohort, stage_stay, "
    "attribution_revenue, rep_daily, rep_reasons, sla_daily, lead_current",
    f"DELETE FROM projection_checkpoints WHERE name IN {NAMES}",
]


def upgrade() -> None:
    for statement in (
        "CREATE TABLE rep_fact (lead_id uuid NOT NULL, day date NOT NULL, "
        "rep_id text NOT NULL, team_id text NOT NULL, queue_id text NOT NULL, "
        "channel text NOT NULL, campaign text NOT NULL, kind text NOT NULL)",
        "CREATE INDEX rep_fact_rep_idx ON rep_fact (rep_id, kind, day)",
        "CREATE INDEX rep_fact_queue_idx ON rep_fact (queue_id, kind, day)",
        "CREATE TABLE sla_fact (lead_id uuid NOT NULL, day date NOT NULL, "
        "policy_id text NOT NULL, team_id text NOT NULL, rep_id text NOT NULL, "
        "channel text NOT NULL, campaign text NOT NULL, kind text NOT NULL)",
        "CREATE INDEX sla_fact_kind_idx ON sla_fact (kind, day)",
        *RESET,
    ):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rep_fact, sla_fact")
    for statement in RESET:
        op.execute(statement)
