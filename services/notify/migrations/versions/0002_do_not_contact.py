"""notify: a lead's do-not-contact request (intake's do_not_contact.changed).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE notify_leads ADD COLUMN do_not_contact boolean NOT NULL DEFAULT false"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE notify_leads DROP COLUMN do_not_contact")
