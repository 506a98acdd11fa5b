"""Agent permissions: grant, list, revoke, and clear 422s for malformed input."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from nhi import clock
from nhi.models import AgentPermission, AuditEvent, Identity
from tests.authz_helpers import GUIDE_PERMISSION, OWNER, grant, make_agent
from tests.conftest import assert_problem


def permissions_of(db, agent_id: str) -> list[AgentPermission]:
    db.session.expire_all()
    return list(
        db.session.execute(
            db.select(AgentPermission).where(AgentPermission.agent_id == uuid.UUID(agent_id))
        ).scalars()
    )


def version_of(db, agent_id: str) -> int:
    db.session.expire_all()
    return db.session.get(Identity, uuid.UUID(agent_id)).version


def test_grant_as_in_the_guide(client, admin, db):
    agent = make_agent(client, admin)
    before = version_of(db, agent["id"])
    resp = client.post(
        f"/nhi/agents/{agent['id']}/permissions", json=GUIDE_PERMISSION, headers=admin
    )
    assert resp.status_code == 201
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/nhi/agents/{agent['id']}/permissions/{body['id']}")
    assert body["resource"] == "database:analytics" and body["action"] == "read"
    assert body["effect"] == "allow" and body["expires_at"] is None
    assert body["conditions"] == {"time_window": "09:00-17:00", "max_rows": 10000}
    assert body["agent_id"] == agent["id"] and uuid.UUID(body["granted_by"])
    [row] = permissions_of(db, agent["id"])
    assert row.conditions == body["conditions"] and str(row.id) == body["id"]
    assert version_of(db, agent["id"]) == before + 1
    event = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.event_type == "permission.granted")
    ).scalar_one()
    assert str(event.nhi_id) == agent["id"] and event.resource == "database:analytics"

    listed = client.get(f"/nhi/agents/{agent['id']}/permissions", headers=admin).get_json()
    assert listed["total"] == 1 and listed["items"][0] == body
    one = client.get(resp.headers["Location"], headers=admin)
    assert one.status_code == 200 and one.get_json() == body


def test_list_paging_filter_and_revoke(client, admin, db):
    agent = make_agent(client, admin)
    ids = [grant(client, admin, agent["id"], resource=f"database:db{i}")["id"] for i in range(3)]
    deny = grant(client, admin, agent["id"], resource="*", action="delete", effect="deny")
    page = client.get(f"/nhi/agents/{agent['id']}/permissions?limit=2", headers=admin).get_json()
    assert page["total"] == 4 and [p["id"] for p in page["items"]] == ids[:2]
    denies = client.get(
        f"/nhi/agents/{agent['id']}/permissions?effect=deny", headers=admin
    ).get_json()
    assert [p["id"] for p in denies["items"]] == [deny["id"]]

    version = version_of(db, agent["id"])
    url = f"/nhi/agents/{agent['id']}/permissions/{ids[0]}"
    assert client.delete(url, headers=admin).status_code == 204
    assert ids[0] not in {str(p.id) for p in permissions_of(db, agent["id"])}
    assert version_of(db, agent["id"]) == version + 1
    assert_problem(client.delete(url, headers=admin), 404)
    revoked = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.event_type == "permission.revoked")
    ).scalar_one()
    assert revoked.details["permission"]["id"] == ids[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resource": "database", "action": "read"}, "resource"),
        ({"resource": "database:", "action": "read"}, "resource"),
        ({"resource": ":analytics", "action": "read"}, "resource"),
        ({"resource": "database:ana*", "action": "read"}, "resource"),
        ({"resource": "data base:x", "action": "read"}, "resource"),
        ({"resource": "**", "action": "read"}, "resource"),
        ({"resource": "database:x", "action": "read all"}, "action"),
        ({"resource": "database:x", "action": ""}, "action"),
        ({"resource": "database:x", "action": "read", "effect": "maybe"}, "effect"),
        ({"resource": "database:x"}, "action"),
        (
            {"resource": "database:x", "action": "read", "conditions": {"when": "now"}},
            "conditions.when",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"time_window": "9-17"}},
            "conditions.time_window",
        ),
        (
            {
                "resource": "database:x",
                "action": "read",
                "conditions": {"time_window": "25:00-26:00"},
            },
            "conditions.time_window",
        ),
        (
            {
                "resource": "database:x",
                "action": "read",
                "conditions": {"time_window": "09:60-10:00"},
            },
            "conditions.time_window",
        ),
        (
            {
                "resource": "database:x",
                "action": "read",
                "conditions": {"time_window": "09:00-09:00"},
            },
            "conditions.time_window",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"time_window": 900}},
            "conditions.time_window",
        ),
        (
            {
                "resource": "database:x",
                "action": "read",
                "conditions": {"time_window": "09:00-17:00", "timezone": "Mars/Olympus"},
            },
            "conditions.timezone",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"timezone": "UTC"}},
            "conditions.timezone",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"max_rows": -1}},
            "conditions.max_rows",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"max_rows": "10"}},
            "conditions.max_rows",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"max_rows": 1.5}},
            "conditions.max_rows",
        ),
        (
            {"resource": "database:x", "action": "read", "conditions": {"max_rows": True}},
            "conditions.max_rows",
        ),
        (
            {
                "resource": "database:x",
                "action": "read",
                "conditions": {"requires_approval": "yes"},
            },
            "conditions.requires_approval",
        ),
        (
            {
                "resource": "database:x",
                "action": "read",
                "effect": "deny",
                "conditions": {"max_rows": 5},
            },
            "conditions.max_rows",
        ),
        (
            {"resource": "database:x", "action": "read", "expires_at": "2001-01-01T00:00:00Z"},
            "expires_at",
        ),
        ({"resource": "database:x", "action": "read", "granted_by": OWNER}, "granted_by"),
    ],
)
def test_malformed_permissions_are_422_and_nothing_is_written(client, admin, db, body, field):
    agent = make_agent(client, admin)
    version = version_of(db, agent["id"])
    resp = client.post(f"/nhi/agents/{agent['id']}/permissions", json=body, headers=admin)
    assert_problem(resp, 422, field=field)
    assert permissions_of(db, agent["id"]) == []
    assert version_of(db, agent["id"]) == version
    assert (
        db.session.execute(
            db.select(AuditEvent).where(AuditEvent.event_type == "permission.granted")
        ).first()
        is None
    )


@pytest.mark.parametrize(
    "conditions",
    [
        {"time_window": "22:00-06:00", "timezone": "Europe/Paris"},
        {"time_window": "00:00-24:00"},
        {"max_rows": 0},
        {"requires_approval": True, "max_rows": 5},
        {},
    ],
)
def test_valid_conditions_are_stored_as_given(client, admin, db, conditions):
    agent = make_agent(client, admin)
    perm = grant(client, admin, agent["id"], resource="*", action="*", conditions=conditions)
    assert perm["conditions"] == conditions
    assert permissions_of(db, agent["id"])[0].conditions == conditions


def test_expires_at_in_the_future_is_kept(client, admin, db):
    agent = make_agent(client, admin)
    when = (clock.now() + timedelta(days=1)).isoformat()
    perm = grant(client, admin, agent["id"], resource="database:*", expires_at=when)
    assert perm["expires_at"].endswith("Z")
    assert permissions_of(db, agent["id"])[0].expires_at is not None


def test_unknown_other_tenant_and_non_agent_ids_are_404(client, admin, auth, db):
    agent = make_agent(client, admin)
    sa = client.post(
        "/nhi/service-accounts",
        json={"name": "ci", "owner_id": OWNER, "nhi_type": "service_account"},
        headers=admin,
    ).get_json()
    stranger = auth("admin", tid=uuid.uuid4())
    for agent_id, headers in (
        (str(uuid.uuid4()), admin),
        (sa["id"], admin),
        (agent["id"], stranger),
    ):
        url = f"/nhi/agents/{agent_id}/permissions"
        assert_problem(client.post(url, json=GUIDE_PERMISSION, headers=headers), 404)
        assert_problem(client.get(url, headers=headers), 404)
    perm = grant(client, admin, agent["id"], resource="database:x")
    other = make_agent(client, admin)
    # a permission id under another agent is not found
    assert_problem(
        client.delete(f"/nhi/agents/{other['id']}/permissions/{perm['id']}", headers=admin), 404
    )
    assert_problem(
        client.delete(f"/nhi/agents/{agent['id']}/permissions/{perm['id']}", headers=stranger), 404
    )
    assert len(permissions_of(db, agent["id"])) == 1


def test_roles(client, admin, auth):
    agent = make_agent(client, admin)
    other = make_agent(client, admin)
    reviewer = auth("reviewer")
    url = f"/nhi/agents/{agent['id']}/permissions"
    assert client.get(url, headers=reviewer).status_code == 200
    assert_problem(client.post(url, json=GUIDE_PERMISSION, headers=reviewer), 403)
    own = auth("agent", sub=agent["id"])
    assert client.get(url, headers=own).status_code == 200
    assert_problem(client.post(url, json=GUIDE_PERMISSION, headers=own), 403)
    assert_problem(client.get(f"/nhi/agents/{other['id']}/permissions", headers=own), 403)
