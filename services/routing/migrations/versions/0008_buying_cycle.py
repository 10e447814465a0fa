"""routing: a lead's buying cycle beside its stage (issue 30)

The lifecycle goes on after won: a customer's new buying cycle is an ``expansion`` that
re-runs the funnel (``leadflow.events.lifecycle``). Routing checks moves with the lead's whole
lifecycle (stage, held_from, cycle), so it stores the cycle too. Every lead stored so far
is in a new-business cycle; leads at ``won`` stay there (``won`` counts as a customer stage,
so no stage is rewritten).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE leads ADD COLUMN buying_cycle text NOT NULL DEFAULT 'new_business' "
        "CHECK (buying_cycle IN ('new_business', 'expansion'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE leads DROP COLUMN buying_cycle")
