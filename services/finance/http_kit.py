"""What every finance route shares: the roles that may call it, the application's keys, and its
responses (JSON with phone numbers masked, CSV, errors). A module of its own so the routes can
live in several modules (api.py, self_check_api.py) without importing each other."""
from __future__ import annotations

from importlib import resources

import asyncpg
import orjson
from aiohttp import web

from . import lists, tokens
from .privacy import masked

FINANCE = frozenset({"finance", "auditor"})
AUDITOR = frozenset({"auditor"})
DB_ROLE = "wuguan_finance"
CSV_TYPE = "text/csv"


SECRET = web.AppKey("secret", str)
POOL = web.AppKey("pool", asyncpg.Pool)
CLOCK = web.AppKey("clock", object)
OPENAPI = web.AppKey("openapi", dict)  # filled on first request: the routes are all known by then
CLAIMS = web.RequestKey("claims", tokens.Claims)


def roles(allowed: frozenset):
    def mark(handler):
        handler.allowed_roles = allowed
        return handler
    return mark


def error_response(status: int, message: str, reason: str | None = None, headers=None) -> web.Response:
    body = {"error": message}
    if reason:
        body["reason"] = reason
    return web.json_response(body, status=status, headers=headers, dumps=lambda v: orjson.dumps(v).decode())


def json_response(body) -> web.Response:
    return web.Response(body=orjson.dumps(masked(body)), content_type="application/json")


def wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise lists.BadRequest("format must be csv or json")
        return fmt == "csv"
    return CSV_TYPE in request.headers.get("Accept", "")


def csv_response(name: str, text: str) -> web.Response:
    return web.Response(text=text, content_type=CSV_TYPE, charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


STATIC = resources.files(__package__).joinpath("static")
