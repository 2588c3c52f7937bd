"""The self-check report (服务标准自查) on the finance API: GET /api/self-check?period=YYYY-MM
(JSON, or CSV with format=csv), and its page /self-check. It reads the decision log, not the
projections, so a projection rebuild cannot change a figure."""
from __future__ import annotations

from aiohttp import web

from .http_kit import FINANCE, POOL, STATIC, csv_response, error_response, json_response, roles, wants_csv
from .lists import BadRequest
from .self_check import self_check, valid_period
from .self_check_output import read_decisions, to_csv
from .self_check_policy import SelfCheckPolicy, load_self_check_policy

POLICY = web.AppKey("selfCheckPolicy", SelfCheckPolicy)


@roles(FINANCE)
async def self_check_report(request: web.Request) -> web.Response:
    period = request.query.get("period", "")
    if not valid_period(period):
        return error_response(400, "period must be YYYY-MM (2000-2099) with a month 01-12, e.g. 2026-11")
    try:
        as_csv = wants_csv(request)
    except BadRequest as exc:  # format=xyz: a 400, not a 500
        return error_response(400, str(exc))
    policy = request.app[POLICY]
    async with request.app[POOL].acquire() as conn:
        report = self_check(await read_decisions(conn, period, policy), period, policy)
    if as_csv:
        return csv_response(f"self-check-{period}", to_csv(report))
    return json_response(report)


def _page(name: str, content_type: str):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=STATIC.joinpath(name).read_text(), content_type=content_type, charset="utf-8")
    return handler


def add_routes(app: web.Application) -> None:
    # Loaded when the app is built: a bad self-check policy stops `wuguan api` naming the field.
    app[POLICY] = load_self_check_policy()
    r = app.router
    r.add_get("/api/self-check", self_check_report)
    r.add_get("/self-check", _page("self-check.html", "text/html"))
    r.add_get("/static/self-check.js", _page("self-check.js", "application/javascript"))
    r.add_get("/static/self-check.css", _page("self-check.css", "text/css"))
