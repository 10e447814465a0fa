"""routing: leads' external ids, and the CRM events already applied

``lead_external_ids`` keeps the source system's id of a lead (intake's ``external_id`` and
``external_system`` on ``lead.captured`` / ``inquiry.received``; ``system`` is '' when the
caller did not name one) so a CRM outcome can name the lead the way the CRM knows it.
``crm_receipts`` keeps each CRM event's own id (its idempotency key) with the answer given,
so the CRM sending it again is answered the same and recorded once.

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
        """
        CREATE TABLE lead_external_ids (
            system text NOT NULL,
            external_id text NOT NULL,
            lead_id uuid NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (system, external_id)
        )
        """
    )
    op.execute("CREATE INDEX lead_external_ids_lead_idx ON lead_external_ids (lead_id)")
    op.execute(
        """
        CREATE TABLE crm_receipts (
            event_key text PRIMARY KEY,
            lead_id uuid NOT NULL,
            response jsonb NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE crm_receipts")
    op.execute("DROP TABLE lead_external_ids")
