"""sla-monitor: every published version of the lead management process definition.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sla_process_versions (
            version integer PRIMARY KEY,
            stages jsonb NOT NULL,
            published_by text,
            published_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS sla_process_versions")
