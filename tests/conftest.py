"""Shared fixtures: an app on SQLite (default) or PostgreSQL (NHI_TEST_DB=postgresql).

The schema is built once per session through the Alembic migrations (so they are tested too);
every test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from nhi import clock, create_app
from nhi.extensions import db as _db
from nhi.tokens import issue_token

JWT_SECRET = "test-secret-key-that-is-long-enough-0123456789"
PG_ADMIN_URL = os.environ.get("NHI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
BACKEND = os.environ.get("NHI_TEST_DB", "sqlite")
REQUIRE_SERVICES = os.environ.get("NHI_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _pg_available() -> bool:
    try:
        engine = sa.create_engine(f"{PG_ADMIN_URL}/postgres", connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "sqlite":
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "nhi.sqlite3")
        return
    if not _pg_available():
        if REQUIRE_SERVICES:
            pytest.fail("PostgreSQL is required (NHI_TEST_REQUIRE_SERVICES) but not reachable")
        pytest.skip("PostgreSQL not reachable")
    name = f"nhi_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_URL}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def base_config(database_uri: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "JWT_SECRET_KEY": JWT_SECRET,
        "REDIS_URL": None,
    }


@pytest.fixture(scope="session")
def app(database_uri: str) -> Iterator[Flask]:
    application = create_app(base_config(database_uri))
    with application.app_context():
        upgrade()
        _db.session.remove()
    yield application
    with application.app_context():
        _db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()
    if "app" in request.fixturenames:
        application: Flask = request.getfixturevalue("app")
        with application.app_context():
            _db.session.remove()
            tables = list(reversed(_db.metadata.sorted_tables))
            with _db.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # TRUNCATE: fast, and not blocked by the audit log's append-only trigger.
                    names = ", ".join(f'"{t.name}"' for t in tables)
                    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        conn.execute(table.delete())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An app context for reading stored state directly."""
    with app.app_context():
        yield
        _db.session.remove()


@pytest.fixture
def db(ctx: None) -> Any:
    return _db


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth(app: Flask, tenant: uuid.UUID) -> TokenFactory:
    """``auth("admin")`` → headers with a bearer token for a fresh human of ``tenant``."""

    def make(
        *roles: str,
        sub: uuid.UUID | str | None = None,
        tid: uuid.UUID | str | None = None,
        ttl: int = 600,
    ) -> dict[str, str]:
        with app.app_context():
            token, _ = issue_token(sub or uuid.uuid4(), tid or tenant, list(roles), ttl)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def admin(auth: TokenFactory) -> dict[str, str]:
    return auth("admin")


def tamper(db: Any, statement: Any) -> None:
    """Run ``statement`` as a DBA bypassing the audit log's append-only trigger would."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        db.session.execute(
            sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        )
    db.session.execute(statement)
    if postgres:
        db.session.execute(
            sa.text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        )
    db.session.commit()


def assert_problem(resp: Any, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with ``status`` (and an error for ``field``)."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json", resp.mimetype
    body = resp.get_json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["type"].startswith("https://")
    assert "Traceback" not in resp.get_data(as_text=True)
    if field is not None:
        assert field in body.get("errors", {}), body
    return body


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_server(
    database_uri: str,
    *,
    redis_url: str | None = None,
    threads: int = 1,
    log_path: Any = None,
) -> tuple[Any, str]:
    """``gunicorn app:app`` with two worker processes on the test database, healthy, and its
    URL. Another process may take the probed port before gunicorn binds it, so a start that
    dies is retried on a new port. The log goes to a file (or nowhere): a pipe nobody reads
    would fill up and stall the server."""
    import subprocess
    import sys
    import time
    import urllib.request

    env = {
        **os.environ,
        "NHI_SQLALCHEMY_DATABASE_URI": database_uri,
        "NHI_JWT_SECRET_KEY": JWT_SECRET,
        "NHI_LOG_LEVEL": "WARNING",
        "NHI_REDIS_URL": redis_url or "",
    }
    for _attempt in range(3):
        port = _free_port()
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-w",
                    "2",
                    "--threads",
                    str(threads),
                    "-b",
                    f"127.0.0.1:{port}",
                    "app:app",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        finally:
            if log_path:
                log.close()  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    return proc, url
            except OSError:
                time.sleep(0.1)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"gunicorn did not start (log: {log_path})")


def stop_server(proc: Any) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call on its own thread, all released at once by a barrier; results in order."""
    import threading

    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture(scope="session")
def live_server(
    app: Flask, database_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app served by gunicorn (2 processes, 4 threads each) on the test database."""
    log_path = tmp_path_factory.mktemp("live") / "gunicorn.log"
    proc, url = start_server(database_uri, threads=4, log_path=log_path)
    yield url
    stop_server(proc)
