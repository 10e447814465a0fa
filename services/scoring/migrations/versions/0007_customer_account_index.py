"""scoring: a partial index of the customers by account

A new person's hand-raise at a customer account opens an expansion (issue 30): scoring asks,
once per consumer batch, which of the batch's accounts have a customer. Customers are few
among the leads; a partial index on the account id of the customers alone answers that
without reading the table.

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
    op.execute(
        "CREATE INDEX leads_customer_account ON leads ((profile->>'account_id')) "
        "WHERE (status = 'won' OR (status = 'open' AND cycle = 'expansion'))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX leads_customer_account")
