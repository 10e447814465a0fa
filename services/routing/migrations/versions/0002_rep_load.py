"""routing: maintained open-lead counters (rep_load) and a day index on rep_daily

A routing decision needs every rep's open-lead count. Counting open leads with GROUP BY
grows with the number of open leads; instead a statement trigger on ``leads`` appends the
net change per rep to ``rep_load_delta`` (insert-only: no hot counter rows to wait on or
deadlock over), and the decision batch, holding the routing decision lock, folds the
deltas into ``rep_load`` while it reads them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of store.SALES_OPEN_STAGES as of this revision: the stages that count
# against a rep's open cap.
OPEN = "'{mql,sal,sql,opportunity,on_hold}'::text[]"


def upgrade() -> None:
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar()
    q = f'"{schema}"'
    op.execute("CREATE TABLE rep_load (rep_id text PRIMARY KEY, open integer NOT NULL)")
    op.execute(
        "CREATE TABLE rep_load_delta (id bigserial PRIMARY KEY, rep_id text NOT NULL, "
        "delta integer NOT NULL)"
    )
    op.execute(
        f"""
        INSERT INTO rep_load (rep_id, open)
        SELECT rep_id, count(*) FROM leads
        WHERE rep_id IS NOT NULL AND stage = ANY({OPEN}) GROUP BY rep_id
        """
    )
    open_new = f"rep_id IS NOT NULL AND stage = ANY({OPEN})"
    op.execute(
        f"""
        CREATE FUNCTION rep_load_track() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            INSERT INTO {q}.rep_load_delta (rep_id, delta)
            SELECT rep_id, count(*) FROM new_rows WHERE {open_new} GROUP BY rep_id;
          ELSIF TG_OP = 'UPDATE' THEN
            INSERT INTO {q}.rep_load_delta (rep_id, delta)
            SELECT rep_id, sum(d) FROM (
              SELECT rep_id, -1 AS d FROM old_rows WHERE {open_new}
              UNION ALL
              SELECT rep_id, 1 AS d FROM new_rows WHERE {open_new}
            ) changes GROUP BY rep_id HAVING sum(d) <> 0;
          ELSE
            INSERT INTO {q}.rep_load_delta (rep_id, delta)
            SELECT rep_id, -count(*) FROM old_rows WHERE {open_new} GROUP BY rep_id;
          END IF;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER leads_load_ins AFTER INSERT ON leads REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rep_load_track()"
    )
    op.execute(
        "CREATE TRIGGER leads_load_upd AFTER UPDATE ON leads "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rep_load_track()"
    )
    op.execute(
        "CREATE TRIGGER leads_load_del AFTER DELETE ON leads REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rep_load_track()"
    )
    op.execute("CREATE INDEX rep_daily_day_idx ON rep_daily (day)")


def downgrade() -> None:
    for trigger in ("leads_load_ins", "leads_load_upd", "leads_load_del"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON leads")
    op.execute("DROP FUNCTION IF EXISTS rep_load_track()")
    op.execute("DROP INDEX IF EXISTS rep_daily_day_idx")
    op.execute("DROP TABLE IF EXISTS rep_load_delta")
    op.execute("DROP TABLE IF EXISTS rep_load")
