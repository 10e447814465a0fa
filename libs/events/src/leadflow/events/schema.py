"""The kernel's tables, created by each service's first Alembic migration via ``kernel_tables(op)``.

Every service owns one schema holding: ``event_log`` (append-only, optimistic concurrency by
``UNIQUE (lead_id, stream_version)``), ``outbox`` (written in the same transaction, drained by
the relay), ``inbox`` (consumer dedup, written with the state change), ``timers`` (durable,
claimed with ``FOR UPDATE SKIP LOCKED``) and ``projection_checkpoints``.
"""

from __future__ import annotations

from typing import Any

KERNEL_DDL = [
    """
    CREATE TABLE IF NOT EXISTS event_log (
        global_position bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        lead_id uuid NOT NULL,
        stream_version integer NOT NULL,
        event_type text NOT NULL,
        schema_version integer NOT NULL,
        payload jsonb NOT NULL,
        metadata jsonb NOT NULL,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT event_log_stream_version_unique UNIQUE (lead_id, stream_version)
    )
    """,
    "CREATE INDEX IF NOT EXISTS event_log_type_idx ON event_log (event_type, global_position)",
    # The log is append-only: refuse UPDATE and DELETE outright.
    """
    CREATE OR REPLACE FUNCTION event_log_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'event_log is append-only (% refused)', TG_OP;
    END $$
    """,
    """
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                       WHERE t.tgname = 'event_log_append_only'
                         AND c.relnamespace = current_schema()::regnamespace) THEN
            CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON event_log
            FOR EACH ROW EXECUTE FUNCTION event_log_is_append_only();
        END IF;
    END $$
    """,
    """
    CREATE TABLE IF NOT EXISTS outbox (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL,
        lead_id uuid NOT NULL,
        topic text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        headers jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS inbox (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS timers (
        key text PRIMARY KEY,
        kind text NOT NULL,
        lead_id uuid,
        due_at timestamptz NOT NULL,
        payload jsonb NOT NULL DEFAULT '{}'::jsonb,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX IF NOT EXISTS timers_due_idx ON timers (due_at)",
    """
    CREATE TABLE IF NOT EXISTS fired_timers (
        key text NOT NULL,
        kind text NOT NULL,
        lead_id uuid,
        due_at timestamptz NOT NULL,
        fired_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (key, due_at)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS projection_checkpoints (
        name text PRIMARY KEY,
        position bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]


def kernel_tables(op: Any) -> None:
    """Create the kernel tables in the current schema (call from a service's 0001 migration)."""
    for statement in KERNEL_DDL:
        op.execute(statement)


def drop_kernel_tables(op: Any) -> None:
    for table in (
        "projection_checkpoints",
        "fired_timers",
        "timers",
        "inbox",
        "outbox",
        "event_log",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS event_log_is_append_only()")
