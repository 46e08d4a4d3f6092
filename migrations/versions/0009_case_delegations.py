"""case delegations: an absent official's case work handed to a colleague for a period

Revision ID: 0009
Revises: 0008
The row lives in the delegator's home tenant; on PostgreSQL it gets the row-level-security
wall like every tenant-owned table.

Create Date: 2026-11-25 22:58:53
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"


def upgrade() -> None:
    op.create_table(
        "case_delegations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("delegator", sa.Uuid(), nullable=False),
        sa.Column("delegate", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_case_delegations_period")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "delegator"],
            ["principals.tenant_id", "principals.id"],
            name=op.f("fk_case_delegations_tenant_id_delegator_principals"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_case_delegations")),
    )
    with op.batch_alter_table("case_delegations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_delegations_delegate", ["delegate", "ends_at"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        app_role = context.config.attributes["app_role"]
        op.execute("ALTER TABLE case_delegations ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE case_delegations FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_scope ON case_delegations USING ({OWNED_POLICY}) "
            f"WITH CHECK ({OWNED_POLICY})"
        )
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON case_delegations TO "{app_role}"')


def downgrade() -> None:
    with op.batch_alter_table("case_delegations", schema=None) as batch_op:
        batch_op.drop_index("ix_case_delegations_delegate")
    op.drop_table("case_delegations")
