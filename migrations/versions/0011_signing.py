"""signing: a tenant's signing set-up (inherited below) and the signatures asked for at steps

Revision ID: 0011
Revises: 0010
On PostgreSQL both tables get the row-level-security wall; a tenant's signing set-up is also
readable by the units below it, which inherit it.

Create Date: 2026-12-07 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NEW_TABLES = ("signing_configs", "case_signatures")
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
INHERITED_READ = (
    "EXISTS (SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) "
    "WHERE strpos(s.prefix, '/' || tenant_id::text || '/') > 0)"
)


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "signing_configs",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("policy", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_signing_configs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_signing_configs")),
    )
    op.create_table(
        "case_signatures",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("config_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.String(length=255), nullable=True),
        sa.Column("case_revision", sa.Integer(), nullable=False),
        sa.Column("request", _json(), nullable=False),
        sa.Column("document", _json(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_by_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("instructions", _json(), nullable=True),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("verification", _json(), nullable=True),
        sa.Column("chain", _json(), nullable=True),
        sa.Column("failure", _json(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'failed', 'expired')",
            name=op.f("ck_case_signatures_status"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["cases.tenant_id", "cases.id"],
            name=op.f("fk_case_signatures_tenant_id_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_case_signatures")),
    )
    with op.batch_alter_table("case_signatures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_signatures_case", ["tenant_id", "case_id", "requested_at"], unique=False
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
            f"CREATE POLICY inherited_read ON signing_configs FOR SELECT USING ({INHERITED_READ})"
        )


def downgrade() -> None:
    with op.batch_alter_table("case_signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_case_signatures_case")
    op.drop_table("case_signatures")
    op.drop_table("signing_configs")
