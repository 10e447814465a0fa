"""scoring: a lead's buying cycle and how many expansions it opened (issue 30)

The lifecycle goes on after won: a customer (status ``won``) whose interest returns opens an
``expansion`` cycle (``expansion.opened``), qualified again and measured apart; churn from the
CRM ends customer status (status ``churned``). ``cycle`` is the lifecycle's cycle of the
lead (``new_business`` for every lead stored so far); ``expansions`` numbers the expansion
cycles (``expansion.opened``'s ``expansion_number``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE leads ADD COLUMN cycle text NOT NULL DEFAULT 'new_business' "
        "CHECK (cycle IN ('new_business', 'expansion')), "
        "ADD COLUMN expansions integer NOT NULL DEFAULT 0"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE leads DROP COLUMN cycle, DROP COLUMN expansions")
