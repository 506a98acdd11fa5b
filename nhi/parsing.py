"""Request parsing for every /nhi endpoint (flask-smorest's webargs parser, hardened).

webargs turns a syntax error into a 400 but lets other hostile JSON through: nesting deep enough
to overflow the recursion limit (a 500), NaN/Infinity (not JSON; PostgreSQL's JSONB refuses them)
and NUL characters (PostgreSQL text refuses them). All of these are a 400 here, before any view.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class NhiParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        if not raw:
            return core.missing
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except UnicodeDecodeError:
            abort(400, message="The request body is not UTF-8 encoded JSON.")
        except RecursionError:
            abort(400, message="The request body is nested too deeply.")
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity
            abort(400, message=f"The request body is not valid JSON: {exc}.")
        if _has_nul(data):
            abort(400, message="NUL characters are not accepted in the request body.")
        return data

    def load_querystring(self, req: flask.Request, schema: ma.Schema) -> Any:
        if any("\x00" in v for values in req.args.listvalues() for v in values):
            abort(400, message="NUL characters are not accepted in the query string.")
        return super().load_querystring(req, schema)
