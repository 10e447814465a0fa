"""notify: kernel tables, what it knows of leads and people, messages, webhook endpoints.

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

TABLES = (
    "webhook_attempts",
    "webhook_messages",
    "webhook_endpoints",
    "notify_messages",
    "notify_preferences",
    "notify_teams",
    "notify_reps",
    "notify_leads",
)


def upgrade() -> None:
    kernel_tables(op)
    # contact: intake's personal fields, dropped on erasure (erased stays true for good).
    op.execute(
        """
        CREATE TABLE notify_leads (
            lead_id uuid PRIMARY KEY,
            contact jsonb,
            consent boolean,
            opted_out boolean NOT NULL DEFAULT false,
            erased boolean NOT NULL DEFAULT false,
            scoring jsonb,
            last_nurture_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_reps (
            rep_id text PRIMARY KEY,
            name text,
            email text,
            team_id text,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_teams (
            team_id text PRIMARY KEY,
            manager_email text,
            slack_webhook_url text,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_preferences (
            address text PRIMARY KEY,
            preference text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_messages (
            message_id text PRIMARY KEY,
            kind text NOT NULL,
            channel text NOT NULL,
            recipient text NOT NULL,
            lead_id uuid,
            status text NOT NULL,
            subject text,
            context jsonb NOT NULL DEFAULT '{}'::jsonb,
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            caused_by text NOT NULL,
            caused_event_id uuid,
            caused_recorded_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX notify_messages_lead_idx ON notify_messages (lead_id, created_at)")
    op.execute(
        "CREATE INDEX notify_messages_digest_idx ON notify_messages (recipient) "
        "WHERE status = 'digest'"
    )
    op.execute(
        """
        CREATE TABLE webhook_endpoints (
            endpoint_id text PRIMARY KEY,
            url text NOT NULL,
            description text NOT NULL DEFAULT '',
            events text[] NOT NULL,
            secret text NOT NULL,
            previous_secret text,
            previous_until timestamptz,
            enabled boolean NOT NULL DEFAULT true,
            failing_since timestamptz,
            disabled_at timestamptz,
            disabled_reason text,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE webhook_messages (
            message_id text PRIMARY KEY,
            endpoint_id text NOT NULL REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
            lead_id uuid NOT NULL,
            seq bigserial,
            event_id uuid NOT NULL,
            event_type text NOT NULL,
            body text NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            attempts integer NOT NULL DEFAULT 0,
            last_status integer,
            last_error text,
            latency_ms double precision,
            created_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            UNIQUE (endpoint_id, event_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_messages_queue_idx ON webhook_messages (endpoint_id, lead_id, seq) "
        "WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX webhook_messages_log_idx ON webhook_messages (endpoint_id, created_at DESC)"
    )
    op.execute(
        """
        CREATE TABLE webhook_attempts (
            message_id text NOT NULL REFERENCES webhook_messages (message_id) ON DELETE CASCADE,
            attempt integer NOT NULL,
            attempted_at timestamptz NOT NULL,
            status integer,
            error text,
            latency_ms double precision NOT NULL,
            PRIMARY KEY (message_id, attempt)
        )
        """
    )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    drop_kernel_tables(op)
