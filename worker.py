"""RQ worker entry point: ``python worker.py`` (needs NHI_REDIS_URL)."""

from __future__ import annotations

import sys

from rq import Worker
from rq.serializers import JSONSerializer

from nhi import create_app
from nhi.jobs import redis_connection

QUEUES = ["default"]


def main() -> int:
    app = create_app()
    with app.app_context():
        conn = redis_connection()
        if conn is None:
            print("NHI_REDIS_URL is not set: jobs run inline in the server.", file=sys.stderr)
            return 2
        worker = Worker(QUEUES, connection=conn, serializer=JSONSerializer)
        worker.work(with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
