"""analytics: kernel tables, the global lead event log, personal-data side table, projections

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from leadflow.events.schema import kernel_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = [
    # The audit trail: every consumed event once, in arrival order, never updated or deleted.
    # Personal fields are NOT here (they live in lead_personal, deleted on erasure).
    """
    CREATE TABLE lead_event_log (
        global_position bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        lead_id uuid NOT NULL,
        producer text NOT NULL,
        event_type text NOT NULL,
        schema_version integer NOT NULL DEFAULT 1,
        stream_version integer NOT NULL DEFAULT 0,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        payload jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb
    )
    """,
    "CREATE INDEX lead_event_log_lead_idx ON lead_event_log (lead_id, occurred_at)",
    """
    CREATE TRIGGER lead_event_log_append_only BEFORE UPDATE OR DELETE ON lead_event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_is_append_only()
    """,
    """
    CREATE TABLE lead_personal (
        lead_id uuid NOT NULL,
        event_id uuid NOT NULL,
        fields jsonb NOT NULL,
        PRIMARY KEY (lead_id, event_id)
    )
    """,
    "CREATE TABLE erased_leads (lead_id uuid PRIMARY KEY, erased_at timestamptz NOT NULL)",
    # Projection state: what each projection remembers per lead (rebuilt with it).
    """
    CREATE TABLE analytics_lead_state (
        projection text NOT NULL,
        lead_id uuid NOT NULL,
        state jsonb NOT NULL,
        PRIMARY KEY (projection, lead_id)
    )
    """,
    # funnel
    """
    CREATE TABLE funnel_cohort (
        cohort_day date NOT NULL, channel text NOT NULL, campaign text NOT NULL,
        milestone text NOT NULL, leads bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (cohort_day, channel, campaign, milestone)
    )
    """,
    """
    CREATE TABLE funnel_flow (
        day date NOT NULL, channel text NOT NULL, campaign text NOT NULL,
        from_stage text NOT NULL, to_stage text NOT NULL, via text NOT NULL,
        n bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (day, channel, campaign, from_stage, to_stage, via)
    )
    """,
    # sources
    """
    CREATE TABLE source_cohort (
        cohort_day date NOT NULL, channel text NOT NULL, campaign text NOT NULL,
        form_id text NOT NULL, event_key text NOT NULL,
        inquiries bigint NOT NULL DEFAULT 0, mqls bigint NOT NULL DEFAULT 0,
        sals bigint NOT NULL DEFAULT 0, sqls bigint NOT NULL DEFAULT 0,
        opportunities bigint NOT NULL DEFAULT 0, won bigint NOT NULL DEFAULT 0,
        lost bigint NOT NULL DEFAULT 0, disqualified bigint NOT NULL DEFAULT 0,
        pipeline numeric NOT NULL DEFAULT 0, won_revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (cohort_day, channel, campaign, form_id, event_key)
    )
    """,
    # velocity
    """
    CREATE TABLE stage_stay (
        id bigserial PRIMARY KEY,
        lead_id uuid NOT NULL, stage text NOT NULL,
        entered_at timestamptz NOT NULL, exited_at timestamptz NOT NULL,
        seconds double precision NOT NULL,
        channel text NOT NULL, campaign text NOT NULL
    )
    """,
    "CREATE INDEX stage_stay_exit_idx ON stage_stay (stage, exited_at)",
    # attribution
    """
    CREATE TABLE attribution_revenue (
        won_day date NOT NULL, model text NOT NULL, channel text NOT NULL, campaign text NOT NULL,
        revenue numeric NOT NULL DEFAULT 0, credit double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (won_day, model, channel, campaign)
    )
    """,
    # reps and SLA
    """
    CREATE TABLE rep_daily (
        day date NOT NULL, rep_id text NOT NULL, team_id text NOT NULL,
        assigned bigint NOT NULL DEFAULT 0, accepted bigint NOT NULL DEFAULT 0,
        rejected bigint NOT NULL DEFAULT 0, recycled bigint NOT NULL DEFAULT 0,
        sqls bigint NOT NULL DEFAULT 0, opportunities bigint NOT NULL DEFAULT 0,
        won bigint NOT NULL DEFAULT 0, lost bigint NOT NULL DEFAULT 0,
        won_revenue numeric NOT NULL DEFAULT 0,
        PRIMARY KEY (day, rep_id, team_id)
    )
    """,
    """
    CREATE TABLE rep_reasons (
        day date NOT NULL, rep_id text NOT NULL, team_id text NOT NULL, kind text NOT NULL,
        reason text NOT NULL, n bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (day, rep_id, team_id, kind, reason)
    )
    """,
    """
    CREATE TABLE sla_daily (
        day date NOT NULL, policy_id text NOT NULL, team_id text NOT NULL, rep_id text NOT NULL,
        started bigint NOT NULL DEFAULT 0, warned bigint NOT NULL DEFAULT 0,
        breached bigint NOT NULL DEFAULT 0, met_on_time bigint NOT NULL DEFAULT 0,
        met_late bigint NOT NULL DEFAULT 0, escalations bigint NOT NULL DEFAULT 0,
        elapsed_seconds double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (day, policy_id, team_id, rep_id)
    )
    """,
    # stuck leads (and lead age): one row per lead, its current stage
    """
    CREATE TABLE lead_current (
        lead_id uuid PRIMARY KEY, stage text NOT NULL, stage_entered_at timestamptz NOT NULL,
        inquiry_at timestamptz, channel text NOT NULL, campaign text NOT NULL,
        rep_id text NOT NULL, team_id text NOT NULL, is_open boolean NOT NULL
    )
    """,
    "CREATE INDEX lead_current_open_idx ON lead_current (stage, stage_entered_at) WHERE is_open",
    # admin: campaign costs (configuration, not a projection: survives rebuilds)
    """
    CREATE TABLE campaign_costs (
        id bigserial PRIMARY KEY, campaign text NOT NULL, channel text NOT NULL,
        period_start date NOT NULL, period_end date NOT NULL, amount numeric NOT NULL,
        currency text NOT NULL DEFAULT 'USD', created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (period_end >= period_start), CHECK (amount >= 0)
    )
    """,
]

TABLES = (
    "campaign_costs", "lead_current", "sla_daily", "rep_reasons", "rep_daily",
    "attribution_revenue", "stage_stay", "source_cohort", "funnel_flow", "funnel_cohort",
    "analytics_lead_state", "erased_leads", "lead_personal", "lead_event_log",
)


def upgrade() -> None:
    kernel_tables(op)
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}")
