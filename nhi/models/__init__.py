"""All mapped classes, imported here so Alembic and the app see one metadata."""

from nhi.models.approvals import Approval
from nhi.models.audit import AuditChainHead, AuditEvent
from nhi.models.identities import Identity
from nhi.models.outbox import OutboxEvent
from nhi.models.outcomes import DecisionOutcome
from nhi.models.permissions import AgentPermission
from nhi.models.ratelimit import RateLimitHit, RateLimitKey
from nhi.models.tools import Tool, ToolCatalogVersion
from nhi.models.users import User
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "AgentPermission",
    "Approval",
    "AuditChainHead",
    "AuditEvent",
    "DecisionOutcome",
    "Identity",
    "OutboxEvent",
    "RateLimitHit",
    "RateLimitKey",
    "Tool",
    "ToolCatalogVersion",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
