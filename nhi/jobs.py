"""Job queue access: RQ on Redis when NHI_REDIS_URL is set, inline execution otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from redis import Redis

_connections: dict[str, Redis] = {}


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


def enqueue(func: Callable[..., Any], *args: Any, queue: str = "default", **kwargs: Any) -> Any:
    """Run ``func`` on an RQ worker, or inline right now when there is no Redis.

    Arguments must be JSON-serialisable (ids and primitives): jobs use RQ's JSONSerializer.
    """
    conn = redis_connection()
    if conn is None:
        return func(*args, **kwargs)
    from rq import Queue
    from rq.serializers import JSONSerializer

    q = Queue(queue, connection=conn, serializer=JSONSerializer)
    return q.enqueue(func, *args, **kwargs)
