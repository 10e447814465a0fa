"""routing: the contact a rep calls, and reassignment decisions

``leads.contact`` holds the contact card routing learns from intake's events (name, e-mail,
phone, company, title) so a rep's queue and lead view say whom to call; ``lead.erased``
blanks it and ``contact_erased_at`` keeps a late profile event from writing it back.
``reassignments`` keeps each reassignment's explanation beside the assignment decisions
(``assignments`` holds one arbiter row per qualification cycle, so it cannot hold them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE leads ADD COLUMN contact jsonb")
    op.execute("ALTER TABLE leads ADD COLUMN contact_erased_at timestamptz")
    op.execute(
        """
        CREATE TABLE reassignments (
            event_id uuid PRIMARY KEY,
            lead_id uuid NOT NULL,
            cycle integer NOT NULL,
            decided_at timestamptz NOT NULL,
            explanation jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX reassignments_lead_idx ON reassignments (lead_id, decided_at)")


def downgrade() -> None:
    op.execute("DROP TABLE reassignments")
    op.execute("ALTER TABLE leads DROP COLUMN contact_erased_at")
    op.execute("ALTER TABLE leads DROP COLUMN contact")
