"""Rule 7: approval-gated actions create, reuse and use up approval records.

Deciding an approval is the HITL API's job (a later issue); these tests set the decision on the
stored row the way that API will.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis

from nhi import clock
from nhi.models import Approval, AuditEvent, OutboxEvent
from tests.authz_helpers import decide, grant, make_agent, make_tool
from tests.conftest import REQUIRE_SERVICES, assert_problem, run_together

PARAMS = {"query": "select 1", "database": "analytics"}


def approvals(db) -> list[Approval]:
    db.session.expire_all()
    return list(db.session.execute(db.select(Approval).order_by(Approval.requested_at)).scalars())


def approve(db, approval_id: str, *, conditions: dict | None = None, minutes: int = 60) -> None:
    row = db.session.get(Approval, uuid.UUID(approval_id))
    now = clock.now()
    row.status, row.decided_by, row.decided_at = "approved", str(uuid.uuid4()), now
    row.conditions = conditions or {}
    row.expires_at = now + timedelta(minutes=minutes)
    db.session.commit()


def setup_tool_agent(client, admin):
    agent = make_agent(client, admin, max_actions_per_minute=1000)
    make_tool(client, admin)  # the guide's sql-query, requires_approval: true
    perm = grant(client, admin, agent["id"], resource="tool:sql-query", action="invoke")
    return agent, perm


def test_tool_requiring_approval_opens_one_pending_request(client, admin, auth, db):
    agent, perm = setup_tool_agent(client, admin)
    own = auth("agent", sub=agent["id"])
    first = decide(
        client, own, agent["id"], tool="sql-query", parameters=PARAMS, context={"rows": 10}
    )
    assert first["authorized"] is False and first["requires_approval"] is True
    assert first["approval_id"] and first["permission_id"] == perm["id"]
    assert "tool 'sql-query' requires approval" in first["reason"]
    [row] = approvals(db)
    assert str(row.id) == first["approval_id"] and row.status == "pending"
    assert (row.tool, row.resource, row.action) == ("sql-query", "tool:sql-query", "invoke")
    assert row.parameters == PARAMS and row.context == {"rows": 10}
    assert row.requested_by == agent["id"] and str(row.decision_id) == first["decision_id"]
    assert row.expires_at - row.requested_at == timedelta(seconds=3600)
    outbox = db.session.execute(
        db.select(OutboxEvent).where(OutboxEvent.event_type == "approval.requested")
    ).scalar_one()
    assert outbox.data["id"] == first["approval_id"]
    decision = db.session.execute(
        db.select(AuditEvent).where(
            AuditEvent.decision_id == uuid.UUID(first["decision_id"]),
            AuditEvent.event_type == "agent.authorize",
        )
    ).scalar_one()
    assert decision.decision == "requires_approval"
    assert str(decision.approval_id) == first["approval_id"]

    # the same call again reuses the pending request; other parameters open another one
    again = decide(client, admin, agent["id"], tool="sql-query", parameters=dict(PARAMS))
    assert again["approval_id"] == first["approval_id"] and again["requires_approval"]
    other = decide(
        client,
        admin,
        agent["id"],
        tool="sql-query",
        parameters={"query": "select 2", "database": "analytics"},
    )
    assert other["approval_id"] != first["approval_id"]
    assert len(approvals(db)) == 2


def test_approved_request_authorizes_once_with_its_conditions(client, admin, db):
    agent, perm = setup_tool_agent(client, admin)
    pending = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    approve(db, pending["approval_id"], conditions={"max_rows": 1000, "expires_in_minutes": 30})

    # breaking the approval's conditions is denied and does not use it up
    over = decide(
        client, admin, agent["id"], tool="sql-query", parameters=PARAMS, context={"rows": 1001}
    )
    assert over["authorized"] is False and over["requires_approval"] is False
    assert over["reason"] == "context.rows 1001 exceeds max_rows 1000 of the approval"
    assert approvals(db)[0].used_at is None

    ok = decide(
        client, admin, agent["id"], tool="sql-query", parameters=PARAMS, context={"rows": 1000}
    )
    assert ok["authorized"] is True and ok["approval_id"] == pending["approval_id"]
    assert ok["conditions"]["max_rows"] == 1000 and ok["permission_id"] == perm["id"]
    assert "single use" in ok["reason"]
    [row] = approvals(db)
    assert row.used_at is not None and str(row.used_decision_id) == ok["decision_id"]

    # used up: the next identical call needs a new approval
    again = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    assert again["requires_approval"] is True and again["approval_id"] != pending["approval_id"]
    assert [a.status for a in approvals(db)] == ["approved", "pending"]


def test_approval_conditions_only_narrow_the_permission(client, admin, db):
    agent = make_agent(client, admin, max_actions_per_minute=1000)
    grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions={"max_rows": 50, "requires_approval": True},
    )
    read = {"resource": "database:analytics", "action": "read"}
    pending = decide(client, admin, agent["id"], **read)
    assert pending["requires_approval"] is True
    assert "requires approval" in pending["reason"]
    approve(db, pending["approval_id"], conditions={"max_rows": 500})
    # the permission's own cap (50) still applies before the approval is considered
    capped = decide(client, admin, agent["id"], **read, context={"rows": 51})
    assert capped["authorized"] is False and "max_rows 50" in capped["reason"]
    ok = decide(client, admin, agent["id"], **read)
    assert ok["authorized"] is True and ok["conditions"]["max_rows"] == 50


def test_expired_pending_request_is_replaced(client, admin, db):
    agent, _ = setup_tool_agent(client, admin)
    first = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    clock.advance(timedelta(seconds=3601))
    second = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    assert second["requires_approval"] and second["approval_id"] != first["approval_id"]
    assert [a.status for a in approvals(db)] == ["expired", "pending"]
    assert (
        db.session.execute(
            db.select(OutboxEvent).where(OutboxEvent.event_type == "approval.expired")
        )
        .scalar_one()
        .data["id"]
        == first["approval_id"]
    )


def test_expired_or_denied_approval_is_not_used(client, admin, db):
    agent, _ = setup_tool_agent(client, admin)
    first = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    approve(db, first["approval_id"], minutes=30)
    clock.advance(timedelta(minutes=31))
    late = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    assert late["authorized"] is False and late["requires_approval"] is True
    assert approvals(db)[0].used_at is None
    denied = approvals(db)[1]
    denied.status = "denied"
    db.session.commit()
    after = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    assert after["requires_approval"] and after["approval_id"] not in (
        first["approval_id"],
        late["approval_id"],
    )


def test_earlier_rules_win_over_approval(client, admin, auth, db):
    agent, _ = setup_tool_agent(client, admin)
    bad = decide(client, admin, agent["id"], tool="sql-query", parameters={"query": 1})
    assert bad["requires_approval"] is False and "schema" in bad["reason"]
    client.post(f"/nhi/agents/{agent['id']}/suspend", json={"reason": "x"}, headers=admin)
    off = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    assert off["requires_approval"] is False and off["reason"] == "agent is suspended"
    assert approvals(db) == []


def test_tool_without_approval_is_authorized_directly(client, admin, db):
    agent, _ = setup_tool_agent(client, admin)
    tool_id = client.get("/nhi/tools", headers=admin).get_json()["items"][0]["id"]
    client.patch(f"/nhi/tools/{tool_id}", json={"requires_approval": False}, headers=admin)
    ok = decide(client, admin, agent["id"], tool="sql-query", parameters=PARAMS)
    assert ok["authorized"] is True and ok["approval_id"] is None
    assert approvals(db) == []
    assert_problem(
        client.post(
            f"/nhi/agents/{agent['id']}/authorize",
            json={"tool": "sql-query", "parameters": PARAMS, "resource": "x:y"},
            headers=admin,
        ),
        422,
    )


@pytest.mark.parametrize("rate_limit", ["database", "redis"])
def test_concurrent_identical_calls_share_one_pending_approval(
    rate_limit, app, database_uri, client, admin, db
):

    from flask import Flask

    from nhi import create_app
    from tests.conftest import base_config

    target: Flask = app
    if rate_limit == "redis":
        redis_url = "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
        except redis.RedisError:
            if REQUIRE_SERVICES:
                pytest.fail("Redis is required (NHI_TEST_REQUIRE_SERVICES) but not reachable")
            pytest.skip("Redis not reachable")
        target = create_app({**base_config(database_uri), "REDIS_URL": redis_url})
    agent, _ = setup_tool_agent(client, admin)

    def call() -> dict:
        resp = target.test_client().post(
            f"/nhi/agents/{agent['id']}/authorize",
            json={"tool": "sql-query", "parameters": PARAMS},
            headers=admin,
        )
        return resp.get_json() | {"status": resp.status_code}

    results = run_together([call] * 8)
    assert [r["status"] for r in results] == [200] * 8
    assert all(r["requires_approval"] for r in results)
    rows = approvals(db)
    assert len(rows) == 1 and rows[0].status == "pending"
    assert {r["approval_id"] for r in results} == {str(rows[0].id)}
