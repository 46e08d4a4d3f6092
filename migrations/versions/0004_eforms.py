"""eForms: forms, numbered form versions and submissions

Revision ID: 0004
Revises: 0003
Forms and their versions are inherited definitions (readable below the defining tenant,
writable only in place). Published versions are immutable: a trigger on both backends refuses
any change to a version that is not a draft, other than deprecating a published one, and any
deletion of one. On PostgreSQL every new table gets the row-level-security wall, and
submissions get a full-text index over their non-personal words.

Create Date: 2026-11-25 18:01:31
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_TABLES = ("forms", "form_versions", "submissions")
INHERITED = ("forms", "form_versions")
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
INHERITED_READ = (
    "EXISTS (SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) "
    "WHERE strpos(s.prefix, '/' || tenant_id::text || '/') > 0)"
)
IMMUTABLE_MESSAGE = "published form versions are immutable"

POSTGRESQL_IMMUTABILITY = f"""
CREATE FUNCTION nentang_form_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION '{IMMUTABLE_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.definition IS DISTINCT FROM OLD.definition OR NEW.digest <> OLD.digest
        OR NEW.number <> OLD.number OR NEW.form_id <> OLD.form_id
        OR NEW.tenant_id <> OLD.tenant_id
        OR NEW.published_at IS DISTINCT FROM OLD.published_at
        OR (OLD.status = 'deprecated' AND NEW.status <> 'deprecated')) THEN
        RAISE EXCEPTION '{IMMUTABLE_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$
"""
SQLITE_IMMUTABILITY = (
    f"""
CREATE TRIGGER form_versions_immutable_update BEFORE UPDATE ON form_versions
WHEN OLD.status <> 'draft' AND (
    NEW.definition IS NOT OLD.definition OR NEW.digest <> OLD.digest
    OR NEW.number <> OLD.number OR NEW.form_id <> OLD.form_id
    OR NEW.tenant_id <> OLD.tenant_id OR NEW.published_at IS NOT OLD.published_at
    OR (OLD.status = 'deprecated' AND NEW.status <> 'deprecated'))
BEGIN SELECT RAISE(ABORT, '{IMMUTABLE_MESSAGE}'); END
""",
    f"""
CREATE TRIGGER form_versions_immutable_delete BEFORE DELETE ON form_versions
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
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{app_role}"')
    for table in INHERITED:
        op.execute(f"CREATE POLICY inherited_read ON {table} FOR SELECT USING ({INHERITED_READ})")
    op.execute(POSTGRESQL_IMMUTABILITY)
    op.execute(
        "CREATE TRIGGER form_versions_immutable BEFORE UPDATE OR DELETE ON form_versions "
        "FOR EACH ROW EXECUTE FUNCTION nentang_form_version_guard()"
    )
    op.execute(
        "CREATE INDEX ix_submissions_search ON submissions "
        "USING gin (to_tsvector('simple', search_text))"
    )


def _postgresql_downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_submissions_search")
    op.execute("DROP TRIGGER IF EXISTS form_versions_immutable ON form_versions")
    op.execute("DROP FUNCTION IF EXISTS nentang_form_version_guard()")


def upgrade() -> None:
    op.create_table(
        "forms",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
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
            ["tenant_id"], ["tenants.id"], name=op.f("fk_forms_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_forms")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_forms_tenant_id_key")),
    )
    with op.batch_alter_table("forms", schema=None) as batch_op:
        batch_op.create_index("ix_forms_key", ["key"], unique=False)

    op.create_table(
        "form_versions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("form_id", sa.Uuid(), nullable=False),
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
            "status IN ('draft', 'published', 'deprecated')", name=op.f("ck_form_versions_status")
        ),
        sa.CheckConstraint("number >= 1", name=op.f("ck_form_versions_number")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "form_id"],
            ["forms.tenant_id", "forms.id"],
            name=op.f("fk_form_versions_tenant_id_form_id_forms"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "form_id", "number", name=op.f("pk_form_versions")),
    )
    with op.batch_alter_table("form_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_form_versions_one_draft",
            ["tenant_id", "form_id"],
            unique=True,
            sqlite_where=sa.text("status = 'draft'"),
            postgresql_where=sa.text("status = 'draft'"),
        )

    op.create_table(
        "submissions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=False),
        sa.Column("form_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("form_id", sa.Uuid(), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'submitted')", name=op.f("ck_submissions_status")),
        sa.ForeignKeyConstraint(
            ["form_tenant_id", "form_id", "form_version"],
            ["form_versions.tenant_id", "form_versions.form_id", "form_versions.number"],
            name=op.f("fk_submissions_form_tenant_id_form_id_form_version_form_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_submissions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_submissions")),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_submissions_form_key", ["tenant_id", "form_key", "created_at"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        for statement in SQLITE_IMMUTABILITY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_downgrade()
    else:
        op.execute("DROP TRIGGER IF EXISTS form_versions_immutable_update")
        op.execute("DROP TRIGGER IF EXISTS form_versions_immutable_delete")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_form_key")

    op.drop_table("submissions")
    with op.batch_alter_table("form_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_form_versions_one_draft",
            sqlite_where=sa.text("status = 'draft'"),
            postgresql_where=sa.text("status = 'draft'"),
        )

    op.drop_table("form_versions")
    with op.batch_alter_table("forms", schema=None) as batch_op:
        batch_op.drop_index("ix_forms_key")

    op.drop_table("forms")
