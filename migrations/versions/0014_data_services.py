"""data services: queries a unit publishes to other platforms, and the gateways it trusts

Revision ID: 0014
Revises: 0013
On PostgreSQL both tables get the row-level-security wall; a unit's gateway trust is also
readable by the units below it, which inherit it.

Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NEW_TABLES = ("data_services", "gateway_trusts")
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
INHERITED_READ = (
    "EXISTS (SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) "
    "WHERE strpos(s.prefix, '/' || tenant_id::text || '/') > 0)"
)


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "data_services",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("filters", _json(), nullable=False),
        sa.Column("consumers", _json(), nullable=False),
        sa.Column("personal_data", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_data_services_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_data_services")),
    )
    with op.batch_alter_table("data_services", schema=None) as batch_op:
        batch_op.create_index(
            "uq_data_services_version", ["tenant_id", "name", "version"], unique=True
        )
    op.create_table(
        "gateway_trusts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("audience", sa.String(length=500), nullable=False),
        sa.Column("keys", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_gateway_trusts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_gateway_trusts")),
    )
    if op.get_bind().dialect.name == "postgresql":
        app_role = context.config.attributes["app_role"]
        for table in NEW_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_scope ON {table} USING ({OWNED_POLICY}) "
                f"WITH CHECK ({OWNED_POLICY})"
            )
            op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{app_role}"')
        op.execute(
            f"CREATE POLICY inherited_read ON gateway_trusts FOR SELECT USING ({INHERITED_READ})"
        )


def downgrade() -> None:
    op.drop_table("gateway_trusts")
    with op.batch_alter_table("data_services", schema=None) as batch_op:
        batch_op.drop_index("uq_data_services_version")
    op.drop_table("data_services")
