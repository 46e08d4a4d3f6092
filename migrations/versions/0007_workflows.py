"""workflows: workflow definitions and their numbered versions

Revision ID: 0007
Revises: 0006
Workflows are inherited definitions like forms (readable below the defining tenant, writable
only in place). Published versions are immutable: a trigger on both backends refuses any
change to a version that is not a draft, other than deprecating a published one, and any
deletion of one. On PostgreSQL both tables get the row-level-security wall.

Create Date: 2026-11-25 22:18:56
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NEW_TABLES = ("workflows", "workflow_versions")
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
INHERITED_READ = (
    "EXISTS (SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) "
    "WHERE strpos(s.prefix, '/' || tenant_id::text || '/') > 0)"
)
IMMUTABLE_MESSAGE = "published workflow versions are immutable"
CHANGED = (
    "NEW.definition IS DISTINCT FROM OLD.definition OR NEW.digest <> OLD.digest "
    "OR NEW.number <> OLD.number OR NEW.workflow_id <> OLD.workflow_id "
    "OR NEW.tenant_id <> OLD.tenant_id "
    "OR NEW.published_at IS DISTINCT FROM OLD.published_at "
    "OR (OLD.status = 'deprecated' AND NEW.status <> 'deprecated')"
)

POSTGRESQL_IMMUTABILITY = f"""
CREATE FUNCTION nentang_workflow_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION '{IMMUTABLE_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND ({CHANGED}) THEN
        RAISE EXCEPTION '{IMMUTABLE_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$
"""
SQLITE_IMMUTABILITY = (
    f"""
CREATE TRIGGER workflow_versions_immutable_update BEFORE UPDATE ON workflow_versions
WHEN OLD.status <> 'draft' AND ({CHANGED.replace("IS DISTINCT FROM", "IS NOT")})
BEGIN SELECT RAISE(ABORT, '{IMMUTABLE_MESSAGE}'); END
""",
    f"""
CREATE TRIGGER workflow_versions_immutable_delete BEFORE DELETE ON workflow_versions
WHEN OLD.status <> 'draft'
BEGIN SELECT RAISE(ABORT, '{IMMUTABLE_MESSAGE}'); END
""",
)


def _postgresql_upgrade() -> None:
    app_role = context.config.attributes["app_role"]
    for table in NEW_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_scope ON {table} USING ({OWNED_POLICY}) "
            f"WITH CHECK ({OWNED_POLICY})"
        )
        op.execute(f"CREATE POLICY inherited_read ON {table} FOR SELECT USING ({INHERITED_READ})")
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{app_role}"')
    op.execute(POSTGRESQL_IMMUTABILITY)
    op.execute(
        "CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE OR DELETE ON workflow_versions "
        "FOR EACH ROW EXECUTE FUNCTION nentang_workflow_version_guard()"
    )


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("base_tenant_id", sa.Uuid(), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_reason", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_workflows_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_workflows_tenant_id_key")),
    )
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.create_index("ix_workflows_form_key", ["form_key"], unique=False)
        batch_op.create_index("ix_workflows_key", ["key"], unique=False)

    op.create_table(
        "workflow_versions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=128), nullable=True),
        sa.Column("deprecated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'deprecated')",
            name=op.f("ck_workflow_versions_status"),
        ),
        sa.CheckConstraint("number >= 1", name=op.f("ck_workflow_versions_number")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "workflow_id"],
            ["workflows.tenant_id", "workflows.id"],
            name=op.f("fk_workflow_versions_tenant_id_workflow_id_workflows"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "workflow_id", "number", name=op.f("pk_workflow_versions")
        ),
    )
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_workflow_versions_one_draft",
            ["tenant_id", "workflow_id"],
            unique=True,
            sqlite_where=sa.text("status = 'draft'"),
            postgresql_where=sa.text("status = 'draft'"),
        )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        for statement in SQLITE_IMMUTABILITY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS workflow_versions_immutable ON workflow_versions")
        op.execute("DROP FUNCTION IF EXISTS nentang_workflow_version_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS workflow_versions_immutable_update")
        op.execute("DROP TRIGGER IF EXISTS workflow_versions_immutable_delete")
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_workflow_versions_one_draft",
            sqlite_where=sa.text("status = 'draft'"),
            postgresql_where=sa.text("status = 'draft'"),
        )
    op.drop_table("workflow_versions")
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_index("ix_workflows_key")
        batch_op.drop_index("ix_workflows_form_key")
    op.drop_table("workflows")
