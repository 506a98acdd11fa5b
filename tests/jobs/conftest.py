"""Fixtures for job tests: a real Redis (a dedicated database, flushed around each test), an app
bound to it, real RQ workers (``worker.py --burst`` subprocesses, or SimpleWorker in-process)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker, Worker

from nhi import create_app, jobs
from nhi.extensions import db as _db
from nhi.services import relay
from tests.conftest import JWT_SECRET, REQUIRE_SERVICES, base_config

ROOT = Path(__file__).resolve().parents[2]
REDIS_TEST_URL = os.environ.get("NHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")

JOB_SETTINGS: dict[str, Any] = {
    "WEBHOOK_ALLOW_PRIVATE": True,  # the receivers listen on 127.0.0.1
    "WEBHOOK_CONNECT_TIMEOUT": 1,
    "WEBHOOK_READ_TIMEOUT": 2,
    "WEBHOOK_LEASE_MARGIN": 1,
}


_LOGS: list[str] = []


@pytest.fixture(autouse=True)
def _remove_worker_logs() -> Iterator[None]:
    yield
    while _LOGS:
        with contextlib.suppress(OSError):
            os.unlink(_LOGS.pop())


def _ping(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=2).ping())
    except Exception:
        return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    if not _ping(REDIS_TEST_URL):
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required (NHI_TEST_REQUIRE_SERVICES) at {REDIS_TEST_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL}")
    conn = Redis.from_url(REDIS_TEST_URL)
    conn.flushdb()
    yield REDIS_TEST_URL
    conn.flushdb()


def make_job_app(database_uri: str, redis_url: str, **overrides: Any) -> Flask:
    return create_app(
        {**base_config(database_uri), "REDIS_URL": redis_url, **JOB_SETTINGS, **overrides}
    )


@pytest.fixture
def rq_app(app: Flask, database_uri: str, redis_url: str) -> Iterator[Flask]:
    """An app on the same database as ``app`` (migrated by it) whose jobs go to Redis."""
    application = make_job_app(database_uri, redis_url)
    jobs.bind_app(application)
    yield application
    jobs.bind_app(None)
    with application.app_context():
        _db.session.remove()
        _db.engine.dispose()


def worker_env(database_uri: str, redis_url: str, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHI_")}
    env.update(
        NHI_SQLALCHEMY_DATABASE_URI=database_uri,
        NHI_REDIS_URL=redis_url,
        NHI_JWT_SECRET_KEY=JWT_SECRET,
    )
    for key, value in {**JOB_SETTINGS, **settings}.items():
        env[f"NHI_{key}"] = str(int(value) if isinstance(value, bool) else value)
    return env


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """``python worker.py ARGS`` in its own process group, its log in a temporary file
    (``proc.log_path``), so that a full pipe can never block it."""
    fd, log_path = tempfile.mkstemp(prefix="nhi-worker-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "worker.py", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the test can kill it
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    _LOGS.append(log_path)
    return proc


def kill_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker and its work horses (RQ puts each horse in a session of its own)."""
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    for pid in [int(c) for c in children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def worker_log(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def run_burst_worker(env: dict[str, str], timeout: float = 60) -> str:
    """``python worker.py --burst`` to completion; returns its log (asserting exit code 0)."""
    proc = start_worker(env, "--burst")
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_worker(proc)
        raise AssertionError("worker timed out:\n" + worker_log(proc)[-5000:]) from None
    text = worker_log(proc)
    assert proc.returncode == 0, text
    return text


class _InProcessWorker(SimpleWorker):
    """RQ's SimpleWorker without the pub/sub command channel (remote kill/stop commands), whose
    listener thread can hold up the end of a burst in-process for up to a minute."""

    def subscribe(self) -> None:
        return None

    def unsubscribe(self) -> None:
        return None


def work_until(app: Flask, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run RQ SimpleWorkers in burst mode (with the scheduler, so delayed retries are moved to
    their queue when due) until ``done()``."""
    from rq.serializers import JSONSerializer

    conn = Redis.from_url(app.config["REDIS_URL"])  # no socket timeout: workers block on it
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the jobs did not finish in time: " + _job_state(app, conn))
        worker = _InProcessWorker(list(jobs.QUEUES), connection=conn, serializer=JSONSerializer)
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        if _idle(conn):  # what the periodic sweep does in production, without its 2 min grace
            with app.app_context():
                relay.sweep(grace=timedelta(0))
        time.sleep(0.02)


def _idle(conn: Redis) -> bool:
    from rq import Queue
    from rq.serializers import JSONSerializer

    queues = [Queue(n, connection=conn, serializer=JSONSerializer) for n in jobs.QUEUES]
    return not any(q.count or q.scheduled_job_registry.count for q in queues)


def _job_state(app: Flask, conn: Redis) -> str:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from nhi.models import WebhookDelivery

    with app.app_context():
        rows = _db.session.execute(_db.select(WebhookDelivery)).scalars().all()
        state = [(d.status, d.attempts, d.next_attempt_at, d.last_error) for d in rows]
    queues = {
        name: (
            q.count,
            q.scheduled_job_registry.count,
            q.started_job_registry.count,
            q.failed_job_registry.count,
        )
        for name in jobs.QUEUES
        for q in [Queue(name, connection=conn, serializer=JSONSerializer)]
    }
    workers = [(w.name, w.pid, w.hostname) for w in Worker.all(connection=conn)]
    return (
        f"deliveries={state} queues(queued, scheduled, started, failed)={queues} "
        f"workers={workers} locks={conn.keys('*lock*')}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
