"""scoring: predictive snapshots, outcomes and trained predictive models

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Features and rule score frozen when the lead qualified (or sales took it): what the
    # predictive model may learn from, with nothing sales entered later.
    op.execute("ALTER TABLE leads ADD COLUMN snapshot jsonb, ADD COLUMN snapshot_at timestamptz")
    # One row per outcome event (won, lost, rejected, disqualified) with that cycle's snapshot.
    op.execute(
        """
        CREATE TABLE outcomes (
            event_id uuid PRIMARY KEY,
            lead_id uuid NOT NULL,
            outcome text NOT NULL,
            reason_code text,
            occurred_at timestamptz NOT NULL,
            snapshot jsonb NOT NULL,
            snapshot_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX outcomes_lead_time ON outcomes (lead_id, occurred_at DESC)")
    # Every trained model: the joblib pipeline, its weights for fast inference, its metrics.
    op.execute(
        """
        CREATE TABLE predictive_models (
            version integer PRIMARY KEY,
            weights jsonb NOT NULL,
            artifact bytea NOT NULL,
            metrics jsonb NOT NULL,
            promoted boolean NOT NULL DEFAULT false,
            trained_by text,
            trained_at timestamptz NOT NULL,
            promoted_at timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS predictive_models")
    op.execute("DROP TABLE IF EXISTS outcomes")
    op.execute("ALTER TABLE leads DROP COLUMN IF EXISTS snapshot, DROP COLUMN IF EXISTS snapshot_at")
