"""RQ job functions: ids and primitives in, services called, exceptions left to RQ.

Every job is idempotent (it re-reads rows by id; running it twice does no harm), declares its
queue, ``job_timeout`` and ``Retry`` policy with :func:`nhi.jobs.job`, and runs inline the same way
when there is no Redis. Periodic ones are registered in ``nhi.periodic``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from nhi import jobs
from nhi.services import approval_decisions, audit, deliveries, relay

# The attempt itself is bounded by the webhook timeouts (3 s + 10 s by default); the job
# timeout is a backstop for a receiver that drips its answer.
DELIVERY_JOB_TIMEOUT = 60
# A chunk stops starting attempts after BATCH_BUDGET (30 s); the last one may take 13 s more.
BATCH_JOB_TIMEOUT = 90


@jobs.job(queue="default", timeout=300)
def relay_outbox() -> int:
    """Move committed outbox events to delivery rows and dispatch them."""
    return relay.relay_outbox()


@jobs.job(queue="webhooks", timeout=DELIVERY_JOB_TIMEOUT, retries=3, retry_intervals=(30, 120, 600))
def deliver_webhook(delivery_id: str) -> str:
    """One attempt of one delivery (a no-op when it is not due or already being attempted)."""
    return deliveries.attempt(uuid.UUID(delivery_id))


@jobs.job(queue="webhooks", timeout=BATCH_JOB_TIMEOUT, retries=3, retry_intervals=(30, 120, 600))
def deliver_webhooks(delivery_ids: list[str]) -> int:
    """Attempts of a chunk of deliveries to one webhook (see ``deliveries.attempt_batch``)."""
    return deliveries.attempt_batch([uuid.UUID(i) for i in delivery_ids])


@jobs.job(queue="periodic", timeout=300)
def sweep_deliveries(grace_seconds: int = int(relay.SWEEP_GRACE.total_seconds())) -> int:
    """Re-dispatch overdue deliveries and those whose worker died mid-attempt."""
    return relay.sweep(grace=timedelta(seconds=grace_seconds))


@jobs.job(queue="periodic", timeout=600)
def seal_audit_chains() -> int:
    """Link every tenant's unsealed audit events into its hash chain."""
    return audit.seal_all_chains()


@jobs.job(queue="periodic", timeout=600)
def prune_outbox() -> int:
    """Delete relayed outbox rows older than a week."""
    return relay.prune()


@jobs.job(queue="periodic", timeout=300)
def expire_approvals() -> int:
    """Persist the expiry of approval requests (reads already report it) and emit
    ``approval.expired`` once per request."""
    return approval_decisions.expire_due()
