"""Job queue access: RQ on Redis when NHI_REDIS_URL is set, inline execution otherwise.

Job functions (``nhi.tasks``) are declared with :func:`job`, which records their queue, timeout and
retry policy, and gives them an app context when a worker runs them. The same function runs inline
(embedded default) or on a worker; arguments are ids and primitives (RQ's JSONSerializer, never
pickle).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from flask import Flask, current_app, has_app_context
from redis import Redis

log = logging.getLogger(__name__)

QUEUES = ("default", "webhooks", "periodic")  # worker priority order
ENQUEUE_CHUNK = 500

_connections: dict[str, Redis] = {}
_bound_app: Flask | None = None

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobSpec:
    queue: str
    timeout: int
    retries: int
    retry_intervals: tuple[int, ...]


def redis_connection() -> Redis | None:
    """The app's Redis client (one pool per URL per process), or None in the embedded mode."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    conn = _connections.get(url)
    if conn is None:
        conn = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        _connections[url] = conn
    return conn


def bind_app(app: Flask | None) -> None:
    """The app whose context jobs run in when no context is active (set by the worker)."""
    global _bound_app
    _bound_app = app


def _job_app() -> Flask:
    global _bound_app
    if _bound_app is None:
        from nhi import create_app

        _bound_app = create_app()
    return _bound_app


def job(
    *,
    queue: str = "default",
    timeout: int = 60,
    retries: int = 3,
    retry_intervals: Sequence[int] = (10, 60, 300),
) -> Callable[[F], F]:
    """Declare an RQ job: its queue, ``job_timeout`` and ``Retry`` policy.

    Called inline (embedded mode) it runs in the caller's app context; run by RQ it gets a fresh
    context of the worker's app and its session is removed afterwards. Exceptions are never
    swallowed: RQ records them and retries. Events the job commits to the outbox are relayed
    when it finishes.
    """

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from rq import get_current_job

            if get_current_job() is None and has_app_context():  # inline: the caller's context
                return func(*args, **kwargs)
            from nhi import relay_hooks
            from nhi.extensions import db

            with _job_app().app_context():
                try:
                    result = func(*args, **kwargs)
                    relay_hooks.kick_if_committed()
                    return result
                finally:
                    db.session.remove()

        wrapper.nhi_job = JobSpec(queue, timeout, retries, tuple(retry_intervals))  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator


def _spec(func: Callable[..., Any]) -> JobSpec:
    spec = getattr(func, "nhi_job", None)
    return spec if isinstance(spec, JobSpec) else JobSpec("default", 180, 3, (10, 60, 300))


def _queue(conn: Redis, name: str) -> Any:
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=conn, serializer=JSONSerializer)


def _options(spec: JobSpec) -> dict[str, Any]:
    from rq import Retry

    return {
        "job_timeout": spec.timeout,
        "retry": Retry(max=spec.retries, interval=list(spec.retry_intervals)),
        "result_ttl": 3600,
        "failure_ttl": 7 * 86400,
    }


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str | None = None,
    connection: Redis | None = None,
) -> Any:
    """Run ``func`` on an RQ worker, or inline right now when there is no Redis.

    Arguments must be JSON-serialisable (ids and primitives): jobs use RQ's JSONSerializer.
    Raises redis errors when Redis is configured but unreachable. ``connection`` overrides the
    app's client (the worker's periodic thread has its own, so no lock of the client that forked
    work horses inherit is ever held by another thread).
    """
    conn = connection or redis_connection()
    if conn is None:
        return func(*args)
    spec = _spec(func)
    return _queue(conn, queue or spec.queue).enqueue(func, args=args, **_options(spec))


def enqueue_many(func: Callable[..., Any], arg_lists: Iterable[Sequence[Any]]) -> int:
    """Enqueue one job per argument list, in chunks of one Redis round trip each (inline: run them
    one by one). Returns how many were enqueued or run."""
    conn = redis_connection()
    items = [tuple(a) for a in arg_lists]
    if conn is None:
        for args in items:
            func(*args)
        return len(items)
    from rq import Queue

    spec = _spec(func)
    q = _queue(conn, spec.queue)
    opts = _options(spec)
    for start in range(0, len(items), ENQUEUE_CHUNK):
        chunk = items[start : start + ENQUEUE_CHUNK]
        q.enqueue_many(
            [
                Queue.prepare_data(
                    func,
                    args=args,
                    timeout=opts["job_timeout"],
                    retry=opts["retry"],
                    result_ttl=opts["result_ttl"],
                    failure_ttl=opts["failure_ttl"],
                )
                for args in chunk
            ]
        )
    return len(items)


def enqueue_at(when: datetime, func: Callable[..., Any], *args: Any) -> bool:
    """Schedule ``func`` for ``when`` (RQ's scheduler, run by ``worker.py``). Returns False in the
    embedded mode, where due work is picked up by the periodic pass instead."""
    conn = redis_connection()
    if conn is None:
        return False
    spec = _spec(func)
    _queue(conn, spec.queue).enqueue_at(when, func, args=args, **_options(spec))
    return True


def enqueue_in(delay: timedelta, func: Callable[..., Any], *args: Any) -> bool:
    from nhi import clock

    return enqueue_at(clock.now() + delay, func, *args)
