"""An import's row count, known once the file is counted: progress is rows read of it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL while not counted yet (and for imports made before the column existed).
    op.execute("ALTER TABLE imports ADD COLUMN rows_total integer")


def downgrade() -> None:
    op.execute("ALTER TABLE imports DROP COLUMN rows_total")
