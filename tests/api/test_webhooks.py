"""Webhook subscriptions API and delivery in the embedded default (no Redis: jobs run inline)."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import pytest

from nhi import clock
from nhi.models import AuditEvent, OutboxEvent, WebhookDelivery, WebhookSubscription
from tests.conftest import assert_problem
from tests.receiver import Receiver, Reply

SA = {"name": "ci-bot", "owner_id": str(uuid.uuid4())}


@pytest.fixture
def local_ok(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers of these tests listen on 127.0.0.1."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "WEBHOOK_READ_TIMEOUT", 1)
    monkeypatch.setitem(app.config, "WEBHOOK_CONNECT_TIMEOUT", 1)


@pytest.fixture
def receiver() -> Any:
    with Receiver() as r:
        yield r


def _subscribe(client: Any, admin: dict[str, str], url: str, events: list[str] | None = None):
    resp = client.post("/nhi/webhooks", headers=admin, json={"url": url, "events": events or ["*"]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_create_shows_the_secret_once_and_stores_it_encrypted(client, admin, db, tenant):
    resp = client.post(
        "/nhi/webhooks",
        headers=admin,
        json={
            "url": "https://hooks.example.com/nhi",
            "events": ["nhi.created"],
            "description": "x",
        },
    )
    assert resp.status_code == 201
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/nhi/webhooks/{body['id']}")
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert body["events"] == ["nhi.created"] and body["active"] is True
    assert body["tenant_id"] == str(tenant)

    for resp in (
        client.get(f"/nhi/webhooks/{body['id']}", headers=admin),
        client.get("/nhi/webhooks", headers=admin),
        client.patch(f"/nhi/webhooks/{body['id']}", headers=admin, json={"description": "y"}),
    ):
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        assert 'secret"' not in text and secret.removeprefix("whsec_")[:16] not in text
    row = db.session.get(WebhookSubscription, uuid.UUID(body["id"]))
    assert secret not in row.secret_encrypted and secret.removeprefix("whsec_") not in str(
        row.secret_encrypted
    )
    # no event is sent on creation
    assert db.session.execute(db.select(WebhookDelivery)).first() is None
    kinds = [e.event_type for e in db.session.execute(db.select(AuditEvent)).scalars()]
    assert "webhook.created" in kinds and "webhook.updated" in kinds


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "https://", "events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:8080/x", "events": ["*"]}, "url"),
        ({"url": "http://localhost/x", "events": ["*"]}, "url"),
        ({"url": "http://10.1.2.3/x", "events": ["*"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]}, "url"),
        ({"url": "http://[::1]/x", "events": ["*"]}, "url"),
        ({"url": "http://0x7f000001/x", "events": ["*"]}, "url"),
        ({"url": "http://192.168.0.10/x", "events": ["*"]}, "url"),
        ({"url": "https://" + "a" * 2000 + ".com", "events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["nhi.exploded"]}, "events"),
        ({"url": "https://example.com/x", "events": ["*", "nhi.created"]}, "events"),
        ({"url": "https://example.com/x"}, "events"),
        ({"events": ["*"]}, "url"),
        (
            {"url": "https://example.com/x", "events": ["*"], "description": "d" * 501},
            "description",
        ),
        ({"url": "https://example.com/x", "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_subscriptions_are_422_with_the_field(client, admin, db, body, field):
    assert_problem(client.post("/nhi/webhooks", headers=admin, json=body), 422, field=field)
    assert db.session.execute(db.select(WebhookSubscription)).first() is None


def test_every_bad_field_is_reported_at_once(client, admin):
    body = {"url": "gopher://x", "events": ["nope"], "description": "d" * 600}
    errors = assert_problem(client.post("/nhi/webhooks", headers=admin, json=body), 422)["errors"]
    assert "description" in errors  # schema errors come first
    body.pop("description")
    errors = assert_problem(client.post("/nhi/webhooks", headers=admin, json=body), 422)["errors"]
    assert set(errors) == {"url", "events"}


def test_patch_validates_and_toggles_active(client, admin, db):
    sub = _subscribe(client, admin, "https://hooks.example.com/a")
    url = f"/nhi/webhooks/{sub['id']}"
    assert_problem(
        client.patch(url, headers=admin, json={"url": "http://127.0.0.1/"}), 422, field="url"
    )
    assert_problem(client.patch(url, headers=admin, json={"events": []}), 422, field="events")
    assert_problem(client.patch(url, headers=admin, json={"tenant_id": str(uuid.uuid4())}), 422)
    resp = client.patch(url, headers=admin, json={"active": False, "events": ["nhi.deleted"]})
    assert resp.status_code == 200
    assert resp.get_json()["active"] is False and resp.get_json()["disabled_reason"]
    resp = client.patch(url, headers=admin, json={"active": True})
    assert resp.get_json()["active"] is True and resp.get_json()["disabled_reason"] is None
    assert resp.get_json()["events"] == ["nhi.deleted"]


def test_admin_only_and_tenant_isolation(client, admin, auth):
    sub = _subscribe(client, admin, "https://hooks.example.com/a")
    for role in ("reviewer", "viewer"):
        headers = auth(role)
        assert_problem(client.get("/nhi/webhooks", headers=headers), 403)
        assert_problem(client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=headers), 403)
        assert_problem(
            client.post(
                "/nhi/webhooks", headers=headers, json={"url": "https://e.com", "events": ["*"]}
            ),
            403,
        )
    other = auth("admin", tid=uuid.uuid4())
    for method, suffix in (
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/test"),
        ("post", "/rotate-secret"),
        ("get", "/deliveries"),
    ):
        resp = client.open(
            f"/nhi/webhooks/{sub['id']}{suffix}", method=method, headers=other, json={}
        )
        assert_problem(resp, 404)
    assert client.get("/nhi/webhooks", headers=other).get_json()["total"] == 0


def test_delete_removes_subscription_and_log(client, admin, db):
    sub = _subscribe(client, admin, "https://hooks.example.com/a")
    assert client.delete(f"/nhi/webhooks/{sub['id']}", headers=admin).status_code == 204
    assert_problem(client.get(f"/nhi/webhooks/{sub['id']}", headers=admin), 404)
    assert db.session.execute(db.select(WebhookSubscription)).first() is None


def test_inline_mode_delivers_signed_events_after_commit(
    client, admin, db, tenant, local_ok, receiver
):
    sub = _subscribe(client, admin, receiver.url, ["nhi.created", "nhi.suspended"])
    receiver.secrets = [sub["secret"]]
    created = client.post("/nhi/service-accounts", headers=admin, json=SA).get_json()
    client.post(
        f"/nhi/service-accounts/{created['id']}/suspend", headers=admin, json={"reason": "r"}
    )
    client.post(
        f"/nhi/service-accounts/{created['id']}/reactivate", headers=admin, json={"reason": "r"}
    )
    got = receiver.wait_for(2)
    assert len(got) == 2  # nhi.reactivated is not subscribed
    first = got[0]
    assert first.verified_by == [sub["secret"]]
    assert set(first.json) == {"id", "type", "timestamp", "tenant_id", "data"}
    assert first.json["type"] == "nhi.created" and first.json["tenant_id"] == str(tenant)
    assert first.json["data"]["id"] == created["id"] and first.json["timestamp"].endswith("Z")
    assert first.webhook_id == first.json["id"]
    assert got[1].json["type"] == "nhi.suspended" and got[1].json["data"]["reason"] == "r"
    assert (
        db.session.execute(db.select(OutboxEvent).where(OutboxEvent.relayed_at.is_(None))).first()
        is None
    )
    log = client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=admin).get_json()
    assert log["total"] == 2
    item = log["items"][0]
    assert item["status"] == "succeeded" and item["attempts"] == 1
    assert item["last_status_code"] == 200 and item["next_retry_at"] is None
    assert item["attempt_log"][0]["status_code"] == 200


def test_test_event_and_secret_rotation(client, admin, db, local_ok, receiver):
    sub = _subscribe(client, admin, receiver.url, ["nhi.created"])
    old = sub["secret"]
    receiver.secrets = [old]
    resp = client.post(f"/nhi/webhooks/{sub['id']}/test", headers=admin)
    assert resp.status_code == 202
    assert resp.get_json()["status"] == "succeeded"
    rotated = client.post(f"/nhi/webhooks/{sub['id']}/rotate-secret", headers=admin).get_json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_") and rotated["previous_secret_expires_at"]
    receiver.secrets = [old, new]
    client.post("/nhi/webhooks/" + sub["id"] + "/test", headers=admin)
    got = receiver.wait_for(2)
    assert got[0].json["type"] == "webhook.test" and got[0].verified_by == [old]
    assert got[1].verified_by == [old, new]  # both signatures verify during the overlap
    assert len(got[1].headers["webhook-signature"].split(" ")) == 2
    clock.advance(timedelta(hours=24, minutes=1))
    client.post("/nhi/webhooks/" + sub["id"] + "/test", headers=admin)
    assert receiver.wait_for(3)[2].verified_by == [new]


def test_failed_delivery_retries_then_manual_retry_keeps_the_webhook_id(
    client, admin, db, local_ok, receiver
):
    sub = _subscribe(client, admin, receiver.url)
    receiver.plan.extend([Reply(500), Reply(503, {"Retry-After": "120"})])
    client.post("/nhi/service-accounts", headers=admin, json=SA)
    receiver.wait_for(1)
    item = client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=admin).get_json()["items"][0]
    assert item["status"] == "pending" and item["last_status_code"] == 500
    assert item["next_retry_at"] is not None
    # not yet due: the periodic pass leaves it alone
    app_runner = client.application.test_cli_runner()
    assert app_runner.invoke(args=["jobs", "run-periodic"]).exit_code == 0
    assert len(receiver.requests) == 1
    clock.advance(timedelta(seconds=13))  # 10 s backoff +-20 %
    result = app_runner.invoke(args=["jobs", "run-periodic"])
    assert "sweep_deliveries: 1" in result.output, result.output
    receiver.wait_for(2)
    item = client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=admin).get_json()["items"][0]
    assert item["last_status_code"] == 503 and item["attempts"] == 2
    # Retry-After: 120 is honoured (more than the 40 s backoff of the second attempt)
    row = db.session.get(WebhookDelivery, uuid.UUID(item["id"]))
    assert (row.next_attempt_at - row.last_attempt_at).total_seconds() >= 119
    resp = client.post(f"/nhi/webhooks/{sub['id']}/deliveries/{item['id']}/retry", headers=admin)
    assert resp.status_code == 202 and resp.get_json()["status"] == "succeeded"
    got = receiver.wait_for(3)
    assert len({r.webhook_id for r in got}) == 1
    assert_problem(
        client.post(f"/nhi/webhooks/{sub['id']}/deliveries/{uuid.uuid4()}/retry", headers=admin),
        404,
    )


def test_410_disables_the_subscription_with_an_audit_event(client, admin, db, local_ok, receiver):
    sub = _subscribe(client, admin, receiver.url)
    receiver.default = Reply(410)
    client.post("/nhi/service-accounts", headers=admin, json=SA)
    receiver.wait_for(1)
    body = client.get(f"/nhi/webhooks/{sub['id']}", headers=admin).get_json()
    assert body["active"] is False and "410" in body["disabled_reason"]
    audit = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.event_type == "webhook.disabled")
    ).scalar_one()
    assert "410" in audit.reason and audit.actor_type == "system"
    assert_problem(client.post(f"/nhi/webhooks/{sub['id']}/test", headers=admin), 409)
    # later events are not delivered to a disabled webhook
    client.post("/nhi/service-accounts", headers=admin, json={**SA, "name": "other"})
    assert len(receiver.requests) == 1


def test_persistent_failure_disables_after_the_last_attempt(
    app, client, admin, db, local_ok, receiver, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 3)
    sub = _subscribe(client, admin, receiver.url)
    receiver.default = Reply(500)
    client.post("/nhi/service-accounts", headers=admin, json=SA)
    runner = app.test_cli_runner()
    for n in (2, 3):
        clock.advance(timedelta(hours=7))
        runner.invoke(args=["jobs", "run-periodic"])
        receiver.wait_for(n)
    body = client.get(f"/nhi/webhooks/{sub['id']}", headers=admin).get_json()
    assert body["active"] is False and "failed 3 times" in body["disabled_reason"]
    item = client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=admin).get_json()["items"][0]
    assert item["status"] == "failed" and item["attempts"] == 3
    assert [a["status_code"] for a in item["attempt_log"]] == [500, 500, 500]
    assert (
        db.session.execute(db.select(AuditEvent).where(AuditEvent.event_type == "webhook.disabled"))
        .scalar_one()
        .reason.startswith("delivery ")
    )


def test_hostile_receivers_are_bounded(client, admin, db, local_ok):
    with Receiver() as target, Receiver() as r:
        sub = _subscribe(client, admin, r.url)
        r.plan.extend(
            [
                Reply(302, {"Location": target.url}),
                Reply(200, body=b"x" * 5_000_000),
                Reply(200, hang=5),
            ]
        )
        for _ in range(3):
            client.post(f"/nhi/webhooks/{sub['id']}/test", headers=admin)
        assert target.requests == []  # the redirect was not followed
        items = client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=admin).get_json()
        by_code = {i["attempt_log"][0]["status_code"]: i for i in items["items"]}
        assert by_code[302]["status"] == "pending" and "redirect" in by_code[302]["last_error"]
        assert by_code[200]["status"] == "succeeded"
        hung = by_code[None]
        assert hung["status"] == "pending" and hung["last_error"] == "timed out"
        assert hung["attempt_log"][0]["duration_ms"] < 3000


def test_private_targets_are_refused_at_connect_time(app, client, admin, db, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)
    sub = _subscribe(client, admin, receiver.url.replace("127.0.0.1", "localhost"))
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", False)
    client.post(f"/nhi/webhooks/{sub['id']}/test", headers=admin)
    item = client.get(f"/nhi/webhooks/{sub['id']}/deliveries", headers=admin).get_json()["items"][0]
    assert item["status"] == "pending" and "loopback" in item["last_error"]
    assert receiver.requests == []
