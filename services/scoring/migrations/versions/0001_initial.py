"""scoring: kernel tables, lead scoring state, activities, model versions, tracks, jobs

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import orjson
from alembic import op
from sqlalchemy import text

from leadflow.events.schema import drop_kernel_tables, kernel_tables
from leadflow.scoring.builtin import default_tracks_data

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    kernel_tables(op)
    # One row per lead: the non-personal profile, the last published score and the
    # qualification / nurture state, so one event costs one row lock and one update.
    op.execute(
        """
        CREATE TABLE leads (
            lead_id uuid PRIMARY KEY,
            profile jsonb NOT NULL DEFAULT '{}'::jsonb,
            status text NOT NULL DEFAULT 'open',
            with_sales boolean NOT NULL DEFAULT false,
            qualified boolean NOT NULL DEFAULT false,
            qualified_at timestamptz,
            disqualified boolean NOT NULL DEFAULT false,
            disqualify_reason text,
            engagement_since timestamptz,
            score jsonb,
            scored_at timestamptz,
            reeval_at timestamptz,
            nurture_status text NOT NULL DEFAULT 'none',
            track_id text,
            track_version integer,
            nurture_step integer NOT NULL DEFAULT 0,
            nurture_reason text,
            nurture_next_due_at timestamptz,
            enrolled_at timestamptz,
            outcome text,
            outcome_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX leads_open ON leads (lead_id) WHERE status = 'open'")
    op.execute(
        """
        CREATE TABLE activities (
            lead_id uuid NOT NULL,
            activity_key text NOT NULL,
            activity_type text NOT NULL,
            occurred_at timestamptz NOT NULL,
            url text,
            content_id text,
            campaign text,
            properties jsonb NOT NULL DEFAULT '{}'::jsonb,
            PRIMARY KEY (lead_id, activity_key)
        )
        """
    )
    op.execute("CREATE INDEX activities_lead_time ON activities (lead_id, occurred_at DESC)")
    op.execute(
        """
        CREATE TABLE model_versions (
            version integer PRIMARY KEY,
            model jsonb NOT NULL,
            published_by text,
            published_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE tracks (
            track_id text PRIMARY KEY,
            doc jsonb NOT NULL,
            version integer NOT NULL DEFAULT 1,
            active boolean NOT NULL DEFAULT true,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rescore_jobs (
            job_id uuid PRIMARY KEY,
            model_version integer NOT NULL,
            status text NOT NULL DEFAULT 'running',
            total integer NOT NULL DEFAULT 0,
            processed integer NOT NULL DEFAULT 0,
            changed integer NOT NULL DEFAULT 0,
            qualified integer NOT NULL DEFAULT 0,
            disqualified integer NOT NULL DEFAULT 0,
            cursor uuid,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )
        """
    )
    conn = op.get_bind()
    for track in default_tracks_data():
        conn.execute(
            text("INSERT INTO tracks (track_id, doc) VALUES (:id, CAST(:doc AS jsonb))"),
            {"id": track["id"], "doc": orjson.dumps(track).decode()},
        )


def downgrade() -> None:
    for table in ("rescore_jobs", "tracks", "model_versions", "activities", "leads"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    drop_kernel_tables(op)
