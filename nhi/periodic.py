"""The periodic jobs, registered here and nowhere else (README: "Periodic jobs").

With Redis, ``worker.py`` runs :func:`tick` every second: each job is enqueued at most once per
interval across all workers (a ``SET NX EX`` slot per job in Redis), so any number of workers may
run. RQ 3.0's own cron scheduler enqueues with the default (pickle) serializer, which our
JSON-only workers refuse, hence this small table. Without Redis, ``flask jobs run-periodic``
(from cron) runs one pass of all of them inline via :func:`run_all`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis

from nhi import jobs, tasks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    func: Callable[..., Any]
    interval: int  # seconds
    description: str
    args: tuple[Any, ...] = ()


PERIODIC: tuple[Periodic, ...] = (
    Periodic("relay_outbox", tasks.relay_outbox, 30, "relay outbox events missed by a kick"),
    Periodic("sweep_deliveries", tasks.sweep_deliveries, 60, "re-dispatch overdue deliveries"),
    Periodic(
        "expire_approvals", tasks.expire_approvals, 60, "persist approval expiry, emit events"
    ),
    Periodic("seal_audit_chains", tasks.seal_audit_chains, 300, "seal pending audit events"),
    Periodic("prune_outbox", tasks.prune_outbox, 3600, "delete relayed outbox rows after 7 days"),
)


def _slot_key(name: str) -> str:
    return f"nhi:periodic:{name}"


def tick(conn: Redis) -> list[str]:
    """Enqueue the periodic jobs whose interval has elapsed; returns their names."""
    enqueued = []
    for p in PERIODIC:
        if conn.set(_slot_key(p.name), "1", nx=True, ex=p.interval):
            jobs.enqueue(p.func, *p.args, connection=conn)
            enqueued.append(p.name)
    return enqueued


def run_all() -> dict[str, Any]:
    """One pass of every periodic job, inline, in order (the cron entry point). Overdue
    deliveries are attempted with no grace period, since no RQ scheduler is waiting on them."""
    results: dict[str, Any] = {}
    for p in PERIODIC:
        args = (0,) if p.func is tasks.sweep_deliveries else p.args
        results[p.name] = p.func(*args)
    # Events the later jobs wrote (approval.expired, ...) leave in this pass, not the next one.
    results["relay_outbox"] += tasks.relay_outbox()
    return results
