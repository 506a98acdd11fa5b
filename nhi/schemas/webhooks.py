"""Webhook subscription and delivery schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from nhi.models.webhooks import DELIVERY_STATUSES
from nhi.schemas.common import (
    PaginationArgs,
    StrictSchema,
    TrimmedString,
    UTCDateTime,
    optional_text,
    page_schema,
)

URL_LENGTH = validate.Length(min=1, max=2000, error="must be 1 to {max} characters")
EVENTS_ERROR = 'must list at least one event type, or ["*"]'


def _events(required: bool) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=required,
        validate=validate.Length(min=1, max=50, error=EVENTS_ERROR),
    )


class WebhookCreateSchema(StrictSchema):
    url = TrimmedString(required=True, validate=URL_LENGTH)
    events = _events(True)
    description = optional_text(500, allow_none=True)


class WebhookUpdateSchema(StrictSchema):
    url = TrimmedString(validate=URL_LENGTH)
    events = _events(False)
    description = optional_text(500, allow_none=True)
    active = fields.Boolean()


class WebhookSchema(ma.Schema):
    id = fields.UUID()
    tenant_id = fields.UUID()
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    disabled_at = UTCDateTime(allow_none=True)
    secret_rotated_at = UTCDateTime(allow_none=True)
    previous_secret_expires_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class WebhookWithSecretSchema(WebhookSchema):
    """Returned by create and rotate-secret only: the one time the secret is shown."""

    secret = fields.String()


class AttemptSchema(ma.Schema):
    attempt = fields.Integer()
    at = fields.String()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class DeliverySchema(ma.Schema):
    id = fields.UUID()
    webhook_id = fields.UUID(attribute="subscription_id")
    event_id = fields.UUID()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_attempt_at = UTCDateTime(allow_none=True)
    next_attempt_at = UTCDateTime(allow_none=True)
    next_retry_at = fields.Method("_next_retry")
    delivered_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    attempt_log = fields.List(fields.Nested(AttemptSchema))
    payload = fields.Dict()

    def _next_retry(self, obj: object) -> str | None:
        if getattr(obj, "status", None) != "pending":
            return None
        return UTCDateTime()._serialize(getattr(obj, "next_attempt_at", None), None, obj)


class DeliveryListArgs(PaginationArgs):
    status = fields.String(
        validate=validate.OneOf(DELIVERY_STATUSES, error="must be one of: {choices}")
    )


WebhookPageSchema = page_schema(WebhookSchema, "WebhookPage")
DeliveryPageSchema = page_schema(DeliverySchema, "WebhookDeliveryPage")
