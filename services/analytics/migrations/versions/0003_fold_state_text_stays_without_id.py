"""analytics: the fold state is stored as text; stage stays lose their serial id

``analytics_fold.state`` is the fold's own serialisation, read back only as text and parsed
by the service: as ``jsonb`` every write parsed it into the binary form and every read
printed it back (COPYing a rebuild's states cost about 5x as much as text). ``stage_stay``
is an insert-only fact table that nothing looks up by row: its ``bigserial`` key cost a
sequence call and a unique-index insertion per stay (about a third of a rebuild's COPY of
the stays). SREs can still read a state with ``state::jsonb``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE analytics_fold ALTER COLUMN state TYPE text USING state::text")
    op.execute("ALTER TABLE stage_stay DROP COLUMN id")


def downgrade() -> None:
    op.execute("ALTER TABLE analytics_fold ALTER COLUMN state TYPE jsonb USING state::jsonb")
    op.execute("ALTER TABLE stage_stay ADD COLUMN id bigserial PRIMARY KEY")
