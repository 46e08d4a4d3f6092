"""initial schema

Revision ID: 0001
Revises:
Creates the tenant tree, identity, audit and idempotency tables, and on PostgreSQL
the row-level-security wall: helper functions, ENABLE + FORCE and a policy on every
tenant-scoped table, and the service role's privileges (audit is SELECT/INSERT only).

Create Date: 2026-11-25 13:30:12.474469
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_OWNED = ("principals", "api_clients", "role_grants", "audit_records", "idempotency_keys")
APP_PRIVILEGES = {
    "tenants": "SELECT, INSERT, UPDATE",
    "principals": "SELECT, INSERT, UPDATE",
    "api_clients": "SELECT, INSERT, UPDATE",
    "role_grants": "SELECT, INSERT, UPDATE, DELETE",
    "audit_records": "SELECT, INSERT",
    "idempotency_keys": "SELECT, INSERT, UPDATE, DELETE",
    "alembic_version": "SELECT",
}

# An unset scope reads as '' after a SET LOCAL transaction ends: NULLIF turns it into NULL,
# unnest(NULL) yields no prefix, and the policies match nothing (fail closed).
SCOPE_FUNCTIONS = (
    """CREATE FUNCTION nentang_scope() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT string_to_array(NULLIF(current_setting('nentang.scope', true), ''), ',')
    $$""",
    """CREATE FUNCTION nentang_path_visible(p text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT EXISTS (
        SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) WHERE starts_with(p, s.prefix)
      )
    $$""",
)
TENANT_POLICY = "nentang_path_visible(path)"
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
# Columns other than tenant_id that name a tenant: a written row's must be in scope too.
TENANT_REFERENCES = {"role_grants": ("node_id",)}


def _enable_rls(table: str, predicate: str) -> None:
    check = " AND ".join(
        [predicate]
        + [f"EXISTS (SELECT 1 FROM tenants r WHERE r.id = {column})"  # noqa: S608 (constants)
           for column in TENANT_REFERENCES.get(table, ())]
    )
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_scope ON {table} USING ({predicate}) WITH CHECK ({check})"
    )


def _postgresql_upgrade() -> None:
    app_role = context.config.attributes["app_role"]
    for statement in SCOPE_FUNCTIONS:
        op.execute(statement)
    _enable_rls("tenants", TENANT_POLICY)
    for table in TENANT_OWNED:
        _enable_rls(table, OWNED_POLICY)
    for table, privileges in APP_PRIVILEGES.items():
        op.execute(f'GRANT {privileges} ON {table} TO "{app_role}"')


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column(
            "path",
            sa.String(length=512).with_variant(sa.String(length=512, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('ministry', 'province', 'commune', 'agency')", name=op.f("ck_tenants_kind")
        ),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_tenants_status")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["tenants.id"], name=op.f("fk_tenants_parent_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("code", name=op.f("uq_tenants_code")),
        sa.UniqueConstraint("path", name=op.f("uq_tenants_path")),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.create_index("ix_tenants_parent_id_code", ["parent_id", "code"], unique=False)

    op.create_table(
        "audit_records",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "before",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "after",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_records_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name=op.f("pk_audit_records")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_idempotency_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "tenant_id",
            "principal_id",
            "key",
            name=op.f("uq_idempotency_keys_tenant_id_principal_id_key"),
        ),
    )
    op.create_table(
        "principals",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('client')", name=op.f("ck_principals_kind")),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_principals_status")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_principals_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_principals")),
    )
    op.create_table(
        "api_clients",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "principal_id"],
            ["principals.tenant_id", "principals.id"],
            name=op.f("fk_api_clients_tenant_id_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "principal_id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_api_clients_client_id")),
    )
    op.create_table(
        "role_grants",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["tenants.id"], name=op.f("fk_role_grants_node_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "principal_id"],
            ["principals.tenant_id", "principals.id"],
            name=op.f("fk_role_grants_tenant_id_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_role_grants")),
        sa.UniqueConstraint(
            "tenant_id",
            "principal_id",
            "role",
            "node_id",
            name=op.f("uq_role_grants_tenant_id_principal_id_role_node_id"),
        ),
    )
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_grants_node_id"), ["node_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("tenants", *TENANT_OWNED):
            op.execute(f"DROP POLICY IF EXISTS tenant_scope ON {table}")
        op.execute("DROP FUNCTION IF EXISTS nentang_path_visible(text)")
        op.execute("DROP FUNCTION IF EXISTS nentang_scope()")
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_grants_node_id"))

    op.drop_table("role_grants")
    op.drop_table("api_clients")
    op.drop_table("principals")
    op.drop_table("idempotency_keys")
    op.drop_table("audit_records")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_index("ix_tenants_parent_id_code")

    op.drop_table("tenants")
