"""deliveries: outbox events on their way to webhook targets, and webhook signing keys

Revision ID: 0010
Revises: 0009
A delivery is written with its event and leased by the worker that sends it; the pending
ones are indexed by due time and by stream (tenant, case, target), which keeps a stream in
order. On PostgreSQL both tables get the row-level-security wall.

Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NEW_TABLES = ("deliveries", "webhook_secrets")
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
PENDING = "status = 'pending'"


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("ordering_key", sa.Uuid(), nullable=False),
        sa.Column("aggregate_seq", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name=op.f("ck_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["outbox_events.tenant_id", "outbox_events.id"],
            name=op.f("fk_deliveries_tenant_id_event_id_outbox_events"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_deliveries_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.create_index(
            "ix_deliveries_stream",
            ["tenant_id", "ordering_key", "target", "aggregate_seq", "ordinal"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.create_index(
            "ix_deliveries_listing", ["tenant_id", "status", "created_at"], unique=False
        )
    op.create_table(
        "webhook_secrets",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_secrets_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_secrets")),
    )
    with op.batch_alter_table("webhook_secrets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_secrets_tenant", ["tenant_id", "created_at"], unique=False
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


def downgrade() -> None:
    with op.batch_alter_table("webhook_secrets", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_secrets_tenant")
    op.drop_table("webhook_secrets")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_listing")
        batch_op.drop_index(
            "ix_deliveries_stream",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.drop_index(
            "ix_deliveries_due",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
    op.drop_table("deliveries")
