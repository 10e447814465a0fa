"""scoring: marketing-qualified accounts, one row each (``account.qualified`` is emitted once)

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
        "CREATE TABLE account_qualifications (account_id text PRIMARY KEY, "
        "lead_id uuid NOT NULL, qualified_at timestamptz NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE account_qualifications")
