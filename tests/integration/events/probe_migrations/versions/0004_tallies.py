"""The probe's batch handler state (``batch_probe``): one row per lead, what the batch
handler loads, threads through its decisions and saves.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE tallies (lead_id uuid PRIMARY KEY, n integer NOT NULL,"
        " seqs integer[] NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE tallies")
