"""index of suspended tenants

Revision ID: 0003
Revises: 0002
Every request checks whether a suspended tenant lies on the paths of the caller's grants; a
partial index holds only the suspended tenants, so that check reads a handful of entries.

Create Date: 2026-11-25 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tenants_suspended_path", ["path"], unique=False,
            postgresql_where=sa.text("status <> 'active'"),
            sqlite_where=sa.text("status <> 'active'"))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_index("ix_tenants_suspended_path")
