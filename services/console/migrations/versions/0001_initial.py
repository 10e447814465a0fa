"""console: users, the signing key, failed sign-ins

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users (
            user_id uuid PRIMARY KEY,
            email text NOT NULL,
            name text NOT NULL DEFAULT '',
            password_hash text NOT NULL,
            roles text[] NOT NULL DEFAULT '{}',
            rep_id text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX users_email_key ON users (lower(email))")
    op.execute(
        """
        CREATE TABLE signing_keys (
            kid text PRIMARY KEY,
            private_pem text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE login_failures (
            key text NOT NULL,
            failed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX login_failures_key_idx ON login_failures (key, failed_at)")


def downgrade() -> None:
    op.execute("DROP TABLE login_failures")
    op.execute("DROP TABLE signing_keys")
    op.execute("DROP TABLE users")
