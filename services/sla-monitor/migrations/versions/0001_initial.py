"""sla-monitor: kernel tables, policy set versions, calendars, lead facts, SLA instances.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from leadflow.events.schema import drop_kernel_tables, kernel_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    kernel_tables(op)
    op.execute(
        """
        CREATE TABLE sla_policy_sets (
            version integer PRIMARY KEY,
            policies jsonb NOT NULL,
            published_by text,
            published_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE sla_calendars (
            calendar_id text PRIMARY KEY,
            body jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE sla_leads (
            lead_id uuid PRIMARY KEY,
            grade text, region text, country text, channel text,
            rep_id text, team_id text,
            seen jsonb NOT NULL DEFAULT '{}'::jsonb,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE sla_instances (
            sla_id text PRIMARY KEY,
            lead_id uuid NOT NULL,
            policy_id text NOT NULL,
            policy_version integer NOT NULL,
            measures text,
            side text NOT NULL DEFAULT 'sales',
            status text NOT NULL,
            started_by_event text NOT NULL,
            started_at timestamptz NOT NULL,
            warn_at timestamptz,
            due_at timestamptz NOT NULL,
            business_time boolean NOT NULL,
            calendar_id text NOT NULL,
            rep_id text,
            team_id text,
            warned_at timestamptz,
            breached_at timestamptz,
            late_by_seconds double precision,
            escalation_step integer NOT NULL DEFAULT 0,
            last_action text,
            met_at timestamptz,
            met_by_event text,
            on_time boolean,
            elapsed_seconds double precision,
            elapsed_business_seconds double precision,
            closed_at timestamptz,
            closed_by_event text
        )
        """
    )
    op.execute("CREATE INDEX sla_instances_lead_idx ON sla_instances (lead_id, started_at)")
    op.execute("CREATE INDEX sla_instances_status_idx ON sla_instances (status, due_at)")
    op.execute("CREATE INDEX sla_instances_policy_idx ON sla_instances (policy_id, started_at)")
    op.execute(
        """
        CREATE TABLE sla_escalations (
            sla_id text NOT NULL REFERENCES sla_instances (sla_id),
            step integer NOT NULL,
            action text NOT NULL,
            raised_at timestamptz NOT NULL,
            notify jsonb NOT NULL DEFAULT '[]'::jsonb,
            PRIMARY KEY (sla_id, step)
        )
        """
    )


def downgrade() -> None:
    for table in ("sla_escalations", "sla_instances", "sla_leads", "sla_calendars", "sla_policy_sets"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    drop_kernel_tables(op)
