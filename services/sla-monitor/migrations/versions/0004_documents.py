"""sla-monitor: the policy sets and the process definitions take the versioned-document
shape of the kernel (``leadflow.events.documents.table_ddl``): ``policies`` becomes ``doc``
= ``{"policies": [...]}``, ``stages`` becomes ``doc`` = ``{"stages": [...]}``, both gain
``note``. Every published version is carried over.

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

# table -> the column that held the document's one list (now its key in ``doc``)
MOVED = {"sla_policy_sets": "policies", "sla_process_versions": "stages"}


def upgrade() -> None:
    for table, column in MOVED.items():
        op.execute(f"ALTER TABLE {table} RENAME COLUMN {column} TO doc")
        op.execute(f"UPDATE {table} SET doc = jsonb_build_object('{column}', doc)")
        op.execute(f"ALTER TABLE {table} ADD COLUMN note text")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_version_check CHECK (version > 0)"
        )


def downgrade() -> None:
    for table, column in MOVED.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_version_check")
        op.execute(f"ALTER TABLE {table} DROP COLUMN note")
        op.execute(f"UPDATE {table} SET doc = doc->'{column}'")
        op.execute(f"ALTER TABLE {table} RENAME COLUMN doc TO {column}")
