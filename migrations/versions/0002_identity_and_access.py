"""identity and access

Revision ID: 0002
Revises: 0001
Adds users, custom roles, identity providers, authorization codes, refresh tokens and
federated login flows; client secret rotation, scopes, rate limits and last use; custom-role
grants. On PostgreSQL every new table gets the row-level-security wall. Roles and identity
providers are inherited: a scope also *reads* its roots' ancestors' rows, but writes only
inside its subtrees.

Create Date: 2026-11-25 15:22:31.803691
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = (
    "users",
    "roles",
    "identity_providers",
    "login_flows",
    "authorization_codes",
    "refresh_tokens",
)
INHERITED = ("roles", "identity_providers")
APP_PRIVILEGES = {
    "users": "SELECT, INSERT, UPDATE",
    "roles": "SELECT, INSERT, UPDATE, DELETE",
    "identity_providers": "SELECT, INSERT, UPDATE, DELETE",
    "login_flows": "SELECT, INSERT, UPDATE, DELETE",
    "authorization_codes": "SELECT, INSERT, UPDATE, DELETE",
    "refresh_tokens": "SELECT, INSERT, UPDATE, DELETE",
}
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
# A scope root's path names its ancestors: their definitions are readable below them.
INHERITED_READ = (
    "EXISTS (SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) "
    "WHERE strpos(s.prefix, '/' || tenant_id::text || '/') > 0)"
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
        op.execute(f'GRANT {APP_PRIVILEGES[table]} ON {table} TO "{app_role}"')
    for table in INHERITED:
        op.execute(f"CREATE POLICY inherited_read ON {table} FOR SELECT USING ({INHERITED_READ})")
    op.execute(f'GRANT DELETE ON principals TO "{app_role}"')


def _postgresql_downgrade() -> None:
    app_role = context.config.attributes["app_role"]
    op.execute(f'REVOKE DELETE ON principals FROM "{app_role}"')


def upgrade() -> None:
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_principals_kind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_principals_kind"), "kind IN ('client', 'user')"
        )
    op.create_table(
        "identity_providers",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret", sa.String(length=512), nullable=True),
        sa.Column("scopes", sa.String(length=512), nullable=False),
        sa.Column("match_claim", sa.String(length=64), nullable=False),
        sa.Column("jit_enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "jit_roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_identity_providers_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_identity_providers")),
        sa.UniqueConstraint("id", name=op.f("uq_identity_providers_id")),
    )
    op.create_table(
        "login_flows",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_login_flows_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_login_flows")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_login_flows_state_hash")),
    )
    op.create_table(
        "roles",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column(
            "permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_roles_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_roles")),
    )
    op.create_table(
        "authorization_codes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1024), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=2048), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "principal_id"],
            ["principals.tenant_id", "principals.id"],
            name=op.f("fk_authorization_codes_tenant_id_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_authorization_codes_code_hash")),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=2048), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "principal_id"],
            ["principals.tenant_id", "principals.id"],
            name=op.f("fk_refresh_tokens_tenant_id_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_refresh_tokens_tenant_id_family_id", ["tenant_id", "family_id"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("totp_required", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "principal_id"],
            ["principals.tenant_id", "principals.id"],
            name=op.f("fk_users_tenant_id_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "principal_id", name=op.f("pk_users")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_users_tenant_id_external_id")
        ),
        sa.UniqueConstraint("tenant_id", "username", name=op.f("uq_users_tenant_id_username")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "scopes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role_tenant_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("granted_by", sa.String(length=128), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_role_grants_role_tenant_id"), ["role_tenant_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_role_grants_role_tenant_id_role_roles"),
            "roles",
            ["role_tenant_id", "role"],
            ["tenant_id", "key"],
        )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_downgrade()
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_role_grants_role_tenant_id_role_roles"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_role_grants_role_tenant_id"))
        batch_op.drop_column("granted_by")
        batch_op.drop_column("role_tenant_id")

    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("rate_limit_per_minute")
        batch_op.drop_column("scopes")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_hash")

    op.drop_table("users")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_refresh_tokens_tenant_id_family_id")

    op.drop_table("refresh_tokens")
    op.drop_table("authorization_codes")
    op.drop_table("roles")
    op.drop_table("login_flows")
    op.drop_table("identity_providers")
    # Users cannot outlive this schema: their grants and principals go with it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('nentang.scope', '/', true)")
    user_ids = "SELECT id FROM principals WHERE kind = 'user'"
    op.execute(f"DELETE FROM role_grants WHERE principal_id IN ({user_ids})")  # noqa: S608
    op.execute("DELETE FROM principals WHERE kind = 'user'")
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_principals_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_principals_kind"), "kind IN ('client')")
