"""routing: per-lead keys that seal reps' notes in the event log (crypto-shredding)

A rep's note (reject, recycle, contacted, sales-qualified, lost) is free text about a person.
Routing's event log is append-only, so the note is sealed with the lead's key
(``leadflow.events.shredding``) and ``lead.erased`` deletes the key: the events stay, the
notes become unreadable. Notes already in the log stay in clear (docs/erasure.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from leadflow.events.shredding import LEAD_KEYS_DDL

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(LEAD_KEYS_DDL)


def downgrade() -> None:
    op.execute("DROP TABLE lead_keys")
