"""Webhook delivery through a real Redis and real RQ workers, verified by a local receiver with the
``standardwebhooks`` package: delivery, retry schedule, 410, rotation, Redis outage, killed worker,
periodic registration and graceful shutdown."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from nhi import jobs, periodic
from nhi.extensions import db
from nhi.models import AuditEvent, OutboxEvent, WebhookDelivery, WebhookSubscription
from nhi.services import deliveries, relay
from tests.conftest import REQUIRE_SERVICES
from tests.jobs.conftest import (
    free_port,
    kill_worker,
    make_job_app,
    run_burst_worker,
    start_worker,
    work_until,
    worker_env,
)
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.redis
SA = {"name": "etl-bot", "owner_id": str(uuid.uuid4())}


def _subscribe(client: Any, admin: dict[str, str], url: str, events: list[str] | None = None):
    resp = client.post("/nhi/webhooks", headers=admin, json={"url": url, "events": events or ["*"]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _deliveries(app: Flask) -> list[WebhookDelivery]:
    with app.app_context():
        rows = db.session.execute(
            db.select(WebhookDelivery).order_by(WebhookDelivery.created_at)
        ).scalars()
        out = list(rows)
        db.session.expunge_all()
        return out


def test_a_worker_process_delivers_signed_events(rq_app, admin, database_uri, redis_url):
    client = rq_app.test_client()
    with Receiver() as r:
        sub = _subscribe(client, admin, r.url)
        r.secrets = [sub["secret"]]
        created = client.post("/nhi/service-accounts", headers=admin, json=SA).get_json()
        client.post(
            f"/nhi/service-accounts/{created['id']}/suspend", headers=admin, json={"reason": "x"}
        )
        assert r.requests == []  # queued in Redis, not run in the request
        conn = Redis.from_url(redis_url)
        assert Queue("default", connection=conn, serializer=JSONSerializer).count >= 1
        log = run_burst_worker(worker_env(database_uri, redis_url))
        try:
            got = r.wait_for(2, timeout=5)
        except AssertionError as exc:
            raise AssertionError(log) from exc
        assert [g.json["type"] for g in got] == ["nhi.created", "nhi.suspended"]
        assert all(g.verified_by == [sub["secret"]] for g in got)
        assert len({g.webhook_id for g in got}) == 2
    rows = _deliveries(rq_app)
    assert [d.status for d in rows] == ["succeeded", "succeeded"]
    assert all(d.attempts == 1 for d in rows)


def test_retry_schedule_is_exponential_with_jitter_and_honours_retry_after(
    app, admin, database_uri, redis_url
):
    scale = 0.005  # 10 s, 40 s, 160 s ... become 50 ms, 200 ms, 800 ms
    rq_app = make_job_app(database_uri, redis_url, WEBHOOK_RETRY_SCALE=scale)
    jobs.bind_app(rq_app)
    try:
        client = rq_app.test_client()
        with Receiver() as r:
            sub = _subscribe(client, admin, r.url)
            r.secrets = [sub["secret"]]
            r.plan.extend([Reply(500), Reply(500), Reply(503, {"Retry-After": "400"}), Reply(200)])
            client.post("/nhi/service-accounts", headers=admin, json=SA)
            work_until(rq_app, lambda: len(r.requests) >= 4)
            got = r.wait_for(4)
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        assert 10 * 0.8 * scale <= gaps[0] < 10 * 1.2 * scale + 1.0
        assert 40 * 0.8 * scale <= gaps[1] < 40 * 1.2 * scale + 1.0
        assert gaps[2] >= 400 * scale  # Retry-After (2 s scaled) beats the 0.8 s backoff
        assert len({g.webhook_id for g in got}) == 1
        assert all(g.verified_by == [sub["secret"]] for g in got)
        (row,) = _deliveries(rq_app)
        assert row.status == "succeeded" and row.attempts == 4
        assert [a["status_code"] for a in row.attempt_log] == [500, 500, 503, 200]
    finally:
        jobs.bind_app(None)


def test_410_disables_the_subscription(rq_app, admin):
    client = rq_app.test_client()
    with Receiver() as r:
        sub = _subscribe(client, admin, r.url)
        r.default = Reply(410)
        client.post("/nhi/service-accounts", headers=admin, json=SA)
        work_until(rq_app, lambda: len(r.requests) >= 1)
    with rq_app.app_context():
        row = db.session.get(WebhookSubscription, uuid.UUID(sub["id"]))
        assert row is not None and row.active is False and "410" in (row.disabled_reason or "")
        assert (
            db.session.execute(
                db.select(AuditEvent).where(AuditEvent.event_type == "webhook.disabled")
            )
            .scalar_one()
            .actor_type
            == "system"
        )
    (delivery,) = _deliveries(rq_app)
    assert delivery.status == "failed" and delivery.attempts == 1


def test_rotation_signs_with_both_secrets(rq_app, admin):
    client = rq_app.test_client()
    with Receiver() as r:
        sub = _subscribe(client, admin, r.url, ["nhi.created"])
        new = client.post(f"/nhi/webhooks/{sub['id']}/rotate-secret", headers=admin).get_json()
        r.secrets = [sub["secret"], new["secret"]]
        client.post("/nhi/service-accounts", headers=admin, json=SA)
        work_until(rq_app, lambda: len(r.requests) >= 1)
        (got,) = r.wait_for(1)
    assert got.verified_by == [sub["secret"], new["secret"]]


def test_redis_down_during_a_mutation_loses_nothing(app, admin, database_uri, tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is needed for the outage test")
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--dir", str(tmp_path)]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                if Redis.from_url(url, socket_connect_timeout=0.2).ping():
                    return proc
            except Exception:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    redis_proc = start()
    own_app = make_job_app(database_uri, url)
    client = own_app.test_client()
    try:
        with Receiver() as r:
            sub = _subscribe(client, admin, r.url)
            r.secrets = [sub["secret"]]
            redis_proc.terminate()
            redis_proc.wait(10)

            started = time.monotonic()
            created = client.post("/nhi/service-accounts", headers=admin, json=SA)
            assert created.status_code == 201
            sid = created.get_json()["id"]
            suspended = client.post(
                f"/nhi/service-accounts/{sid}/suspend", headers=admin, json={"reason": "x"}
            )
            assert suspended.status_code == 200
            assert time.monotonic() - started < 10  # the API kept serving
            with own_app.app_context():
                waiting = db.session.execute(
                    db.select(OutboxEvent).where(OutboxEvent.relayed_at.is_(None))
                ).scalars()
                assert sorted(e.event_type for e in waiting) == ["nhi.created", "nhi.suspended"]

            redis_proc = start()  # Redis is back (empty: it kept nothing)
            run_burst_worker(worker_env(database_uri, url))  # its periodic tick relays
            got = r.wait_for(2)
            assert sorted(g.json["type"] for g in got) == ["nhi.created", "nhi.suspended"]
            assert all(g.verified_by == [sub["secret"]] for g in got)
            time.sleep(0.2)
            assert len(r.requests) == 2  # and nothing twice
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        with own_app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_worker_killed_mid_delivery_is_retried(rq_app, admin, database_uri, redis_url):
    client = rq_app.test_client()
    env = worker_env(database_uri, redis_url)
    with Receiver() as r:
        sub = _subscribe(client, admin, r.url)
        r.secrets = [sub["secret"]]
        r.plan.append(Reply(200, hang=30))  # the first attempt hangs until the worker is killed
        client.post("/nhi/service-accounts", headers=admin, json=SA)
        proc = start_worker(env, "--burst")
        try:
            r.wait_for(1, timeout=30)
        finally:
            kill_worker(proc)  # SIGKILL to the worker and its work horse
        (row,) = _deliveries(rq_app)
        assert row.status == "sending"  # claimed by the dead worker
        with rq_app.app_context():
            lease = deliveries.lease_seconds()
        time.sleep(lease + 0.2)
        with rq_app.app_context():
            assert relay.sweep() == 1  # the lapsed claim is dispatched again
        run_burst_worker(env)
        got = r.wait_for(2)
        assert got[0].webhook_id == got[1].webhook_id
        assert all(g.verified_by == [sub["secret"]] for g in got)
    (row,) = _deliveries(rq_app)
    assert row.status == "succeeded" and row.attempts == 2


def test_worker_registers_periodic_jobs_and_stops_on_sigterm(rq_app, database_uri, redis_url):
    conn = Redis.from_url(redis_url)
    proc = start_worker(worker_env(database_uri, redis_url))
    try:
        deadline = time.monotonic() + 20
        keys = [f"nhi:periodic:{p.name}" for p in periodic.PERIODIC]
        while conn.exists(*keys) < len(keys):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the periodic jobs were not registered"
            time.sleep(0.1)
        for p in periodic.PERIODIC:
            ttl = conn.ttl(f"nhi:periodic:{p.name}")
            assert 0 < ttl <= p.interval
        # Signal only once RQ has installed its SIGTERM handler (it does so before idling).
        from rq import Worker

        while not any(w.get_state() == "idle" for w in Worker.all(connection=conn)):
            assert proc.poll() is None, "the worker exited during start-up"
            assert time.monotonic() < deadline + 20, "the worker never became idle"
            time.sleep(0.1)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with rq_app.app_context():
        assert periodic.tick(conn) == []  # each job once per interval, across workers


def test_inline_mode_runs_the_same_jobs_without_redis(app, admin):
    assert app.config["REDIS_URL"] is None
    with app.app_context():
        assert jobs.redis_connection() is None
        assert jobs.enqueue_at(deliveries.clock.now(), lambda: None) is False
        assert periodic.run_all()["relay_outbox"] == 0


def test_an_unreachable_receiver_does_not_hold_up_the_rest_of_its_chunk(rq_app, admin):
    client = rq_app.test_client()
    with Receiver() as r:
        _subscribe(client, admin, r.url)
        r.plan.append(Reply(200, hang=10))  # the first attempt times out (read timeout 2 s)
        for n in range(3):
            client.post("/nhi/service-accounts", headers=admin, json={**SA, "name": f"n{n}"})
        started = time.monotonic()
        work_until(rq_app, lambda: len(r.requests) >= 3, timeout=30)
        assert time.monotonic() - started < 10
    rows = _deliveries(rq_app)
    assert sorted(d.status for d in rows) == ["pending", "succeeded", "succeeded"]
    (stuck,) = [d for d in rows if d.status == "pending"]
    assert stuck.last_error == "timed out" and stuck.next_attempt_at is not None
