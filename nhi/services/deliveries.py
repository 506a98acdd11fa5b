"""From the outbox to the receivers: relay, one delivery attempt, retries, and the sweep.

Guarantees:
- nothing committed is lost: an event stays in the outbox until the relay has committed its
  delivery rows; a delivery row stays ``pending`` until an attempt is recorded, and the periodic
  sweep re-dispatches whatever a lost job, a Redis outage or a killed worker left behind;
- one message per (event, subscription): a unique constraint, so the ``webhook-id`` (the event id)
  is the same on every attempt and a relayed event never becomes a second message;
- one attempt at a time: an attempt first claims the row with a conditional UPDATE and a lease, so
  duplicate jobs are no-ops, and an acknowledged delivery is never sent again automatically.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from nhi import clock, outbound
from nhi.extensions import db
from nhi.models.outbox import OutboxEvent
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription
from nhi.principal import Principal
from nhi.services import audit
from nhi.services.webhooks import signing_secrets

log = logging.getLogger(__name__)

RELAY_BATCH = 500
SWEEP_BATCH = 1000
BASE_DELAY = 10.0  # seconds before the first retry; x4 per attempt, capped
MAX_DELAY = 6 * 3600.0
SWEEP_GRACE = timedelta(minutes=2)
# RQ's scheduler keeps due times in whole seconds, so a scheduled retry may run up to 1 s early.
EARLY_SLACK = timedelta(seconds=1)
LOG_KEEP = 20


def _cfg(key: str) -> Any:
    return current_app.config[key]


def retry_delay(attempt: int, *, scale: float = 1.0, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential backoff
    (10 s x 4^(n-1), capped at 6 h) with +-20 % jitter. Ten attempts span about 22 hours."""
    base = min(BASE_DELAY * 4 ** (attempt - 1), MAX_DELAY)
    jitter = (rng or random).uniform(0.8, 1.2)
    return base * jitter * scale


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def relay_outbox() -> int:
    """Turn unrelayed outbox events into delivery rows (one per matching active subscription),
    mark them relayed, commit, then dispatch the new deliveries. Returns events relayed."""
    relayed = 0
    while True:
        events = (
            db.session.execute(
                db.select(OutboxEvent)
                .where(OutboxEvent.relayed_at.is_(None))
                .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
                .limit(RELAY_BATCH)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if not events:
            db.session.commit()
            return relayed
        tenants = {e.tenant_id for e in events}
        subs = (
            db.session.execute(
                db.select(WebhookSubscription).where(
                    WebhookSubscription.tenant_id.in_(tenants),
                    WebhookSubscription.active.is_(True),
                )
            )
            .scalars()
            .all()
        )
        now = clock.now()
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": event.tenant_id,
                "subscription_id": sub.id,
                "event_id": event.id,
                "event_type": event.event_type,
                "payload": _body(event),
                "status": "pending",
                "attempts": 0,
                "round_attempts": 0,
                "next_attempt_at": now,
                "attempt_log": [],
                "created_at": now,
            }
            for event in events
            for sub in subs
            if sub.tenant_id == event.tenant_id
            and sub.wants(event.event_type)
            and sub.created_at <= event.occurred_at
        ]
        new_ids: list[uuid.UUID] = []
        if rows:
            insert = postgresql.insert if _dialect() == "postgresql" else sqlite.insert
            stmt = (
                insert(WebhookDelivery)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["event_id", "subscription_id"])
                .returning(WebhookDelivery.id)
            )
            new_ids = list(db.session.execute(stmt).scalars())
        db.session.execute(
            sa.update(OutboxEvent)
            .where(OutboxEvent.id.in_([e.id for e in events]))
            .values(relayed_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        relayed += len(events)
        dispatch(new_ids)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _body(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.event_type,
        "timestamp": clock.isoformat(event.occurred_at),
        "tenant_id": str(event.tenant_id),
        "data": event.data,
    }


def dispatch(delivery_ids: Sequence[uuid.UUID]) -> None:
    """Hand deliveries to the job queue (inline: attempt them now). A queue failure is logged
    and left to the sweep: the rows are committed and due."""
    if not delivery_ids:
        return
    from nhi import jobs, tasks

    try:
        jobs.enqueue_many(tasks.deliver_webhook, [(str(i),) for i in delivery_ids])
    except Exception as exc:
        if jobs.redis_connection() is None:
            raise
        log.warning("could not enqueue %d deliveries, the sweep will: %s", len(delivery_ids), exc)


def lease_seconds() -> float:
    """How long an attempt owns its delivery: past it, a killed worker's claim lapses."""
    keys = ("WEBHOOK_CONNECT_TIMEOUT", "WEBHOOK_READ_TIMEOUT", "WEBHOOK_LEASE_MARGIN")
    return sum(float(_cfg(k)) for k in keys)


def _claim(delivery_id: uuid.UUID, now: datetime) -> bool:
    result = db.session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            sa.or_(
                sa.and_(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
                ),
                sa.and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now),
            ),
        )
        .values(
            status="sending",
            lease_until=now + timedelta(seconds=lease_seconds()),
            attempts=WebhookDelivery.attempts + 1,
            round_attempts=WebhookDelivery.round_attempts + 1,
            last_attempt_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _sign(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    import base64
    import hashlib
    import hmac

    signed = f"{msg_id}.{timestamp}.".encode() + body
    sigs = []
    for secret in secrets_:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        sigs.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(sigs)


def _wait_if_slightly_early(delivery_id: uuid.UUID) -> None:
    due = db.session.execute(
        db.select(WebhookDelivery.next_attempt_at).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending"
        )
    ).scalar_one_or_none()
    db.session.commit()
    if due is not None:
        early = (due - clock.now()).total_seconds()
        if 0 < early <= EARLY_SLACK.total_seconds():
            time.sleep(early)


def attempt(delivery_id: uuid.UUID) -> str:
    """Make one attempt of a due delivery; returns its status afterwards, or "skipped" when the
    delivery is gone, not due, or claimed by another attempt. Network and HTTP failures are
    outcomes (recorded, retried later), not exceptions."""
    _wait_if_slightly_early(delivery_id)
    now = clock.now()
    if not _claim(delivery_id, now):
        return "skipped"
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return "skipped"
    sub = db.session.get(WebhookSubscription, delivery.subscription_id)
    if sub is None or not sub.active:
        _finish(delivery, "failed", None, "the webhook is disabled or deleted", now)
        db.session.commit()
        return "failed"
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    msg_id = str(delivery.event_id)
    timestamp = int(time.time())  # the real send time: receivers compare it with their clock
    headers = {
        "content-type": "application/json",
        "user-agent": "nhi-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": _sign(signing_secrets(sub), msg_id, timestamp, body),
    }
    url = sub.url
    db.session.commit()  # no transaction stays open across the network call
    limits = outbound.Limits(
        connect_timeout=float(_cfg("WEBHOOK_CONNECT_TIMEOUT")),
        read_timeout=float(_cfg("WEBHOOK_READ_TIMEOUT")),
        max_bytes=int(_cfg("WEBHOOK_MAX_RESPONSE_BYTES")),
        allow_private=bool(_cfg("WEBHOOK_ALLOW_PRIVATE")),
    )
    response = outbound.post(url, body, headers, limits)
    return _record(delivery_id, response)


def _finish(
    delivery: WebhookDelivery,
    status: str,
    code: int | None,
    error: str | None,
    now: datetime,
    next_at: datetime | None = None,
    duration_ms: int = 0,
) -> None:
    delivery.status = status
    delivery.last_status_code = code
    delivery.last_error = error[:500] if error else None
    delivery.lease_until = None
    delivery.next_attempt_at = next_at
    if status == "succeeded":
        delivery.delivered_at = now
    entry = {
        "attempt": delivery.attempts,
        "at": clock.isoformat(now),
        "status_code": code,
        "error": delivery.last_error,
        "duration_ms": duration_ms,
    }
    delivery.attempt_log = [*(delivery.attempt_log or []), entry][-LOG_KEEP:]


def _record(delivery_id: uuid.UUID, response: outbound.Response) -> str:
    now = clock.now()
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.status != "sending":
        db.session.commit()
        return "skipped"
    code, ms = response.status, response.duration_ms
    if code is not None and 200 <= code < 300:
        _finish(delivery, "succeeded", code, None, now, duration_ms=ms)
        db.session.commit()
        return "succeeded"
    if code == 410:
        _finish(delivery, "failed", code, "the receiver answered 410 Gone", now, duration_ms=ms)
        _disable(delivery.subscription_id, "the endpoint answered 410 Gone", now)
        db.session.commit()
        return "failed"
    error = response.error or _describe(code)
    if delivery.round_attempts >= int(_cfg("WEBHOOK_MAX_ATTEMPTS")):
        _finish(delivery, "failed", code, error, now, duration_ms=ms)
        _disable(
            delivery.subscription_id,
            f"delivery {delivery.id} failed {delivery.round_attempts} times over "
            f"{_span(delivery, now)}; last error: {error}",
            now,
        )
        db.session.commit()
        return "failed"
    scale = float(_cfg("WEBHOOK_RETRY_SCALE"))
    delay = retry_delay(delivery.round_attempts, scale=scale)
    asked = parse_retry_after(response.headers.get("retry-after"), now)
    if asked is not None and code in (429, 503):
        delay = min(max(asked * scale, delay), MAX_DELAY * scale)
    next_at = now + timedelta(seconds=delay)
    _finish(delivery, "pending", code, error, now, next_at=next_at, duration_ms=ms)
    db.session.commit()
    _schedule(delivery_id, next_at)
    return "pending"


def _describe(code: int | None) -> str:
    if code is None:
        return "no response"
    if 300 <= code < 400:
        return f"the receiver answered {code} (redirects are not followed)"
    return f"the receiver answered {code}"


def _span(delivery: WebhookDelivery, now: datetime) -> str:
    hours = (now - delivery.created_at).total_seconds() / 3600
    return f"{hours:.1f} h"


def _schedule(delivery_id: uuid.UUID, when: datetime) -> None:
    from nhi import jobs, tasks

    try:
        jobs.enqueue_at(when, tasks.deliver_webhook, str(delivery_id))
    except Exception as exc:  # the sweep re-dispatches overdue deliveries
        log.warning("could not schedule the retry of %s: %s", delivery_id, exc)


def _disable(subscription_id: uuid.UUID, reason: str, now: datetime) -> None:
    """Deactivate a subscription (once) and say why in the audit log."""
    sub = db.session.get(WebhookSubscription, subscription_id)
    if sub is None or not sub.active:
        return
    sub.active, sub.disabled_reason, sub.disabled_at, sub.updated_at = False, reason, now, now
    audit.record(
        Principal.system(sub.tenant_id),
        "webhook.disabled",
        resource=f"webhook:{sub.id}",
        reason=reason,
        details={"url": sub.url},
    )


def sweep(*, grace: timedelta = SWEEP_GRACE) -> int:
    """Re-dispatch deliveries that are overdue by more than ``grace`` (a lost job or an outage)
    and those whose attempt lease lapsed (a killed worker). Returns how many were dispatched."""
    now = clock.now()
    ids = list(
        db.session.execute(
            db.select(WebhookDelivery.id)
            .where(
                sa.or_(
                    sa.and_(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now - grace,
                    ),
                    sa.and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now),
                )
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(SWEEP_BATCH)
        ).scalars()
    )
    db.session.commit()
    dispatch(ids)
    return len(ids)


def prune(*, outbox_age: timedelta = timedelta(days=7)) -> int:
    """Delete relayed outbox rows older than ``outbox_age``; returns how many."""
    cutoff = clock.now() - outbox_age
    result = db.session.execute(
        sa.delete(OutboxEvent).where(
            OutboxEvent.relayed_at.is_not(None), OutboxEvent.relayed_at < cutoff
        )
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
