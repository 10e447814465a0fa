"""scoring: a lead's stage is the kernel's lifecycle (issue #25 item 4)

Scoring kept four flags of its own (``qualified``, ``with_sales``, ``disqualified``, and the
customer / lost / churned ``status``); it now stores the kernel's ``LeadLifecycle`` (the
``stage`` and ``held_from`` columns beside the existing ``cycle``), moves it with the
lifecycle table and writes those flags from it. Existing leads get the stage their flags
say: a customer ``won`` (``customer`` once routing recorded it is the same to scoring), a
lost, churned or disqualified lead that stage, an MQL (or a lead sales works) ``mql`` —
scoring never stored the later sales stages, so the next of routing's events puts the lead
where routing has it — a lead in nurture ``nurture``, any other ``inquiry``. Merged, erased
and history leads keep their status; their stage follows the same rules.

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
    op.execute("ALTER TABLE leads ADD COLUMN stage text, ADD COLUMN held_from text")
    op.execute(
        """
        UPDATE leads SET stage = CASE
            WHEN status = 'won' THEN 'won'
            WHEN status = 'lost' THEN 'lost'
            WHEN status = 'churned' THEN 'churned'
            WHEN disqualified THEN 'disqualified'
            WHEN qualified OR with_sales THEN 'mql'
            WHEN nurture_status IN ('active', 'paused', 'exited', 'completed') THEN 'nurture'
            ELSE 'inquiry'
        END
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE leads DROP COLUMN stage, DROP COLUMN held_from")
