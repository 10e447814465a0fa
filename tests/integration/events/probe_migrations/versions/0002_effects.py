"""The probe service's read table: one row per effect, to count them.

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
    op.execute(
        "CREATE TABLE effects (id bigserial PRIMARY KEY, event_id uuid NOT NULL, lead_id uuid NOT NULL,"
        " seq integer NOT NULL DEFAULT 0)"
    )
    op.execute("CREATE TABLE lead_counts (lead_id uuid PRIMARY KEY, n integer NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE lead_counts")
    op.execute("DROP TABLE effects")
