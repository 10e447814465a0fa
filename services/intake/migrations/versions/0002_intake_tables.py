"""Intake's own tables: leads and their keys, accounts, API keys, forms, idempotency,
scans, imports, activities.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = [
    """
    CREATE TABLE leads (
        lead_id uuid PRIMARY KEY,
        email text,
        phone text,
        name_key text,
        company_domain text,
        contact jsonb NOT NULL DEFAULT '{}'::jsonb,
        field_times jsonb NOT NULL DEFAULT '{}'::jsonb,
        consent jsonb,
        account jsonb,
        flags jsonb NOT NULL DEFAULT '{}'::jsonb,
        stage text NOT NULL DEFAULT 'inquiry',
        merged_into uuid,
        inquiries integer NOT NULL DEFAULT 1,
        erased_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX leads_phone_idx ON leads (phone) WHERE phone IS NOT NULL",
    "CREATE INDEX leads_name_domain_idx ON leads (company_domain, name_key) "
    "WHERE company_domain IS NOT NULL AND name_key IS NOT NULL",
    "CREATE INDEX leads_merged_into_idx ON leads (merged_into) WHERE merged_into IS NOT NULL",
    """
    CREATE TABLE lead_emails (
        email text PRIMARY KEY,
        lead_id uuid NOT NULL
    )
    """,
    "CREATE INDEX lead_emails_lead_idx ON lead_emails (lead_id)",
    """
    CREATE TABLE lead_keys (
        lead_id uuid PRIMARY KEY,
        key bytea,
        erased_at timestamptz
    )
    """,
    """
    CREATE TABLE accounts (
        domain text PRIMARY KEY,
        account_id text NOT NULL,
        name text,
        owner_rep_id text,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE api_keys (
        key_id uuid PRIMARY KEY,
        name text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        scopes text[] NOT NULL,
        device_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    )
    """,
    """
    CREATE TABLE forms (
        form_key text PRIMARY KEY,
        definition jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE idempotency_keys (
        scope text NOT NULL,
        key text NOT NULL,
        request_hash text NOT NULL,
        status integer,
        response jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scope, key)
    )
    """,
    """
    CREATE TABLE scans (
        device_id text NOT NULL,
        scan_id text NOT NULL,
        lead_id uuid NOT NULL,
        inquiry_id uuid NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (device_id, scan_id)
    )
    """,
    """
    CREATE TABLE imports (
        import_id uuid PRIMARY KEY,
        status text NOT NULL,
        filename text,
        mapping jsonb NOT NULL,
        rows_read integer NOT NULL DEFAULT 0,
        accepted integer NOT NULL DEFAULT 0,
        rejected integer NOT NULL DEFAULT 0,
        new_leads integer NOT NULL DEFAULT 0,
        matched integer NOT NULL DEFAULT 0,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )
    """,
    """
    CREATE TABLE import_rejections (
        import_id uuid NOT NULL,
        row_number integer NOT NULL,
        field text,
        reason text NOT NULL,
        PRIMARY KEY (import_id, row_number)
    )
    """,
    """
    CREATE TABLE activities (
        activity_id text PRIMARY KEY,
        lead_id uuid,
        anonymous_id text,
        email text,
        payload jsonb NOT NULL,
        occurred_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        attached_at timestamptz
    )
    """,
    "CREATE INDEX activities_pending_anon_idx ON activities (anonymous_id) "
    "WHERE lead_id IS NULL AND anonymous_id IS NOT NULL",
    "CREATE INDEX activities_pending_email_idx ON activities (email) "
    "WHERE lead_id IS NULL AND email IS NOT NULL",
    """
    CREATE TABLE anonymous_ids (
        anonymous_id text PRIMARY KEY,
        lead_id uuid NOT NULL
    )
    """,
]

TABLES = ["anonymous_ids", "activities", "import_rejections", "imports", "scans",
          "idempotency_keys", "forms", "api_keys", "accounts", "lead_keys", "lead_emails",
          "leads"]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}")
