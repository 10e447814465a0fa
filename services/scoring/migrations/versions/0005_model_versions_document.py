"""scoring: ``model_versions`` takes the versioned-document shape of the kernel
(``leadflow.events.documents.table_ddl``): ``model`` becomes ``doc`` (without the version
number, which is the row's), plus ``note``. Every published version is carried over.

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
    op.execute("ALTER TABLE model_versions RENAME COLUMN model TO doc")
    op.execute("UPDATE model_versions SET doc = doc - 'version'")
    op.execute("ALTER TABLE model_versions ADD COLUMN note text")
    op.execute(
        "ALTER TABLE model_versions ADD CONSTRAINT model_versions_version_check CHECK (version > 0)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE model_versions DROP CONSTRAINT model_versions_version_check")
    op.execute("ALTER TABLE model_versions DROP COLUMN note")
    op.execute("UPDATE model_versions SET doc = doc || jsonb_build_object('version', version)")
    op.execute("ALTER TABLE model_versions RENAME COLUMN doc TO model")
