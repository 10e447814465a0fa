"""Leads identified by the source system's id (imports without e-mail), and what an import
detected and recorded as history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = [
    # (system, external_id) -> lead: a re-import of the same export finds its leads by it.
    """
    CREATE TABLE external_ids (
        system text NOT NULL,
        external_id text NOT NULL,
        lead_id uuid NOT NULL,
        outcome text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (system, external_id)
    )
    """,
    "CREATE INDEX external_ids_lead_idx ON external_ids (lead_id)",
    "ALTER TABLE imports ADD COLUMN file_format jsonb",
    "ALTER TABLE imports ADD COLUMN unchanged integer NOT NULL DEFAULT 0",
    "ALTER TABLE imports ADD COLUMN history_won integer NOT NULL DEFAULT 0",
    "ALTER TABLE imports ADD COLUMN history_lost integer NOT NULL DEFAULT 0",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for column in ("history_lost", "history_won", "unchanged", "file_format"):
        op.execute(f"ALTER TABLE imports DROP COLUMN IF EXISTS {column}")
    op.execute("DROP TABLE IF EXISTS external_ids")
