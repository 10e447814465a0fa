"""sla-monitor: a configuration revision bumped by any change to policy sets or calendars.

Consumers and timers cache the parsed policy set and calendars in process and check this one
row per batch instead of re-reading both tables for every event. Statement triggers bump it,
so every writer (admin API, startup seed, hand-written SQL) invalidates every replica's
cache. It starts from the creation time in microseconds, so a schema dropped and recreated
under the same name never repeats a revision a running process has cached.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("sla_policy_sets", "sla_calendars")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sla_config_revision (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            revision bigint NOT NULL
        )
        """
    )
    op.execute(
        "INSERT INTO sla_config_revision (id, revision) "
        "VALUES (true, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)"
    )
    op.execute(
        """
        CREATE FUNCTION sla_bump_config_revision() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            UPDATE sla_config_revision SET revision = revision + 1;
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_bump_revision "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION sla_bump_config_revision()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_revision ON {table}")
    op.execute("DROP FUNCTION IF EXISTS sla_bump_config_revision()")
    op.execute("DROP TABLE IF EXISTS sla_config_revision")
