"""RQ worker entry point: ``python worker.py [--burst] [--queues a,b]`` (needs NHI_REDIS_URL).

One process runs an RQ worker (JSON serializer, never pickle) on the named queues with RQ's
scheduler (delayed jobs such as webhook retries) and, in a thread, the periodic jobs registered in
``nhi.periodic``. SIGTERM/SIGINT: warm shutdown (the current job finishes, then the process exits).
Jobs get the app context from ``nhi.jobs.job``. With ``--burst`` the worker runs one periodic tick,
works until the queues are empty, and exits.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading

from flask import Flask
from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer

from nhi import create_app, jobs, periodic

log = logging.getLogger("nhi.worker")


class NhiWorker(Worker):
    """RQ's forking worker, with a bounded wait for its pub/sub thread at shutdown: redis-py 8's
    ``PubSubWorkerThread.stop()`` joins the thread, which may sit in a 60 s read, so RQ 3.0's
    teardown could hang for a minute after a burst or a SIGTERM."""

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            self.pubsub_thread.stop(timeout=1)


def _periodic_loop(url: str, stop: threading.Event) -> None:
    """Enqueue due periodic jobs every second, on a Redis client of this thread's own."""
    conn = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    while not stop.is_set():
        try:
            periodic.tick(conn)
        except Exception as exc:  # Redis away: try again next second
            log.warning("periodic tick failed: %s", exc)
        stop.wait(1.0)


def _warm_up(app: Flask) -> None:
    """Do once in the parent what every forked work horse would otherwise redo per job: configure
    the ORM mappers and compile the delivery path's SQL (cached on the engine). The connections
    used for that are closed again, so no horse inherits a socket."""
    from sqlalchemy.orm import configure_mappers

    from nhi.extensions import db
    from nhi.services import deliveries

    configure_mappers()
    with app.app_context():
        try:
            deliveries.warm_up()
        except Exception as exc:  # no schema yet, database down: the jobs will say so
            log.warning("warm-up skipped: %s", exc)
        finally:
            db.session.remove()
            db.engine.dispose()
    # Objects made so far live as long as the worker: keep the collector from touching (and so
    # copying) their pages in every forked horse.
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--queues", default=",".join(jobs.QUEUES), help="comma-separated")
    args = parser.parse_args(argv)

    app = create_app()
    jobs.bind_app(app)
    url = app.config.get("REDIS_URL")
    if not url:
        print(
            "NHI_REDIS_URL is not set: jobs run inline in the server; "
            "run `flask --app app jobs run-periodic` from cron for the periodic jobs.",
            file=sys.stderr,
        )
        return 2
    # The worker blocks in BLPOP for minutes: its connection must not have the short socket
    # timeout of the app's client.
    conn = Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    _warm_up(app)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    worker = NhiWorker(queues, connection=conn, serializer=JSONSerializer)
    stop = threading.Event()
    ticker = None
    if args.burst:
        periodic.tick(conn)
    else:
        ticker = threading.Thread(target=_periodic_loop, args=(url, stop), daemon=True)
        ticker.start()
    try:
        worker.work(burst=args.burst, with_scheduler=True)
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
