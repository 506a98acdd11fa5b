"""Webhook subscriptions, their delivery log, test events and manual retries (admin only)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from nhi.auth import current_principal, require
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription
from nhi.schemas.common import PaginationArgs, page
from nhi.schemas.webhooks import (
    DeliveryListArgs,
    DeliveryPageSchema,
    DeliverySchema,
    WebhookCreateSchema,
    WebhookPageSchema,
    WebhookSchema,
    WebhookUpdateSchema,
    WebhookWithSecretSchema,
)
from nhi.services import webhooks as svc

blp = Blueprint("webhooks", __name__, url_prefix="/nhi/webhooks", description="Webhooks")


def _with_secret(created: svc.CreatedSubscription) -> dict[str, Any]:
    sub = created.subscription
    raw = {name: getattr(sub, name) for name in WebhookSchema().fields}
    return {**raw, "secret": created.secret}


@blp.post("")
@require("admin")
@blp.arguments(WebhookCreateSchema)
@blp.response(201, WebhookWithSecretSchema)
def create(data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Subscribe an endpoint; the response holds its signing secret, shown this once."""
    created = svc.create_subscription(current_principal(), data)
    location = url_for("webhooks.get", webhook_id=created.subscription.id)
    return _with_secret(created), 201, {"Location": location}


@blp.get("")
@require("admin")
@blp.arguments(PaginationArgs, location="query")
@blp.response(200, WebhookPageSchema)
def list_(args: dict[str, Any]) -> dict[str, Any]:
    """The tenant's webhooks, newest first."""
    rows, total = svc.list_subscriptions(
        current_principal().tenant_id, limit=args["limit"], offset=args["offset"]
    )
    return page(rows, total, args)


@blp.get("/<uuid:webhook_id>")
@require("admin")
@blp.response(200, WebhookSchema)
def get(webhook_id: uuid.UUID) -> WebhookSubscription:
    """One webhook (never its secret)."""
    return svc.get_subscription(current_principal().tenant_id, webhook_id)


@blp.patch("/<uuid:webhook_id>")
@require("admin")
@blp.arguments(WebhookUpdateSchema)
@blp.response(200, WebhookSchema)
def patch(data: dict[str, Any], webhook_id: uuid.UUID) -> WebhookSubscription:
    """Partial update of url, events, description and active."""
    return svc.update_subscription(current_principal(), webhook_id, data)


@blp.delete("/<uuid:webhook_id>")
@require("admin")
@blp.response(204)
def delete(webhook_id: uuid.UUID) -> None:
    """Delete a webhook and its delivery log."""
    svc.delete_subscription(current_principal(), webhook_id)


@blp.post("/<uuid:webhook_id>/rotate-secret")
@require("admin")
@blp.response(200, WebhookWithSecretSchema)
def rotate_secret(webhook_id: uuid.UUID) -> dict[str, Any]:
    """A new signing secret (shown once); the previous one keeps signing for 24 hours."""
    return _with_secret(svc.rotate_secret(current_principal(), webhook_id))


@blp.post("/<uuid:webhook_id>/test")
@require("admin")
@blp.response(202, DeliverySchema)
def send_test(webhook_id: uuid.UUID) -> WebhookDelivery:
    """Send a signed ``webhook.test`` event to this endpoint; returns its delivery."""
    return svc.send_test(current_principal(), webhook_id)


@blp.get("/<uuid:webhook_id>/deliveries")
@require("admin")
@blp.arguments(DeliveryListArgs, location="query")
@blp.response(200, DeliveryPageSchema)
def deliveries(args: dict[str, Any], webhook_id: uuid.UUID) -> dict[str, Any]:
    """Deliveries to this webhook, newest first: attempts, status codes, next retry."""
    rows, total = svc.list_deliveries(
        current_principal().tenant_id,
        webhook_id,
        status=args.get("status"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return page(rows, total, args)


@blp.post("/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/retry")
@require("admin")
@blp.response(202, DeliverySchema)
def retry(webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send this delivery again now (same webhook-id), with a fresh round of retries."""
    return svc.retry_delivery(current_principal(), webhook_id, delivery_id)
