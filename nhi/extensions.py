"""Unbound extension singletons, bound to the app in ``create_app``."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()


def _install_parser() -> None:
    # flask-smorest reads the parser from this class attribute; one hardened parser for every
    # blueprint, whichever module defines it.
    from flask_smorest import Blueprint

    from nhi.parsing import NhiParser

    Blueprint.ARGUMENTS_PARSER = NhiParser()


_install_parser()


class ProblemApi(Api):
    """flask-smorest's Api, with error rendering left to ``nhi.errors`` (problem+json)."""

    def _register_error_handlers(self) -> None:
        return None


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite (the embedded default) in WAL mode: readers never wait for the writer, and a
    commit appends to the log instead of rewriting pages behind an fsync'd journal
    (synchronous=NORMAL is durable across application crashes; see the README)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
