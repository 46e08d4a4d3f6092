"""Contract (demonstration): the expand step's index and column go again, concurrently and
under ``lock_timeout``, while the service keeps serving (no code reads them)."""

from __future__ import annotations

from alembic import op

revision = "c1_contract"
down_revision = "e1_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_cases_status_code")
    op.execute("SET lock_timeout = '2s'")
    op.execute("ALTER TABLE cases DROP COLUMN status_code")


def downgrade() -> None:
    op.execute("ALTER TABLE cases ADD COLUMN status_code smallint")
