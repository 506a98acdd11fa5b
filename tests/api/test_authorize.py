"""POST /nhi/agents/{id}/authorize: every rule of the decision order, as seen over HTTP,
with the stored audit trail checked for each decision."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from nhi import clock
from nhi.models import AgentPermission, AuditEvent, Identity, RateLimitHit, RateLimitKey
from tests.authz_helpers import (
    GUIDE_PERMISSION,
    authorize,
    decide,
    grant,
    make_agent,
    make_tool,
    set_clock,
    utc,
)
from tests.conftest import assert_problem

READ = {"resource": "database:analytics", "action": "read"}


def decisions(db, agent_id: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.execute(
            db.select(AuditEvent)
            .where(
                AuditEvent.nhi_id == uuid.UUID(agent_id),
                AuditEvent.event_type == "agent.authorize",
            )
            .order_by(AuditEvent.seq)
        ).scalars()
    )


def last_decision(db, agent_id: str, body: dict) -> AuditEvent:
    event = decisions(db, agent_id)[-1]
    assert str(event.decision_id) == body["decision_id"]
    assert event.reason == body["reason"]
    expected = (
        "allowed"
        if body["authorized"]
        else "requires_approval"
        if body["requires_approval"]
        else "denied"
    )
    assert event.decision == expected
    return event


@pytest.fixture
def agent(client, admin) -> dict:
    return make_agent(client, admin, max_actions_per_minute=1000)


def test_guide_example_authorizes_within_the_window(client, admin, agent, db):
    perm = grant(client, admin, agent["id"], **GUIDE_PERMISSION)
    set_clock(utc(10, 30))
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is True and body["requires_approval"] is False
    assert body["reason"].startswith("Permission granted via direct assignment")
    assert body["permission_id"] == perm["id"] and body["approval_id"] is None
    assert body["conditions"] == {"time_window": "09:00-17:00", "max_rows": 10000}
    event = last_decision(db, agent["id"], body)
    assert (event.resource, event.action, event.actor_type) == (
        "database:analytics",
        "read",
        "human",
    )
    assert event.details["rule"] == "allowed" and event.details["permission_id"] == perm["id"]


def test_rule1_unknown_agent_is_404_not_a_decision(client, admin, auth, db):
    assert_problem(authorize(client, admin, str(uuid.uuid4()), **READ), 404)
    other_tenant = make_agent(client, auth("admin", tid=uuid.uuid4()))
    assert_problem(authorize(client, admin, other_tenant["id"], **READ), 404)
    sa = client.post(
        "/nhi/service-accounts",
        json={"name": "ci", "owner_id": str(uuid.uuid4()), "nhi_type": "service_account"},
        headers=admin,
    ).get_json()
    assert_problem(authorize(client, admin, sa["id"], **READ), 404)
    assert (
        db.session.execute(
            db.select(AuditEvent).where(AuditEvent.event_type == "agent.authorize")
        ).first()
        is None
    )


def test_rule2_suspension_takes_effect_on_the_next_call(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="*", action="*")
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    client.post(f"/nhi/agents/{agent['id']}/suspend", json={"reason": "x"}, headers=admin)
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is False and body["reason"] == "agent is suspended"
    assert body["permission_id"] is None
    assert last_decision(db, agent["id"], body).details["rule"] == "agent_not_active"
    client.post(f"/nhi/agents/{agent['id']}/reactivate", json={"reason": "ok"}, headers=admin)
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True


def test_rule2_expired_agent_is_denied(client, admin, db):
    expires = (clock.now() + timedelta(hours=1)).isoformat()
    agent = make_agent(client, admin, expires_at=expires)
    grant(client, admin, agent["id"], resource="*", action="*")
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    clock.advance(timedelta(hours=2))
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is False and body["reason"] == "agent is expired"


def test_deleted_agent_is_404(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="*", action="*")
    client.delete(f"/nhi/agents/{agent['id']}", headers=admin)
    assert_problem(authorize(client, admin, agent["id"], **READ), 404)


def test_rule4_no_permission(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="database:reporting", action="read")
    grant(client, admin, agent["id"], resource="database:analytics", action="write")
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is False and body["requires_approval"] is False
    assert body["reason"] == "no permission for read on database:analytics"
    assert body["permission_id"] is None
    assert last_decision(db, agent["id"], body).details["rule"] == "no_permission"


def test_rule4_deny_overrides_any_allow(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="database:analytics", action="read")
    grant(client, admin, agent["id"], resource="*", action="*")
    deny = grant(client, admin, agent["id"], resource="database:*", action="read", effect="deny")
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is False and body["permission_id"] == deny["id"]
    assert deny["id"] in body["reason"] and "deny" in body["reason"]
    assert last_decision(db, agent["id"], body).details["rule"] == "deny_permission"
    # the deny covers reads only: writes still pass through the wildcard allow
    assert decide(client, admin, agent["id"], resource="database:analytics", action="write")[
        "authorized"
    ]


def test_deny_with_a_time_window_applies_only_inside_it(client, admin, agent):
    grant(client, admin, agent["id"], resource="*", action="*")
    grant(
        client,
        admin,
        agent["id"],
        resource="*",
        action="*",
        effect="deny",
        conditions={"time_window": "22:00-06:00"},
    )
    set_clock(utc(23))
    assert decide(client, admin, agent["id"], **READ)["authorized"] is False
    set_clock(utc(12, day=16))
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True


@pytest.mark.parametrize(
    ("pattern", "action", "resource", "request_action", "authorized"),
    [
        ("*", "*", "database:analytics", "read", True),
        ("*", "read", "api:github", "read", True),
        ("*", "read", "api:github", "write", False),
        ("database:*", "read", "database:analytics", "read", True),
        ("database:*", "read", "databases:analytics", "read", False),
        ("database:*", "*", "file:analytics", "read", False),
        ("database:analytics", "read", "database:analytics2", "read", False),
        ("database:analytics", "read", "database:Analytics", "read", False),
        ("tool:sql-query", "invoke", "tool:sql-query", "invoke", True),
        ("s3:bucket/reports", "get", "s3:bucket/reports", "get", True),
    ],
)
def test_wildcards(client, admin, agent, pattern, action, resource, request_action, authorized):
    grant(client, admin, agent["id"], resource=pattern, action=action)
    body = decide(client, admin, agent["id"], resource=resource, action=request_action)
    if resource.startswith("tool:"):
        # a tool call without a registered tool passes the permission, then rule 6 denies it
        assert body["reason"] == "unknown tool 'sql-query'"
    else:
        assert body["authorized"] is authorized, body["reason"]


def test_most_specific_passing_permission_is_reported(client, admin, agent):
    anything = grant(client, admin, agent["id"], resource="*", action="*")
    kind = grant(client, admin, agent["id"], resource="database:*", action="read")
    exact = grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions={"max_rows": 100},
    )
    assert decide(client, admin, agent["id"], **READ)["permission_id"] == exact["id"]
    # the exact one fails its cap, so the kind wildcard (no conditions) authorizes
    body = decide(client, admin, agent["id"], **READ, context={"rows": 101})
    assert body["authorized"] is True and body["permission_id"] == kind["id"]
    assert body["conditions"] == {}
    other = decide(client, admin, agent["id"], resource="file:x", action="read")
    assert other["permission_id"] == anything["id"]


def test_ties_are_broken_by_id(client, admin, agent):
    a = grant(client, admin, agent["id"], resource="database:analytics", action="read")
    b = grant(client, admin, agent["id"], resource="database:analytics", action="*")
    body = decide(client, admin, agent["id"], **READ)
    assert body["permission_id"] == min(a["id"], b["id"])


@pytest.mark.parametrize(
    ("rows", "authorized"), [(None, True), (0, True), (9999, True), (10000, True), (10001, False)]
)
def test_rule5_max_rows_boundaries(client, admin, agent, db, rows, authorized):
    perm = grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions={"max_rows": 10000},
    )
    context = {} if rows is None else {"rows": rows}
    body = decide(client, admin, agent["id"], **READ, context=context)
    assert body["authorized"] is authorized
    if authorized:
        assert body["conditions"] == {"max_rows": 10000}
    else:
        assert body["reason"] == (
            f"context.rows 10001 exceeds max_rows 10000 of permission {perm['id']}"
        )
        assert last_decision(db, agent["id"], body).details["rule"] == "max_rows"


def test_max_rows_zero(client, admin, agent):
    grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions={"max_rows": 0},
    )
    assert decide(client, admin, agent["id"], **READ, context={"rows": 0})["authorized"]
    assert not decide(client, admin, agent["id"], **READ, context={"rows": 1})["authorized"]


@pytest.mark.parametrize(
    ("window", "timezone", "hour", "minute", "authorized"),
    [
        ("09:00-17:00", None, 8, 59, False),
        ("09:00-17:00", None, 9, 0, True),
        ("09:00-17:00", None, 16, 59, True),
        ("09:00-17:00", None, 17, 0, False),
        ("22:00-06:00", None, 21, 59, False),
        ("22:00-06:00", None, 22, 0, True),
        ("22:00-06:00", None, 0, 0, True),
        ("22:00-06:00", None, 5, 59, True),
        ("22:00-06:00", None, 6, 0, False),
        ("22:00-06:00", None, 12, 0, False),
        # Paris is UTC+1 in January: 09:00-17:00 Paris is 08:00-16:00 UTC
        ("09:00-17:00", "Europe/Paris", 8, 0, True),
        ("09:00-17:00", "Europe/Paris", 7, 59, False),
        ("09:00-17:00", "Europe/Paris", 16, 0, False),
        # New York is UTC-5 in January: 22:00-02:00 local is 03:00-07:00 UTC
        ("22:00-02:00", "America/New_York", 3, 0, True),
        ("22:00-02:00", "America/New_York", 6, 59, True),
        ("22:00-02:00", "America/New_York", 7, 0, False),
        ("22:00-02:00", "America/New_York", 22, 0, False),
    ],
)
def test_rule5_time_windows(client, admin, agent, db, window, timezone, hour, minute, authorized):
    conditions = {"time_window": window}
    if timezone:
        conditions["timezone"] = timezone
    perm = grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions=conditions,
    )
    set_clock(utc(hour, minute))
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is authorized, body["reason"]
    if not authorized:
        assert body["reason"].startswith(f"time_window {window} ({timezone or 'UTC'})")
        assert perm["id"] in body["reason"]
        assert last_decision(db, agent["id"], body).details["rule"] == "time_window"


def test_time_window_follows_daylight_saving(client, admin, agent):
    grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions={"time_window": "09:00-17:00", "timezone": "Europe/Paris"},
    )
    set_clock(utc(7, 30, month=7))  # 09:30 in Paris in summer (UTC+2)
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    set_clock(utc(7, 30, month=12, day=15))  # 08:30 in Paris in winter (UTC+1)
    assert decide(client, admin, agent["id"], **READ)["authorized"] is False


def test_all_failing_allows_name_the_most_specific(client, admin, agent):
    grant(
        client,
        admin,
        agent["id"],
        resource="*",
        action="*",
        conditions={"time_window": "01:00-02:00"},
    )
    exact = grant(
        client,
        admin,
        agent["id"],
        resource="database:analytics",
        action="read",
        conditions={"max_rows": 5},
    )
    set_clock(utc(12))
    body = decide(client, admin, agent["id"], **READ, context={"rows": 6})
    assert body["authorized"] is False and body["permission_id"] == exact["id"]
    assert body["reason"].startswith("context.rows 6 exceeds max_rows 5")


def test_expired_permissions_are_ignored(client, admin, agent, db):
    when = (clock.now() + timedelta(minutes=10)).isoformat()
    grant(client, admin, agent["id"], resource="database:analytics", action="read", expires_at=when)
    deny = grant(
        client, admin, agent["id"], resource="file:*", action="*", effect="deny", expires_at=when
    )
    grant(client, admin, agent["id"], resource="file:*", action="read")
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    assert (
        decide(client, admin, agent["id"], resource="file:a", action="read")["permission_id"]
        == deny["id"]
    )
    clock.advance(timedelta(minutes=11))
    body = decide(client, admin, agent["id"], **READ)
    assert body["authorized"] is False and body["reason"].startswith("no permission")
    assert decide(client, admin, agent["id"], resource="file:a", action="read")["authorized"]


def test_revoked_permission_is_seen_by_the_next_call(client, admin, agent):
    perm = grant(client, admin, agent["id"], resource="database:analytics", action="read")
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    client.delete(f"/nhi/agents/{agent['id']}/permissions/{perm['id']}", headers=admin)
    assert decide(client, admin, agent["id"], **READ)["authorized"] is False


def test_rule6_tool_calls(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="tool:*", action="invoke")
    unknown = decide(client, admin, agent["id"], tool="sql-query", parameters={"query": "q"})
    assert unknown["authorized"] is False and unknown["reason"] == "unknown tool 'sql-query'"
    tool = make_tool(client, admin, requires_approval=False)
    missing = decide(client, admin, agent["id"], tool="sql-query", parameters={"query": "q"})
    assert missing["authorized"] is False
    assert missing["reason"] == (
        "parameters do not match the schema of tool 'sql-query': $: 'database' is a required "
        "property"
    )
    assert last_decision(db, agent["id"], missing).details["rule"] == "parameters_schema"
    bad_enum = decide(
        client, admin, agent["id"], tool="sql-query", parameters={"query": "q", "database": "prod"}
    )
    assert "$.database: 'prod' is not one of ['analytics', 'reporting']" in bad_enum["reason"]
    ok = decide(
        client,
        admin,
        agent["id"],
        tool="sql-query",
        parameters={"query": "select 1", "database": "analytics"},
    )
    assert ok["authorized"] is True
    event = last_decision(db, agent["id"], ok)
    assert event.resource == "tool:sql-query" and event.action == "invoke"
    assert event.details["parameters"] == {"query": "select 1", "database": "analytics"}
    # the resource form of the same call is the same tool call
    same = decide(client, admin, agent["id"], resource="tool:sql-query", action="invoke")
    assert same["authorized"] is False and "'query' is a required property" in same["reason"]
    # deleting the tool is seen at once
    client.delete(f"/nhi/tools/{tool['id']}", headers=admin)
    gone = decide(
        client,
        admin,
        agent["id"],
        tool="sql-query",
        parameters={"query": "select 1", "database": "analytics"},
    )
    assert gone["reason"] == "unknown tool 'sql-query'"


def test_tool_call_needs_a_permission_first(client, admin, agent):
    make_tool(client, admin)
    body = decide(client, admin, agent["id"], tool="sql-query", parameters={})
    assert body["reason"] == "no permission for invoke on tool:sql-query"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"resource": "database:analytics"},
        {"action": "read"},
        {"resource": "database", "action": "read"},
        {"resource": "database:*", "action": "read"},
        {"resource": "*", "action": "read"},
        {"resource": "database:analytics", "action": "*"},
        {"resource": "database:analytics", "action": "read", "tool": "sql-query"},
        {"resource": "database:analytics", "action": "read", "parameters": {}},
        {"tool": "has space"},
        {"tool": "sql-query", "parameters": [1, 2]},
        {"resource": "database:analytics", "action": "read", "context": {"rows": -1}},
        {"resource": "database:analytics", "action": "read", "context": {"rows": "10"}},
        {"resource": "database:analytics", "action": "read", "context": {"rows": 1.5}},
        {"resource": "database:analytics", "action": "read", "context": "x"},
        {"resource": "database:analytics", "action": "read", "extra": 1},
    ],
)
def test_malformed_requests_are_422_and_not_audited(client, admin, agent, db, body):
    assert_problem(authorize(client, admin, agent["id"], **body), 422)
    assert decisions(db, agent["id"]) == []


def test_agent_token_authorizes_itself_only(client, admin, auth, agent, db):
    grant(client, admin, agent["id"], resource="*", action="*")
    own = auth("agent", sub=agent["id"])
    body = decide(client, own, agent["id"], **READ)
    assert body["authorized"] is True
    event = last_decision(db, agent["id"], body)
    assert (event.actor_id, event.actor_type) == (agent["id"], "ai_agent")
    other = make_agent(client, admin)
    assert_problem(authorize(client, own, other["id"], **READ), 403)
    assert_problem(authorize(client, auth("agent", sub=other["id"]), agent["id"], **READ), 403)
    assert_problem(authorize(client, auth("reviewer"), agent["id"], **READ), 403)
    sa = client.post(
        "/nhi/service-accounts",
        json={"name": "ci", "owner_id": str(uuid.uuid4()), "nhi_type": "service_account"},
        headers=admin,
    ).get_json()
    assert_problem(
        authorize(client, auth("service_account", sub=sa["id"]), agent["id"], **READ), 403
    )
    # a suspended agent's own token is refused outright
    client.post(f"/nhi/agents/{agent['id']}/suspend", json={"reason": "x"}, headers=admin)
    assert_problem(authorize(client, own, agent["id"], **READ), 401)
    assert len(decisions(db, agent["id"])) == 1


def test_last_activity_is_updated_at_most_once_a_minute(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="*", action="*")

    def stored() -> Identity:
        db.session.expire_all()
        return db.session.get(Identity, uuid.UUID(agent["id"]))

    version, updated = stored().version, stored().updated_at
    decide(client, admin, agent["id"], **READ)
    first = stored().last_activity_at
    assert first is not None and abs((first - clock.now()).total_seconds()) < 5
    clock.advance(timedelta(seconds=30))
    decide(client, admin, agent["id"], **READ)
    assert stored().last_activity_at == first
    clock.advance(timedelta(seconds=31))
    decide(client, admin, agent["id"], **READ)
    assert stored().last_activity_at > first
    # activity is not an edit: the version (cache stamp) and updated_at stay
    assert stored().version == version and stored().updated_at == updated
    got = client.get(f"/nhi/agents/{agent['id']}", headers=admin).get_json()
    assert got["last_activity_at"] is not None


def test_rule3_rate_limit_is_429_with_retry_after_and_audited(client, admin, db):
    agent = make_agent(client, admin, max_actions_per_minute=3)
    grant(client, admin, agent["id"], resource="*", action="*")
    start = utc(12)
    set_clock(start)
    for _ in range(3):
        assert decide(client, admin, agent["id"], **READ)["authorized"] is True
        clock.advance(timedelta(seconds=10))
    resp = authorize(client, admin, agent["id"], **READ)
    body = assert_problem(resp, 429)
    # the first hit leaves the window 60 s after it was made (+ the few ms the calls took)
    assert resp.headers["Retry-After"] in ("30", "31")
    assert "rate limit" in body["detail"] and uuid.UUID(body["decision_id"])
    event = decisions(db, agent["id"])[-1]
    assert event.decision == "denied" and str(event.decision_id) == body["decision_id"]
    assert event.details["rule"] == "rate_limit"
    # denied calls do not count: once the first hit is 60 s old, one more is admitted
    set_clock(start + timedelta(seconds=60.5))
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    assert_problem(authorize(client, admin, agent["id"], **READ), 429)
    # the expired hit was deleted and the key's count follows the log
    hits = db.session.execute(db.select(RateLimitHit)).scalars().all()
    assert len(hits) == 3 and all(h.at > clock.now() - timedelta(seconds=60) for h in hits)
    assert db.session.get(RateLimitKey, f"agent:{agent['id']}").hits == 3
    # after a quiet minute, everything has left the window
    clock.advance(timedelta(seconds=61))
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    db.session.expire_all()
    assert len(db.session.execute(db.select(RateLimitHit)).all()) == 1
    assert db.session.get(RateLimitKey, f"agent:{agent['id']}").hits == 1


def test_rate_limit_change_applies_at_once(client, admin, agent):
    grant(client, admin, agent["id"], resource="*", action="*")
    client.patch(f"/nhi/agents/{agent['id']}", json={"max_actions_per_minute": 1}, headers=admin)
    assert decide(client, admin, agent["id"], **READ)["authorized"] is True
    assert_problem(authorize(client, admin, agent["id"], **READ), 429)


def test_audit_trail_filters(client, admin, agent, auth):
    grant(client, admin, agent["id"], resource="*", action="*")
    set_clock(utc(10))
    decide(client, admin, agent["id"], **READ)
    set_clock(utc(11))
    decide(client, admin, agent["id"], resource="file:x", action="read")
    url = f"/nhi/agents/{agent['id']}/audit"
    page = client.get(f"{url}?limit=50", headers=admin).get_json()
    assert [e["event_type"] for e in page["items"]] == [
        "agent.authorize",
        "agent.authorize",
        "permission.granted",
        "nhi.created",
    ]
    assert page["items"][0]["resource"] == "file:x" and page["items"][0]["decision"] == "allowed"
    only = client.get(f"{url}?event_type=agent.authorize", headers=admin).get_json()
    assert only["total"] == 2
    since = client.get(f"{url}?since=2031-01-15T10:30:00Z", headers=admin).get_json()
    assert [e["resource"] for e in since["items"]] == ["file:x"]
    until = client.get(
        f"{url}?event_type=agent.authorize&until=2031-01-15T10:30:00Z", headers=admin
    ).get_json()
    assert [e["resource"] for e in until["items"]] == ["database:analytics"]
    assert client.get(url, headers=auth("viewer")).status_code == 200
    assert_problem(client.get(url, headers=auth("agent", sub=agent["id"])), 403)
    assert_problem(client.get(f"/nhi/agents/{uuid.uuid4()}/audit", headers=admin), 404)
    assert_problem(client.get(f"{url}?since=yesterday", headers=admin), 422)


def test_outcome_is_recorded_once(client, admin, auth, agent, db):
    from nhi.models import DecisionOutcome

    grant(client, admin, agent["id"], resource="*", action="*")
    body = decide(client, admin, agent["id"], **READ)
    url = f"/nhi/agents/{agent['id']}/decisions/{body['decision_id']}/outcome"
    own = auth("agent", sub=agent["id"])
    resp = client.post(url, json={"status": "error", "detail": "timeout"}, headers=own)
    assert resp.status_code == 204 and resp.get_data() == b""
    db.session.expire_all()
    row = db.session.get(DecisionOutcome, uuid.UUID(body["decision_id"]))
    assert (row.status, row.detail, str(row.agent_id)) == ("error", "timeout", agent["id"])
    event = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.event_type == "agent.outcome")
    ).scalar_one()
    assert event.details["status"] == "error" and str(event.decision_id) == body["decision_id"]
    assert_problem(client.post(url, json={"status": "success"}, headers=admin), 409)
    assert_problem(client.post(url, json={"status": "meh"}, headers=admin), 422)
    unknown = f"/nhi/agents/{agent['id']}/decisions/{uuid.uuid4()}/outcome"
    assert_problem(client.post(unknown, json={"status": "success"}, headers=admin), 404)
    other = make_agent(client, admin)
    cross = f"/nhi/agents/{other['id']}/decisions/{body['decision_id']}/outcome"
    assert_problem(client.post(cross, json={"status": "success"}, headers=admin), 404)
    assert_problem(client.post(cross, json={"status": "success"}, headers=own), 403)


def test_permissions_of_one_agent_do_not_leak_to_another(client, admin, agent, db):
    grant(client, admin, agent["id"], resource="*", action="*")
    other = make_agent(client, admin)
    assert decide(client, admin, other["id"], **READ)["authorized"] is False
    assert db.session.execute(db.select(AgentPermission)).scalars().one().agent_id == uuid.UUID(
        agent["id"]
    )


def test_authorize_keeps_answering_when_redis_is_down(database_uri, admin, auth):
    """Rate limits fall back to the database while Redis is unreachable (no 500)."""
    from nhi import create_app
    from tests.authz_helpers import grant as grant_permission
    from tests.conftest import base_config

    app = create_app({**base_config(database_uri), "REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    agent = make_agent(client, admin, max_actions_per_minute=2)
    grant_permission(client, admin, agent["id"], resource="database:analytics", action="read")
    codes = [
        client.post(
            f"/nhi/agents/{agent['id']}/authorize",
            headers=admin,
            json={"resource": "database:analytics", "action": "read"},
        ).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
