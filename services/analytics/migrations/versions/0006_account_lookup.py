"""analytics: find an account's people in the log by account id or company domain

The account page (``GET /v1/accounts/{key}``, issue 30) reads the leads whose intake facts
(``lead.captured`` / ``lead.profile_updated``) name the account; these two partial
expression indexes make that an index lookup instead of a scan of the whole log.

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

_ACCOUNT_FACTS = "event_type IN ('lead.captured', 'lead.profile_updated')"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX lead_event_log_account_id_idx ON lead_event_log "
        f"((payload->'account'->>'account_id')) WHERE {_ACCOUNT_FACTS}"
    )
    op.execute(
        "CREATE INDEX lead_event_log_account_domain_idx ON lead_event_log "
        f"((payload->'account'->>'domain')) WHERE {_ACCOUNT_FACTS}"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS lead_event_log_account_domain_idx")
    op.execute("DROP INDEX IF EXISTS lead_event_log_account_id_idx")
