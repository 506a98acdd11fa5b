"""Unbound extension singletons, bound to the app in ``create_app``."""

from __future__ import annotations

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


class ProblemApi(Api):
    """flask-smorest's Api, with error rendering left to ``nhi.errors`` (problem+json)."""

    def _register_error_handlers(self) -> None:
        return None
