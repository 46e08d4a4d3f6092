"""Expand (demonstration): a new nullable column on ``cases``, back-filled in small batches
(500 rows a transaction) and indexed concurrently, while the release before it keeps serving.

The rules it follows are the project's rules for every migration that runs under load:
``lock_timeout`` so a DDL lock never queues requests for long (a timeout fails the step,
which is retried; it never blocks the service), nullable columns with no volatile default (a
catalogue-only change), back-fills in short transactions, and indexes built ``CONCURRENTLY``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op
from alembic.script import ScriptDirectory

revision = "e1_expand"
# On top of whatever the release's head is, so the demonstration never goes stale.
down_revision = ScriptDirectory(str(Path(__file__).resolve().parents[2] / "migrations"),
                                version_locations=[str(Path(__file__).resolve().parents[2]
                                                       / "migrations" / "versions")]
                                ).get_current_head()
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.execute("SET lock_timeout = '2s'")
    op.execute("ALTER TABLE cases ADD COLUMN status_code smallint")
    with op.get_context().autocommit_block():
        while True:
            done = op.get_bind().exec_driver_sql(
                "UPDATE cases SET status_code = CASE status WHEN 'open' THEN 1 "
                "WHEN 'closed' THEN 2 ELSE 0 END "
                "WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM cases "
                "WHERE status_code IS NULL LIMIT 500)")
            if not done.rowcount:
                break
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_cases_status_code "
                   "ON cases (tenant_id, status_code)")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_cases_status_code")
    op.execute("ALTER TABLE cases DROP COLUMN IF EXISTS status_code")
