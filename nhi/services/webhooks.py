"""Webhook subscriptions: registration, updates, secret rotation, test events, the delivery log.

The signing secret is ``whsec_`` + standard base64 of 32 random bytes (the decoded bytes are the
HMAC key, as the Standard Webhooks libraries expect). It is returned once, by create and by rotate,
and stored only encrypted (``nhi.secretbox``).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from nhi import clock, outbound, secretbox
from nhi.errors import Conflict, NotFound, ValidationFailed
from nhi.extensions import db
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription
from nhi.principal import Principal
from nhi.services import audit
from nhi.services.events import EVENT_TYPES

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)
TEST_EVENT = "webhook.test"


@dataclass
class CreatedSubscription:
    """A subscription together with the secret that is shown this one time."""

    subscription: WebhookSubscription
    secret: str


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE"))


def _url_problems(url: str) -> list[str]:
    problems = outbound.url_problems(url)
    if not problems:
        reason = outbound.check_target(url, allow_private=_allow_private())
        if reason:
            problems = [f"is not allowed: {reason}"]
    return problems


def _event_problems(events: list[str]) -> list[str]:
    if not events:
        return ["must not be empty"]
    if "*" in events and len(events) > 1:
        return ["'*' cannot be combined with event types"]
    unknown = sorted({e for e in events if e != "*" and e not in EVENT_TYPES})
    return [f"unknown event type {e!r}" for e in unknown]


def _validate(data: dict[str, Any]) -> dict[str, Any]:
    """Check url and events (whichever are present), reporting every bad field at once; returns
    ``data`` with the event list de-duplicated. Raises ValidationFailed."""
    errors: dict[str, list[str]] = {}
    if "url" in data and (problems := _url_problems(data["url"])):
        errors["url"] = problems
    if "events" in data and (problems := _event_problems(data["events"])):
        errors["events"] = problems
    if errors:
        field, problems = next(iter(errors.items()))
        raise ValidationFailed(f"{field} {problems[0]}.", errors=errors)
    if "events" in data:
        data = {**data, "events": list(dict.fromkeys(data["events"]))}
    return data


def _snapshot(sub: WebhookSubscription) -> dict[str, Any]:
    return {"url": sub.url, "events": sub.events, "active": sub.active}


def get_subscription(tenant_id: uuid.UUID, subscription_id: uuid.UUID) -> WebhookSubscription:
    """The tenant's subscription or NotFound (also for another tenant's id)."""
    sub = db.session.execute(
        db.select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.tenant_id == tenant_id,
        )
    ).scalar_one_or_none()
    if sub is None:
        raise NotFound(f"No webhook with id {subscription_id}.")
    return sub


def create_subscription(actor: Principal, data: dict[str, Any]) -> CreatedSubscription:
    """Register an endpoint. Raises ValidationFailed (url, events). Sends nothing."""
    data = _validate(data)
    events = data["events"]
    secret = new_secret()
    now = clock.now()
    sub = WebhookSubscription(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        url=data["url"],
        events=events,
        description=data.get("description"),
        active=True,
        secret_encrypted=secretbox.encrypt(secret),
        created_at=now,
        updated_at=now,
    )
    db.session.add(sub)
    audit.record(
        actor, "webhook.created", resource=f"webhook:{sub.id}", details={"webhook": _snapshot(sub)}
    )
    db.session.commit()
    return CreatedSubscription(sub, secret)


def list_subscriptions(
    tenant_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[WebhookSubscription], int]:
    cond = WebhookSubscription.tenant_id == tenant_id
    total = db.session.execute(
        db.select(sa.func.count()).select_from(WebhookSubscription).where(cond)
    ).scalar_one()
    rows = db.session.execute(
        db.select(WebhookSubscription)
        .where(cond)
        .order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), total


def update_subscription(
    actor: Principal, subscription_id: uuid.UUID, changes: dict[str, Any]
) -> WebhookSubscription:
    """Partial update of url, events, description, active. Re-enabling clears the reason."""
    sub = get_subscription(actor.tenant_id, subscription_id)
    changes = _validate(changes)
    before = {k: getattr(sub, k) for k in changes}
    for key, value in changes.items():
        setattr(sub, key, value)
    if changes.get("active") is True:
        sub.disabled_reason, sub.disabled_at = None, None
    elif changes.get("active") is False and before.get("active"):
        sub.disabled_reason, sub.disabled_at = "disabled by an admin", clock.now()
    changed = {k: {"from": before[k], "to": v} for k, v in changes.items() if before[k] != v}
    if changed:
        sub.updated_at = clock.now()
        audit.record(
            actor, "webhook.updated", resource=f"webhook:{sub.id}", details={"changes": changed}
        )
    db.session.commit()
    return sub


def delete_subscription(actor: Principal, subscription_id: uuid.UUID) -> None:
    """Delete the subscription and its delivery log; queued attempts for it become no-ops."""
    sub = get_subscription(actor.tenant_id, subscription_id)
    audit.record(
        actor, "webhook.deleted", resource=f"webhook:{sub.id}", details={"webhook": _snapshot(sub)}
    )
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id))
    db.session.delete(sub)
    db.session.commit()


def rotate_secret(actor: Principal, subscription_id: uuid.UUID) -> CreatedSubscription:
    """New secret; the previous one keeps signing (as a second signature) for 24 hours."""
    sub = get_subscription(actor.tenant_id, subscription_id)
    secret = new_secret()
    now = clock.now()
    sub.previous_secret_encrypted = sub.secret_encrypted
    sub.previous_secret_expires_at = now + ROTATION_OVERLAP
    sub.secret_encrypted = secretbox.encrypt(secret)
    sub.secret_rotated_at = now
    sub.updated_at = now
    audit.record(actor, "webhook.secret_rotated", resource=f"webhook:{sub.id}")
    db.session.commit()
    return CreatedSubscription(sub, secret)


def signing_secrets(sub: WebhookSubscription) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous one in overlap."""
    out = [secretbox.decrypt(sub.secret_encrypted)]
    if (
        sub.previous_secret_encrypted
        and sub.previous_secret_expires_at
        and sub.previous_secret_expires_at > clock.now()
    ):
        out.append(secretbox.decrypt(sub.previous_secret_encrypted))
    return out


def _require_active(sub: WebhookSubscription) -> None:
    if not sub.active:
        raise Conflict(
            'The webhook is disabled; re-enable it with PATCH {"active": true} first.',
            extra={"disabled_reason": sub.disabled_reason},
        )


def send_test(actor: Principal, subscription_id: uuid.UUID) -> WebhookDelivery:
    """Queue a ``webhook.test`` message to this endpoint only. Raises Conflict when disabled."""
    sub = get_subscription(actor.tenant_id, subscription_id)
    _require_active(sub)
    now = clock.now()
    event_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        subscription_id=sub.id,
        event_id=event_id,
        event_type=TEST_EVENT,
        payload={
            "id": str(event_id),
            "type": TEST_EVENT,
            "timestamp": clock.isoformat(now),
            "tenant_id": str(actor.tenant_id),
            "data": {"webhook_id": str(sub.id), "message": "Test event sent on request."},
        },
        status="pending",
        next_attempt_at=now,
        created_at=now,
        attempt_log=[],
    )
    db.session.add(delivery)
    audit.record(actor, "webhook.tested", resource=f"webhook:{sub.id}")
    db.session.commit()
    return _dispatched(actor.tenant_id, sub.id, delivery.id)


def _dispatched(
    tenant_id: uuid.UUID, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Dispatch a committed delivery (inline mode attempts it now) and return it fresh."""
    from nhi.services import deliveries

    deliveries.dispatch([delivery_id])
    delivery = get_delivery(tenant_id, subscription_id, delivery_id)
    db.session.refresh(delivery)
    return delivery


def list_deliveries(
    tenant_id: uuid.UUID,
    subscription_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[WebhookDelivery], int]:
    """The delivery log of one subscription, newest first."""
    get_subscription(tenant_id, subscription_id)
    conds = [
        WebhookDelivery.tenant_id == tenant_id,
        WebhookDelivery.subscription_id == subscription_id,
    ]
    if status:
        conds.append(WebhookDelivery.status == status)
    total = db.session.execute(
        db.select(sa.func.count()).select_from(WebhookDelivery).where(*conds)
    ).scalar_one()
    rows = db.session.execute(
        db.select(WebhookDelivery)
        .where(*conds)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), total


def get_delivery(
    tenant_id: uuid.UUID, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    row = db.session.execute(
        db.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.tenant_id == tenant_id,
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No delivery with id {delivery_id} for webhook {subscription_id}.")
    return row


def retry_delivery(
    actor: Principal, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send a delivery again now, with the same ``webhook-id``, starting a new round of automatic
    retries. Raises NotFound, Conflict (webhook disabled, or an attempt is in flight)."""
    sub = get_subscription(actor.tenant_id, subscription_id)
    _require_active(sub)
    now = clock.now()
    result = db.session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.subscription_id == sub.id,
            WebhookDelivery.tenant_id == actor.tenant_id,
            sa.or_(
                WebhookDelivery.status != "sending",
                WebhookDelivery.lease_until < now,
            ),
        )
        .values(status="pending", next_attempt_at=now, round_attempts=0, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        get_delivery(actor.tenant_id, subscription_id, delivery_id)  # 404 when absent
        raise Conflict("An attempt of this delivery is in progress.")
    audit.record(
        actor,
        "webhook.delivery_retried",
        resource=f"webhook:{sub.id}",
        details={"delivery_id": delivery_id},
    )
    db.session.commit()
    return _dispatched(actor.tenant_id, sub.id, delivery_id)
