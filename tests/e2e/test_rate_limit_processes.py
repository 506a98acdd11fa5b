"""The rate limit and suspension across real app processes: two gunicorn servers (two workers
each) share the test database; 32 concurrent calls against a limit of 10 admit exactly 10."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from nhi.models import AuditEvent, RateLimitHit
from tests.authz_helpers import grant, make_agent
from tests.conftest import JWT_SECRET, REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("NHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
READ = {"resource": "database:analytics", "action": "read"}

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _start(database_uri: str, redis_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    """A gunicorn on a free port, healthy; another process may take the port between the probe
    and the bind, so a start that dies is retried on a new port."""
    env = {
        **os.environ,
        "NHI_SQLALCHEMY_DATABASE_URI": database_uri,
        "NHI_JWT_SECRET_KEY": JWT_SECRET,
        "NHI_REDIS_URL": redis_url or "",
    }
    for _attempt in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return proc, url
            except requests.RequestException:
                pass
            time.sleep(0.1)
        proc.kill()
        proc.wait()
    raise RuntimeError("gunicorn did not start")


@dataclass
class Servers:
    mode: str  # where the rate limit lives: "database" or "redis"
    urls: list[str]


@pytest.fixture(params=["database", "redis"])
def servers(request: pytest.FixtureRequest, app, database_uri: str) -> Iterator[Servers]:
    redis_url = None
    if request.param == "redis":
        if not _redis_available():
            if REQUIRE_SERVICES:
                pytest.fail("Redis is required (NHI_TEST_REQUIRE_SERVICES) but not reachable")
            pytest.skip("Redis not reachable")
        redis_url = REDIS_URL
    started = [_start(database_uri, redis_url) for _ in range(2)]
    try:
        for proc, url in started:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, "gunicorn exited during start-up"
                try:
                    if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield Servers(request.param, [url for _, url in started])
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _burst(urls: list[str], agent_id: str, headers: dict[str, str], n: int) -> list[int]:
    barrier = threading.Barrier(n)
    codes = [0] * n

    def call(i: int) -> None:
        session = requests.Session()
        url = f"{urls[i % len(urls)]}/nhi/agents/{agent_id}/authorize"
        barrier.wait()
        codes[i] = session.post(url, json=READ, headers=headers, timeout=60).status_code

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def test_32_concurrent_calls_against_a_limit_of_10_admit_exactly_10(
    servers, client, admin, auth, db
):
    agent = make_agent(client, admin, max_actions_per_minute=10)
    grant(client, admin, agent["id"], resource="database:*", action="read")
    own = auth("agent", sub=agent["id"])
    codes = _burst(servers.urls, agent["id"], own, 32)
    assert Counter(codes) == Counter({200: 10, 429: 22}), Counter(codes)

    db.session.expire_all()
    events = (
        db.session.execute(
            db.select(AuditEvent).where(
                AuditEvent.nhi_id == uuid.UUID(agent["id"]),
                AuditEvent.event_type == "agent.authorize",
            )
        )
        .scalars()
        .all()
    )
    rules = Counter(e.details["rule"] for e in events)
    assert rules == Counter({"allowed": 10, "rate_limit": 22})
    assert all(e.decision == "denied" for e in events if e.details["rule"] == "rate_limit")
    assert len({e.decision_id for e in events}) == 32
    key = f"agent:{agent['id']}"
    stored_hits = db.session.execute(db.select(RateLimitHit).where(RateLimitHit.key == key)).all()
    if servers.mode == "redis":
        assert stored_hits == []
        assert redis.Redis.from_url(REDIS_URL).zcard(f"nhi:rl:{key}") == 10
    else:
        assert len(stored_hits) == 10


def test_suspension_is_seen_by_every_process_on_the_next_call(servers, client, admin, auth):
    agent = make_agent(client, admin, max_actions_per_minute=1000)
    grant(client, admin, agent["id"], resource="*", action="*")
    for url in servers.urls * 2:  # both workers of both servers have cached the policy
        resp = requests.post(
            f"{url}/nhi/agents/{agent['id']}/authorize", json=READ, headers=admin, timeout=30
        )
        assert resp.status_code == 200 and resp.json()["authorized"] is True
    client.post(f"/nhi/agents/{agent['id']}/suspend", json={"reason": "x"}, headers=admin)
    for url in servers.urls * 2:
        resp = requests.post(
            f"{url}/nhi/agents/{agent['id']}/authorize", json=READ, headers=admin, timeout=30
        )
        assert resp.json() | {"decision_id": None} == {
            "authorized": False,
            "requires_approval": False,
            "reason": "agent is suspended",
            "decision_id": None,
            "approval_id": None,
            "permission_id": None,
            "conditions": {},
        }
        own = requests.post(
            f"{url}/nhi/agents/{agent['id']}/authorize",
            json=READ,
            headers=auth("agent", sub=agent["id"]),
            timeout=30,
        )
        assert own.status_code == 401
