"""Relay the outbox right after a commit that wrote events to it.

A SQLAlchemy ``after_flush`` listener notices outbox rows, ``after_commit`` turns that into "events
were committed" on the session, and the end of the request (or of the job) kicks the relay: an RQ
job with Redis, the relay itself inline without. A failed kick (Redis down) only logs: the events
are safe in the outbox and the periodic relay moves them once Redis is back.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response
from sqlalchemy.orm import Session

from nhi.extensions import db
from nhi.models.outbox import OutboxEvent

log = logging.getLogger(__name__)

_DIRTY = "nhi_outbox_flushed"
_COMMITTED = "nhi_outbox_committed"
_installed = False


def _after_flush(session: Session, _ctx: Any) -> None:
    if any(isinstance(obj, OutboxEvent) for obj in session.new):
        session.info[_DIRTY] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_DIRTY, False):
        session.info[_COMMITTED] = True


def _after_rollback(session: Session) -> None:
    session.info.pop(_DIRTY, None)


def install_listeners() -> None:
    global _installed
    if _installed:
        return
    sa.event.listen(Session, "after_flush", _after_flush)
    sa.event.listen(Session, "after_commit", _after_commit)
    # Only a rollback of the outer transaction discards flushed outbox rows; a savepoint rolled
    # back (a lost insert race) leaves the rows flushed before it in place.
    sa.event.listen(
        Session,
        "after_soft_rollback",
        lambda s, previous: None if previous.nested else _after_rollback(s),
    )
    _installed = True


def kick_if_committed() -> None:
    """Relay now if the current session committed outbox events (needs an app context)."""
    if not db.session.info.pop(_COMMITTED, False):
        return
    from nhi import jobs, tasks

    try:
        jobs.enqueue(tasks.relay_outbox)
    except Exception as exc:  # Redis down or a receiver failing inline: events stay queued
        log.warning("outbox relay deferred to the periodic pass: %s", exc)
        db.session.rollback()


def init_app(app: Flask) -> None:
    install_listeners()

    @app.after_request
    def _relay_after_request(response: Response) -> Response:
        kick_if_committed()
        return response
