"""Imports every model so that ``Base.metadata`` knows all tables (for Alembic and tests)."""

from app.audit.models import AuditRecord
from app.cases.models import Case, CaseHistory, CaseTask, CaseTimer, Delegation
from app.core.idempotency import IdempotencyRecord
from app.core.outbox import OutboxEvent
from app.deliveries.models import Delivery, DeliveryAttempt, Subscription, WebhookSecret
from app.forms.models import Attachment, Form, FormVersion, Submission
from app.identity.models import ApiClient, Principal, RoleGrant
from app.reports.models import Report
from app.sharing.models import DataService, GatewayTrust, Lookup
from app.signing.models import CaseSignature, SigningConfig
from app.tenancy.models import Tenant
from app.workflows.models import TenantCalendar, Workflow, WorkflowVersion

__all__ = [
    "ApiClient", "Attachment", "AuditRecord", "Case", "CaseHistory", "CaseSignature",
    "CaseTask", "CaseTimer", "DataService", "Delegation", "Delivery", "DeliveryAttempt", "Form",
    "FormVersion", "GatewayTrust", "IdempotencyRecord", "Lookup", "OutboxEvent", "Principal",
    "Report", "RoleGrant", "SigningConfig", "Submission", "Subscription", "Tenant",
    "TenantCalendar", "WebhookSecret", "Workflow", "WorkflowVersion",
]
