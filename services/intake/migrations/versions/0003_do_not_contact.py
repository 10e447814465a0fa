"""intake: a lead's do-not-contact flag, apart from its marketing e-mail consent

Marketing consent (the ``consent`` column) governs nurture e-mail only; ``do_not_contact``
records that the person asked for no contact at all, which stops sales too. Until now an
e-mail opt-out was read as both (docs/consent.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE leads ADD COLUMN do_not_contact boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE leads DROP COLUMN do_not_contact")
