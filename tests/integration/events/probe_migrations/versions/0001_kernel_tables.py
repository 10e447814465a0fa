"""Kernel tables: event_log, outbox, inbox, timers, projection_checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from leadflow.events.schema import drop_kernel_tables, kernel_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    kernel_tables(op)


def downgrade() -> None:
    drop_kernel_tables(op)
