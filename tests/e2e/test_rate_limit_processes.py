"""The rate limit and suspension across real app processes: two gunicorn servers (two workers
each) share the test database; 32 concurrent calls against a limit of 10 admit exactly 10."""

from __future__ import annotations

import functools
import os
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
from tests.conftest import REQUIRE_SERVICES, run_together, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("NHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
READ = {"resource": "database:analytics", "action": "read"}

pytestmark = pytest.mark.e2e


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


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
    started = [start_server(database_uri, redis_url=redis_url) for _ in range(2)]
    try:
        yield Servers(request.param, [url for _, url in started])
    finally:
        for proc, _ in started:
            stop_server(proc)


def _burst(urls: list[str], agent_id: str, headers: dict[str, str], n: int) -> list[int]:
    def call(i: int) -> int:
        url = f"{urls[i % len(urls)]}/nhi/agents/{agent_id}/authorize"
        return requests.Session().post(url, json=READ, headers=headers, timeout=60).status_code

    return run_together([functools.partial(call, i) for i in range(n)])


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
