"""routing: ``rule_sets`` takes the versioned-document shape of the kernel
(``leadflow.events.documents.table_ddl``): the version number leaves ``doc`` (it is the
row's), plus ``note``. Every published rule set is carried over.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE rule_sets SET doc = doc - 'version'")
    op.execute("ALTER TABLE rule_sets ADD COLUMN note text")
    op.execute("ALTER TABLE rule_sets ADD CONSTRAINT rule_sets_version_check CHECK (version > 0)")


def downgrade() -> None:
    op.execute("ALTER TABLE rule_sets DROP CONSTRAINT rule_sets_version_check")
    op.execute("ALTER TABLE rule_sets DROP COLUMN note")
    op.execute("UPDATE rule_sets SET doc = doc || jsonb_build_object('version', version)")
