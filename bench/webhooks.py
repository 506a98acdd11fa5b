"""Webhook deliveries per second per worker, as a ratio of RQ no-op jobs per second (goal >= 0.5).

Run by hand, not in CI (needs Redis; PostgreSQL optional):

    .venv/bin/python -m bench.webhooks                       # SQLite file, Redis db 8, 500 per run
    .venv/bin/python -m bench.webhooks --db postgresql://postgres@127.0.0.1/nhi_bench -n 1000

Every run uses one ``worker.py --burst`` process (the forking RQ worker nhi ships: one work horse
per job). The no-op run measures the queue's own cost per job; the delivery runs take the full path
of each message: relay, claim the row, decrypt the secret, sign, POST to a local receiver (in this
process, signatures not checked), record the outcome. The relay puts up to BATCH_SIZE deliveries to
one webhook in a job (the figure judged); a second run forces one job per delivery, the path of
retries and test events. Rates come from RQ's own started/ended timestamps (first job start to last
job end), so process start-up is not counted. The database is created by the script (SQLite) or
must exist and be migrated-or-empty (``--db``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from nhi.services.deliveries import BATCH_SIZE as BATCH

ROOT = Path(__file__).resolve().parents[1]
JWT = "bench-secret-key-bench-secret-key-0123456789"


def noop() -> None:
    """The baseline job: does nothing."""
    return None


def _env(db_uri: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHI_")}
    env.update(
        NHI_SQLALCHEMY_DATABASE_URI=db_uri,
        NHI_REDIS_URL=redis_url,
        NHI_JWT_SECRET_KEY=JWT,
        NHI_WEBHOOK_ALLOW_PRIVATE="1",
        NHI_LOG_LEVEL="WARNING",
    )
    return env


def _work(env: dict[str, str], queue: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "worker.py", "--burst", "--queues", queue],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def _rate(conn: Redis, job_ids: list[str], items: int | None = None) -> float:
    """``items`` (default: one per job) per second from first job start to last job end."""
    jobs = [j for j in Job.fetch_many(job_ids, connection=conn, serializer=JSONSerializer) if j]
    starts = [j.started_at for j in jobs if j.started_at]
    ends = [j.ended_at for j in jobs if j.ended_at]
    if len(ends) < len(job_ids):
        raise SystemExit(f"only {len(ends)} of {len(job_ids)} jobs finished")
    span = (max(ends) - min(starts)).total_seconds()
    return (items if items is not None else len(job_ids)) / span


def bench_noop(conn: Redis, env: dict[str, str], n: int) -> float:
    q = Queue("bench-noop", connection=conn, serializer=JSONSerializer)
    ids = [q.enqueue("bench.webhooks.noop", result_ttl=600).id for _ in range(n)]
    _work(env, "bench-noop")
    return _rate(conn, ids)


def bench_deliveries(
    conn: Redis, env: dict[str, str], db_uri: str, n: int, *, chunk: int | None = None
) -> tuple[float, int]:
    """Deliveries of ``n`` fresh events to one webhook; ``chunk=1`` forces one job per delivery
    (the path of retries, tests and manual retries) instead of the relay's chunks."""
    from nhi import create_app, jobs
    from nhi.extensions import db
    from nhi.models import WebhookDelivery
    from nhi.principal import Principal
    from nhi.services import deliveries, events, relay, webhooks
    from tests.receiver import Receiver

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": db_uri,
            "REDIS_URL": env["NHI_REDIS_URL"],
            "JWT_SECRET_KEY": JWT,
            "WEBHOOK_ALLOW_PRIVATE": True,
        }
    )
    jobs.bind_app(app)
    tenant = uuid.uuid4()
    with Receiver(verify=False) as receiver, app.app_context():
        webhooks.create_subscription(
            Principal(sub=str(uuid.uuid4()), tenant_id=tenant, roles=("admin",)),
            {"url": receiver.url, "events": ["*"]},
        )
        for i in range(n):
            events.emit(tenant, "nhi.created", {"id": uuid.uuid4(), "name": f"bench-{i}"})
        db.session.commit()
        if chunk is not None:
            relay.dispatch = lambda ids: deliveries.dispatch(ids, chunk=chunk)  # type: ignore
        relay.relay_outbox()  # n delivery rows, in jobs of BATCH_SIZE on the "webhooks" queue
        relay.dispatch = deliveries.dispatch
        q = Queue("webhooks", connection=conn, serializer=JSONSerializer)
        ids = list(q.job_ids)
        _work(env, "webhooks")
        receiver.wait_for(n, timeout=30)
        ok = db.session.execute(
            db.select(db.func.count()).where(
                WebhookDelivery.status == "succeeded", WebhookDelivery.tenant_id == tenant
            )
        ).scalar_one()
        return _rate(conn, ids, items=n), ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="jobs per run")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--db", default=None, help="database URI (default: a new SQLite file)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="nhi-bench-")
    db_uri = args.db or f"sqlite:///{tmp}/bench.sqlite3"
    env = _env(db_uri, args.redis)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    conn = Redis.from_url(args.redis)
    conn.flushdb()
    try:
        noop_rate = bench_noop(conn, env, args.n)
        delivery_rate, ok = bench_deliveries(conn, env, db_uri, args.n)
        single_rate, single_ok = bench_deliveries(conn, env, db_uri, args.n, chunk=1)
    finally:
        conn.flushdb()
    backend = db_uri.split(":", 1)[0]
    print(f"database: {backend}, jobs per run: {args.n}, one worker process")
    print(f"RQ no-op jobs:       {noop_rate:8.1f} /s")
    print(f"webhook deliveries:  {delivery_rate:8.1f} /s  ({ok} succeeded, signed, local receiver;")
    print(f"  relayed events, jobs of up to {BATCH} deliveries to one webhook)")
    print(
        f"  one job per delivery: {single_rate:6.1f} /s  ({single_ok} succeeded; "
        f"ratio {single_rate / noop_rate:.2f}; the path of retries and tests)"
    )
    ratio = delivery_rate / noop_rate
    verdict = "meets" if ratio >= 0.5 else "misses"
    print(f"ratio: {ratio:.2f} ({verdict} the goal >= 0.5)")


if __name__ == "__main__":
    main()
