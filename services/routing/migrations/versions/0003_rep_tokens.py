"""routing: personal API tokens for reps (rep_tokens)

A rep works their own queue with their own token instead of the admin token: it can read
that rep's queue and leads and act on them as that rep, nothing else. Only a SHA-256 of
the token is stored; the token itself is shown once, when it is issued.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rep_tokens (
            token_id text PRIMARY KEY,
            token_sha256 bytea NOT NULL UNIQUE,
            rep_id text NOT NULL,
            name text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX rep_tokens_rep_idx ON rep_tokens (rep_id)")


def downgrade() -> None:
    op.execute("DROP TABLE rep_tokens")
