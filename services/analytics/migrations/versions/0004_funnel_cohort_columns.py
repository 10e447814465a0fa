"""analytics: funnel cohorts keep one row per segment and period, a column per milestone

``funnel_cohort`` had a row per (grain, channel, campaign, period, milestone). A report
reads every milestone of a period together, and a rebuild inserted about five times as many
rows as there are periods: on a 1M-event log, 360k rows and index entries keyed by five
columns, about a quarter of the rebuild's Postgres time. Now a row per (grain, channel,
campaign, period) carries the eight counts (``inquiries`` .. ``disqualified``, the columns
of ``source_cohort``). The rows there are pivoted in place, so no rebuild is needed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# column -> the milestone (or outcome) the old rows named
COLUMNS: dict[str, str] = {
    "inquiries": "inquiry",
    "mqls": "mql",
    "sals": "sal",
    "sqls": "sql",
    "opportunities": "opportunity",
    "won": "won",
    "lost": "lost",
    "disqualified": "disqualified",
}


def upgrade() -> None:
    op.execute(
        "CREATE TABLE funnel_cohort_columns (grain text NOT NULL, channel text NOT NULL, "
        "campaign text NOT NULL, period date NOT NULL, "
        + ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in COLUMNS)
        + ", PRIMARY KEY (grain, channel, campaign, period))"
    )
    sums = ", ".join(
        f"coalesce(sum(leads) FILTER (WHERE milestone = '{m}'), 0)" for m in COLUMNS.values()
    )
    op.execute(
        f"INSERT INTO funnel_cohort_columns SELECT grain, channel, campaign, period, {sums} "
        "FROM funnel_cohort GROUP BY grain, channel, campaign, period"
    )
    op.execute("DROP TABLE funnel_cohort")
    op.execute("ALTER TABLE funnel_cohort_columns RENAME TO funnel_cohort")
    op.execute("ALTER INDEX funnel_cohort_columns_pkey RENAME TO funnel_cohort_pkey")


def downgrade() -> None:
    op.execute(
        "CREATE TABLE funnel_cohort_rows (grain text NOT NULL, channel text NOT NULL, "
        "campaign text NOT NULL, period date NOT NULL, milestone text NOT NULL, "
        "leads bigint NOT NULL DEFAULT 0, "
        "PRIMARY KEY (grain, channel, campaign, period, milestone))"
    )
    pairs = ", ".join(f"('{m}', {c})" for c, m in COLUMNS.items())
    op.execute(
        "INSERT INTO funnel_cohort_rows SELECT grain, channel, campaign, period, m, n "
        f"FROM funnel_cohort, LATERAL (VALUES {pairs}) AS v (m, n) WHERE n <> 0"
    )
    op.execute("DROP TABLE funnel_cohort")
    op.execute("ALTER TABLE funnel_cohort_rows RENAME TO funnel_cohort")
    op.execute("ALTER INDEX funnel_cohort_rows_pkey RENAME TO funnel_cohort_pkey")
