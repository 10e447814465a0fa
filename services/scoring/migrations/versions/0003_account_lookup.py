"""scoring: find an account's leads by account id or company domain

``GET /v1/accounts/{key}/score`` (issue 30) rolls an account's people up; these expression
indexes on the stored profile make finding them an index lookup.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX leads_account_id_idx ON leads ((profile->>'account_id'))")
    op.execute("CREATE INDEX leads_account_domain_idx ON leads ((profile->>'account_domain'))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS leads_account_domain_idx")
    op.execute("DROP INDEX IF EXISTS leads_account_id_idx")
