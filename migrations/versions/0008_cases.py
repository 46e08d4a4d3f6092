"""cases: cases, their history, tasks and SLA timers; tenant calendars; the outbox

Revision ID: 0008
Revises: 0007
Cases belong to the tenant of their submission and pin their workflow version. The case
history is append-only: the service role may only read and insert it, and a trigger on both
backends refuses any update or deletion. Tenant calendars are inherited definitions. On
PostgreSQL every new table gets the row-level-security wall.

Create Date: 2026-11-25 22:29:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WRITABLE = ("outbox_events", "tenant_calendars", "cases", "case_tasks", "case_timers")
APPEND_ONLY = ("case_history",)
INHERITED = ("tenant_calendars",)
OWNED_POLICY = "EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_id)"
INHERITED_READ = (
    "EXISTS (SELECT 1 FROM unnest(nentang_scope()) AS s(prefix) "
    "WHERE strpos(s.prefix, '/' || tenant_id::text || '/') > 0)"
)
HISTORY_MESSAGE = "case history is append-only"
POSTGRESQL_APPEND_ONLY = f"""
CREATE FUNCTION nentang_case_history_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{HISTORY_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
END $$
"""
SQLITE_APPEND_ONLY = tuple(
    f"CREATE TRIGGER case_history_no_{verb.lower()} BEFORE {verb} ON case_history "
    f"BEGIN SELECT RAISE(ABORT, '{HISTORY_MESSAGE}'); END"
    for verb in ("UPDATE", "DELETE")
)


def _postgresql_upgrade() -> None:
    app_role = context.config.attributes["app_role"]
    for table in WRITABLE + APPEND_ONLY:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_scope ON {table} USING ({OWNED_POLICY}) "
            f"WITH CHECK ({OWNED_POLICY})"
        )
    for table in WRITABLE:
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{app_role}"')
    for table in APPEND_ONLY:
        op.execute(f'GRANT SELECT, INSERT ON {table} TO "{app_role}"')
    for table in INHERITED:
        op.execute(f"CREATE POLICY inherited_read ON {table} FOR SELECT USING ({INHERITED_READ})")
    op.execute(POSTGRESQL_APPEND_ONLY)
    op.execute(
        "CREATE TRIGGER case_history_append_only BEFORE UPDATE OR DELETE ON case_history "
        "FOR EACH ROW EXECUTE FUNCTION nentang_case_history_guard()"
    )


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("aggregate_type", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.Uuid(), nullable=False),
        sa.Column("aggregate_seq", sa.Integer(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_outbox_events_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_aggregate", ["aggregate_id", "aggregate_seq"], unique=False
        )
        batch_op.create_index("ix_outbox_events_created", ["created_at"], unique=False)

    op.create_table(
        "tenant_calendars",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_calendars_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_calendars")),
    )
    op.create_table(
        "cases",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("form_key", sa.String(length=64), nullable=False),
        sa.Column("workflow_key", sa.String(length=64), nullable=False),
        sa.Column("workflow_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "votes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("applicant", sa.String(length=64), nullable=False),
        sa.Column(
            "routes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "pauses",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_due_soon_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_due_soon_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_cases_status")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "submission_id"],
            ["submissions.tenant_id", "submissions.id"],
            name=op.f("fk_cases_tenant_id_submission_id_submissions"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cases_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["workflow_tenant_id", "workflow_id", "workflow_version"],
            [
                "workflow_versions.tenant_id",
                "workflow_versions.workflow_id",
                "workflow_versions.number",
            ],
            name=op.f("fk_cases_workflow_tenant_id_workflow_id_workflow_version_workflow_versions"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_listing", ["tenant_id", "status", "updated_at"], unique=False
        )
        batch_op.create_index("uq_cases_submission", ["tenant_id", "submission_id"], unique=True)

    op.create_table(
        "case_history",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("from_state", sa.String(length=64), nullable=True),
        sa.Column("to_state", sa.String(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("signature_ref", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "kind IN ('opened', 'action', 'vote', 'claim', 'release', 'assign', "
            "'breach', 'migrate')",
            name=op.f("ck_case_history_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["cases.tenant_id", "cases.id"],
            name=op.f("fk_case_history_tenant_id_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "case_id", "seq", name=op.f("pk_case_history")),
    )
    op.create_table(
        "case_tasks",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column(
            "at_path",
            sa.String(length=512).with_variant(sa.String(length=512, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["cases.tenant_id", "cases.id"],
            name=op.f("fk_case_tasks_tenant_id_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "case_id", "role", "at_path", name=op.f("pk_case_tasks")
        ),
    )
    with op.batch_alter_table("case_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_case_tasks_inbox", ["role", "at_path"], unique=False)

    op.create_table(
        "case_timers",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('case', 'state')", name=op.f("ck_case_timers_kind")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["cases.tenant_id", "cases.id"],
            name=op.f("fk_case_timers_tenant_id_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_case_timers")),
    )
    with op.batch_alter_table("case_timers", schema=None) as batch_op:
        batch_op.create_index("ix_case_timers_case", ["tenant_id", "case_id"], unique=False)
        batch_op.create_index(
            "ix_case_timers_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("fired_at IS NULL"),
            postgresql_where=sa.text("fired_at IS NULL"),
        )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS case_history_append_only ON case_history")
        op.execute("DROP FUNCTION IF EXISTS nentang_case_history_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS case_history_no_update")
        op.execute("DROP TRIGGER IF EXISTS case_history_no_delete")
    with op.batch_alter_table("case_timers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_case_timers_due",
            sqlite_where=sa.text("fired_at IS NULL"),
            postgresql_where=sa.text("fired_at IS NULL"),
        )
        batch_op.drop_index("ix_case_timers_case")

    op.drop_table("case_timers")
    with op.batch_alter_table("case_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_case_tasks_inbox")

    op.drop_table("case_tasks")
    op.drop_table("case_history")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("uq_cases_submission")
        batch_op.drop_index("ix_cases_listing")

    op.drop_table("cases")
    op.drop_table("tenant_calendars")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_created")
        batch_op.drop_index("ix_outbox_events_aggregate")

    op.drop_table("outbox_events")
