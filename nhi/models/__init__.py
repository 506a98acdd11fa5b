"""All mapped classes, imported here so Alembic and the app see one metadata."""

from nhi.models.audit import AuditChainHead, AuditEvent
from nhi.models.identities import Identity
from nhi.models.outbox import OutboxEvent
from nhi.models.users import User
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "Identity",
    "OutboxEvent",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
