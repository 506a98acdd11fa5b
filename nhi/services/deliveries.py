"""Delivering messages to receivers: dispatch to jobs, attempts, retries, disabling.

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

from nhi import clock, outbound
from nhi.extensions import db
from nhi.models.webhooks import WebhookDelivery, WebhookSubscription
from nhi.principal import Principal
from nhi.services import audit
from nhi.services.webhooks import signing_secrets

log = logging.getLogger(__name__)

# Deliveries per job (one webhook each) and the time one job spends before handing the rest on.
BATCH_SIZE = 20
BATCH_BUDGET = 30.0
BASE_DELAY = 10.0  # seconds before the first retry; x4 per attempt, capped
MAX_DELAY = 6 * 3600.0
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


def dispatch(delivery_ids: Sequence[uuid.UUID], *, chunk: int = BATCH_SIZE) -> None:
    """Hand deliveries to the job queue (inline: attempt them now), one job per chunk of up to
    ``chunk`` deliveries to the same webhook. A queue failure is logged and left to the sweep:
    the rows are committed and due."""
    if not delivery_ids:
        return
    from nhi import jobs, tasks

    pairs = db.session.execute(
        db.select(WebhookDelivery.id, WebhookDelivery.subscription_id).where(
            WebhookDelivery.id.in_(list(delivery_ids))
        )
    ).all()
    db.session.commit()
    by_sub: dict[uuid.UUID, list[str]] = {}
    for delivery_id, sub_id in pairs:
        by_sub.setdefault(sub_id, []).append(str(delivery_id))
    order = {str(d): n for n, d in enumerate(delivery_ids)}
    batches = []
    for ids in by_sub.values():
        ids.sort(key=order.__getitem__)
        batches += [(ids[n : n + chunk],) for n in range(0, len(ids), chunk)]
    try:
        jobs.enqueue_many(tasks.deliver_webhooks, batches)
    except Exception as exc:
        if jobs.redis_connection() is None:
            raise
        log.warning("could not enqueue %d deliveries, the sweep will: %s", len(delivery_ids), exc)


def lease_seconds() -> float:
    """How long an attempt owns its delivery: past it, a killed worker's claim lapses."""
    keys = ("WEBHOOK_CONNECT_TIMEOUT", "WEBHOOK_READ_TIMEOUT", "WEBHOOK_LEASE_MARGIN")
    return sum(float(_cfg(k)) for k in keys)


def _claim(delivery_id: uuid.UUID, now: datetime) -> int | None:
    """Take the delivery for one attempt; returns the attempt's number (its ownership token:
    only that attempt may record an outcome), or None when it is not due or owned by another."""
    row = db.session.execute(
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
        .returning(WebhookDelivery.attempts, WebhookDelivery.round_attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is not None and row.round_attempts > int(_cfg("WEBHOOK_MAX_ATTEMPTS")):
        # Attempts that never reported back (workers killed mid-send) count too: stop here.
        delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
        if delivery is not None:
            error = "no outcome was recorded for the last attempts (worker lost)"
            _finish(delivery, "failed", None, error, now)
            _disable(
                delivery.subscription_id,
                f"delivery {delivery.id} reached {delivery.round_attempts - 1} attempts "
                f"without success; last error: {delivery.last_error or error}",
                now,
            )
        db.session.commit()
        return None
    db.session.commit()
    return None if row is None else int(row.attempts)


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


def _slightly_early(delivery_id: uuid.UUID) -> bool:
    """For a job that arrived before its delivery is due: wait out a due time at most a second
    away (True; RQ's scheduler keeps whole seconds), or schedule the attempt again for its due
    time (False), so that an early job never drops the retry."""
    due = db.session.execute(
        db.select(WebhookDelivery.next_attempt_at).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending"
        )
    ).scalar_one_or_none()
    db.session.commit()
    if due is None:
        return False
    early = (due - clock.now()).total_seconds()
    if 0 < early <= EARLY_SLACK.total_seconds():
        time.sleep(early)
        return True
    if early > 0:
        _schedule(delivery_id, due)
    return False


def attempt(delivery_id: uuid.UUID) -> str:
    """Make one attempt of a due delivery; returns its status afterwards ("unreachable" for a
    pending one whose receiver gave no HTTP answer), or "skipped" when the delivery is gone, not
    due, or claimed by another attempt. Network and HTTP failures are outcomes (recorded, retried
    later), not exceptions."""
    now = clock.now()
    claimed = _claim(delivery_id, now)
    if claimed is None:
        if not _slightly_early(delivery_id):
            return "skipped"
        now = clock.now()
        claimed = _claim(delivery_id, now)
        if claimed is None:
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
    status = _record(delivery_id, response, claimed)
    return "unreachable" if status == "pending" and response.status is None else status


def attempt_batch(delivery_ids: Sequence[uuid.UUID], *, budget: float = BATCH_BUDGET) -> int:
    """Attempt deliveries in order (a chunk for one endpoint); returns how many were attempted.

    An endpoint that gave no HTTP answer (timeout, refused connection) is not tried again in this
    chunk, and neither is anything once ``budget`` seconds are spent: the rest are dispatched as
    jobs of their own, so one slow receiver never holds up the others for long.
    """
    started = time.monotonic()
    for index, delivery_id in enumerate(delivery_ids):
        if index and time.monotonic() - started > budget:
            dispatch(delivery_ids[index:], chunk=1)
            return index
        if attempt(delivery_id) == "unreachable":
            dispatch(delivery_ids[index + 1 :], chunk=1)
            return index + 1
    return len(delivery_ids)


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


def _record(delivery_id: uuid.UUID, response: outbound.Response, claimed: int) -> str:
    now = clock.now()
    delivery = db.session.get(
        WebhookDelivery, delivery_id, populate_existing=True, with_for_update=True
    )
    if delivery is None or delivery.status != "sending" or delivery.attempts != claimed:
        # The claim lapsed and a newer attempt owns the row: its outcome is the one recorded.
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

    for try_ in (1, 2):  # one more try on a dropped connection
        try:
            jobs.enqueue_at(when, tasks.deliver_webhook, str(delivery_id))
            return
        except Exception as exc:  # the sweep re-dispatches overdue deliveries
            log.warning("could not schedule the retry of %s (try %d): %s", delivery_id, try_, exc)


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


def warm_up() -> None:
    """Run the delivery path's statements once on a row that does not exist (nothing changes), so
    that their compiled SQL is cached before a worker forks its work horses."""
    missing = uuid.uuid4()
    attempt(missing)
    db.session.get(WebhookDelivery, missing)
    db.session.get(WebhookSubscription, missing)
    db.session.rollback()
