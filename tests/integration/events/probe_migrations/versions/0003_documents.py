"""The probe service's versioned document (``leadflow.events.documents``), to prove the
mechanism: one table of the shape every document kind uses.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from leadflow.events.documents import table_ddl

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(table_ddl("probe_documents"))


def downgrade() -> None:
    op.execute("DROP TABLE probe_documents")
