"""Local users, sign-in, the CLI, and the hash-chained audit log."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from nhi.models import AuditEvent, User
from tests.conftest import assert_problem, tamper

SA = {"name": "svc", "owner_id": str(uuid.uuid4())}


def test_cli_creates_users_who_can_sign_in(app, client, tenant, db):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Ada@Example.com",
            "--password",
            "correct horse",
            "--role",
            "reviewer",
            "--tenant",
            str(tenant),
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(db.select(User)).scalar_one()
    assert user.email == "ada@example.com" and user.roles == ["reviewer"]
    assert user.password_hash.startswith("$argon2")

    resp = client.post(
        "/nhi/auth/login", json={"email": "ada@example.com", "password": "correct horse"}
    )
    assert resp.status_code == 200
    token = resp.get_json()["access_token"]
    assert resp.get_json()["expires_in"] == 3600
    who = client.get("/nhi/whoami", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert who == {"sub": str(user.id), "tid": str(tenant), "roles": ["reviewer"]}

    for body in (
        {"email": "ada@example.com", "password": "wrong"},
        {"email": "nobody@example.com", "password": "correct horse"},
    ):
        assert_problem(client.post("/nhi/auth/login", json=body), 401)
    assert_problem(client.post("/nhi/auth/login", json={"email": "a@b.c"}), 422, field="password")

    dup = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--password",
            "whatever1",
            "--role",
            "admin",
            "--tenant",
            str(tenant),
        ]
    )
    assert dup.exit_code != 0 and "already exists" in dup.output
    bad = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "b@example.com",
            "--password",
            "whatever1",
            "--role",
            "god",
            "--tenant",
            str(tenant),
        ]
    )
    assert bad.exit_code != 0


def test_cli_issues_tokens(app, client, tenant):
    sub = uuid.uuid4()
    result = app.test_cli_runner().invoke(
        args=["tokens", "issue", "--sub", str(sub), "--tenant", str(tenant), "--role", "admin"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    who = client.get("/nhi/whoami", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert who["sub"] == str(sub) and who["roles"] == ["admin"]


def _make_history(client, admin) -> str:
    sa_id = client.post("/nhi/service-accounts", json=SA, headers=admin).get_json()["id"]
    client.post(f"/nhi/service-accounts/{sa_id}/suspend", json={"reason": "r1"}, headers=admin)
    client.post(f"/nhi/service-accounts/{sa_id}/reactivate", json={"reason": "r2"}, headers=admin)
    return sa_id


def test_audit_list_filters_and_shape(client, admin, auth):
    sa_id = _make_history(client, admin)
    body = client.get("/nhi/audit", headers=admin).get_json()
    assert body["total"] == 3
    first = body["items"][0]
    for key in (
        "id",
        "occurred_at",
        "event_type",
        "actor_id",
        "actor_type",
        "nhi_id",
        "resource",
        "action",
        "decision",
        "reason",
        "decision_id",
        "approval_id",
        "details",
    ):
        assert key in first
    assert first["event_type"] == "nhi.reactivated" and first["reason"] == "r2"
    assert first["actor_type"] == "human" and first["nhi_id"] == sa_id
    only = client.get("/nhi/audit?event_type=nhi.suspended", headers=admin).get_json()
    assert [i["reason"] for i in only["items"]] == ["r1"]
    since = body["items"][1]["occurred_at"]
    newer = client.get(f"/nhi/audit?since={since}", headers=admin).get_json()
    assert [i["event_type"] for i in newer["items"]] == ["nhi.reactivated", "nhi.suspended"]
    older = client.get(f"/nhi/audit?until={since}", headers=admin).get_json()
    assert [i["event_type"] for i in older["items"]] == ["nhi.created"]
    # readable by any human of the tenant, not by other tenants
    assert client.get("/nhi/audit", headers=auth("viewer")).get_json()["total"] == 3
    assert (
        client.get("/nhi/audit", headers=auth("admin", tid=uuid.uuid4())).get_json()["total"] == 0
    )
    assert_problem(client.get("/nhi/audit?since=yesterday", headers=admin), 422, field="since")
    assert_problem(client.get(f"/nhi/audit?since={since}&until={since}", headers=admin), 422)


def test_audit_chain_verifies_and_detects_tampering(client, admin, db):
    _make_history(client, admin)
    report = client.get("/nhi/audit/verify", headers=admin).get_json()
    assert report["intact"] is True and report["checked"] == 3 and report["sealed_now"] == 3
    # more events after sealing are chained on the next verify
    sa2 = client.post("/nhi/service-accounts", json={**SA, "name": "svc2"}, headers=admin)
    assert sa2.status_code == 201
    report = client.get("/nhi/audit/verify", headers=admin).get_json()
    assert report == {
        "intact": True,
        "checked": 4,
        "sealed_now": 1,
        "first_broken_index": None,
        "first_broken_event_id": None,
        "problem": None,
    }

    # alter one sealed row behind the API's back
    victim = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.chain_index == 2)
    ).scalar_one()
    tamper(
        db,
        sa.update(AuditEvent).where(AuditEvent.seq == victim.seq).values(reason="nothing to see"),
    )
    report = client.get("/nhi/audit/verify", headers=admin).get_json()
    assert report["intact"] is False and report["first_broken_index"] == 2
    assert report["first_broken_event_id"] == str(victim.id)


def test_audit_chain_detects_removed_rows(client, admin, db):
    _make_history(client, admin)
    assert client.get("/nhi/audit/verify", headers=admin).get_json()["intact"] is True
    tamper(db, sa.delete(AuditEvent).where(AuditEvent.chain_index == 3))
    report = client.get("/nhi/audit/verify", headers=admin).get_json()
    assert report["intact"] is False
    tamper(db, sa.delete(AuditEvent).where(AuditEvent.chain_index == 1))
    report = client.get("/nhi/audit/verify", headers=admin).get_json()
    assert report["intact"] is False and report["first_broken_index"] == 1


def test_demo_command_is_idempotent_and_signs_in(app, client, db):
    from nhi.models import Identity
    from nhi.services.demo import DEMO_TENANT

    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "reviewer@demo.nhi / demo-reviewer-pass" in first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "created" not in second.output
    rows = db.session.execute(db.select(Identity)).scalars().all()
    assert len(rows) == 5 and {r.tenant_id for r in rows} == {DEMO_TENANT}
    from nhi.models.approvals import Approval

    pending = db.session.execute(db.select(Approval)).scalars().all()
    assert len(pending) == 3 and {a.status for a in pending} == {"pending"}
    resp = client.post(
        "/nhi/auth/login", json={"email": "admin@demo.nhi", "password": "demo-admin-pass"}
    )
    assert resp.status_code == 200


def test_postgres_refuses_changes_to_the_audit_log(client, admin, db):
    import pytest
    from sqlalchemy.exc import DBAPIError

    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    _make_history(client, admin)
    client.get("/nhi/audit/verify", headers=admin)
    for stmt in (sa.update(AuditEvent).values(reason="rewritten"), sa.delete(AuditEvent)):
        with pytest.raises(DBAPIError, match=r"append-only|immutable"):
            db.session.execute(stmt)
            db.session.flush()
        db.session.rollback()
    assert client.get("/nhi/audit/verify", headers=admin).get_json()["intact"] is True
