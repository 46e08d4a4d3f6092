"""saved report definitions

Report definitions saved by a tenant (not inherited by the units below it), unique by key per
tenant. On PostgreSQL the table gets the row-level-security wall.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:12:05.412733
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_reports_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_reports")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_reports_tenant_id_key")),
    )

    if op.get_bind().dialect.name == "postgresql":
        app_role = context.config.attributes["app_role"]
        op.execute("ALTER TABLE reports ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE reports FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_scope ON reports USING ({OWNED_POLICY}) "
            f"WITH CHECK ({OWNED_POLICY})"
        )
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON reports TO "{app_role}"')


def downgrade() -> None:
    op.drop_table("reports")
