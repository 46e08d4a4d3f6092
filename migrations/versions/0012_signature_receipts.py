"""signature receipts: the sealed PDF receipt of a signed step that issues a document

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_signatures", schema=None) as batch_op:
        batch_op.drop_column("receipt")
