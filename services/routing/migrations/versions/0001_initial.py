"""routing: kernel tables, roster, rule sets, pointers, lead assignment state

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

DEFAULT_REASON_CODES = {
    "reject": ["not_icp", "bad_contact_data", "duplicate", "no_budget", "wrong_territory", "other"],
    "lost": ["price", "competitor", "no_decision", "timing", "product_gap", "other"],
    "recycle": ["not_ready", "no_response", "timing", "budget_next_period", "sla_return", "other"],
}


def upgrade() -> None:
    kernel_tables(op)
    # Admin configuration: documents validated by the domain models, one row each.
    for table in ("reps", "teams", "queues"):
        op.execute(
            f"""
            CREATE TABLE {table} (
                id text PRIMARY KEY,
                doc jsonb NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
    op.execute(
        """
        CREATE TABLE account_owners (
            account_key text PRIMARY KEY,
            rep_id text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rule_sets (
            version integer PRIMARY KEY,
            doc jsonb NOT NULL,
            published_by text,
            published_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE reason_codes (
            action text NOT NULL,
            code text NOT NULL,
            label text NOT NULL DEFAULT '',
            PRIMARY KEY (action, code)
        )
        """
    )
    for action, codes in DEFAULT_REASON_CODES.items():
        for code in codes:
            op.execute(f"INSERT INTO reason_codes (action, code) VALUES ('{action}', '{code}')")
    # Bumped by every admin write: replicas cache the parsed configuration per revision.
    op.execute("CREATE TABLE config_revision (id integer PRIMARY KEY, revision bigint NOT NULL)")
    op.execute("INSERT INTO config_revision VALUES (1, 0)")
    # Smooth weighted round-robin credits per pool, taken FOR UPDATE while deciding.
    op.execute(
        """
        CREATE TABLE rr_pointers (
            pool text PRIMARY KEY,
            credits jsonb NOT NULL DEFAULT '{}'::jsonb,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE leads (
            lead_id uuid PRIMARY KEY,
            stage text,
            held_from text,
            cycle integer NOT NULL DEFAULT 0,
            snapshot jsonb NOT NULL DEFAULT '{}'::jsonb,
            assignee_kind text,
            rep_id text,
            team_id text,
            queue_id text,
            excluded_reps text[] NOT NULL DEFAULT '{}',
            assigned_at timestamptz,
            opportunity_id text,
            amount numeric,
            currency text,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX leads_rep_idx ON leads (rep_id, stage)")
    op.execute("CREATE INDEX leads_queue_idx ON leads (queue_id, stage)")
    # One row per (lead, qualification cycle): the INSERT ... ON CONFLICT DO NOTHING on it
    # is the arbiter that makes one decision per lead even with two replicas deciding.
    op.execute(
        """
        CREATE TABLE assignments (
            lead_id uuid NOT NULL,
            cycle integer NOT NULL,
            decided_at timestamptz NOT NULL,
            event_id uuid,
            explanation jsonb NOT NULL,
            PRIMARY KEY (lead_id, cycle)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rep_daily (
            rep_id text NOT NULL,
            day date NOT NULL,
            assigned integer NOT NULL DEFAULT 0,
            PRIMARY KEY (rep_id, day)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE sla_clocks (
            sla_id text PRIMARY KEY,
            lead_id uuid NOT NULL,
            policy_id text NOT NULL,
            rep_id text,
            due_at timestamptz NOT NULL,
            warn_at timestamptz,
            status text NOT NULL DEFAULT 'open'
        )
        """
    )
    op.execute("CREATE INDEX sla_clocks_lead_idx ON sla_clocks (lead_id)")


def downgrade() -> None:
    for table in (
        "sla_clocks",
        "rep_daily",
        "assignments",
        "leads",
        "rr_pointers",
        "config_revision",
        "reason_codes",
        "rule_sets",
        "account_owners",
        "queues",
        "teams",
        "reps",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
