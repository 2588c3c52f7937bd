"""`wuguan api`: the finance read API (aiohttp), with the projector as a background task.

Every /api route names the roles allowed to call it; the auth middleware checks the bearer
token (a JWT, tokens.py) before the handler runs: 401 when the token is missing,
malformed, tampered or expired, 403 when its role may not call the route. /, /static, /healthz
and /metrics are public (the page holds no data; it asks for a token).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from services.common.db import connection, create_pool

from . import dashboard, lists, openapi, self_check_api, tokens, trails
from .csv_export import rows_to_csv
from .gauges import GaugeRefresher
from .http_kit import (
    AUDITOR, CLAIMS, CLOCK, CSV_TYPE, DB_ROLE, FINANCE, OPENAPI, POOL, SECRET, STATIC, csv_response, error_response,
    json_response, roles, wants_csv,
)
from .projector import run_projector
from .schema import ensure_schema
from .settings import ApiSettings

log = logging.getLogger(__name__)

# Labels from closed sets only (route templates, methods, status codes, reason codes): A.PRIVACY.
REQUEST_SECONDS = Histogram(
    "wuguan_api_request_seconds", "Finance API request latency", ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
AUTH_FAILURES = Counter("wuguan_api_auth_failures_total", "Requests refused by the API's auth", ["reason"])
PROJECTOR_POSITION = Gauge("wuguan_finance_projector_position", "Last global position projected")
PROJECTOR_APPLIED = Counter("wuguan_finance_projector_events_total", "Events applied by the finance projector")
# Wall-clock time the projector last reached the log's head: it stops moving when the database is
# out of reach or the projector loop has died, and then every gauge of gauges.py is stale.
PROJECTOR_CAUGHT_UP = Gauge(
    "wuguan_finance_projector_caught_up_timestamp_seconds", "When the finance projector last reached the log's head"
)

@web.middleware
async def timing(request: web.Request, handler):
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        REQUEST_SECONDS.labels(route, request.method, str(status)).observe(time.perf_counter() - start)


@web.middleware
async def auth(request: web.Request, handler):
    allowed = getattr(request.match_info.handler, "allowed_roles", None)
    if allowed is None:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        AUTH_FAILURES.labels("missing").inc()
        return error_response(401, "bearer token required", "missing", {"WWW-Authenticate": 'Bearer realm="wuguan"'})
    try:
        claims = tokens.verify(token.strip(), request.app[SECRET], request.app[CLOCK]())
    except tokens.TokenError as exc:
        AUTH_FAILURES.labels(exc.reason).inc()
        return error_response(401, f"invalid token: {exc.message}", exc.reason,
                      {"WWW-Authenticate": 'Bearer realm="wuguan", error="invalid_token"'})
    if claims.role not in allowed:
        AUTH_FAILURES.labels("forbidden").inc()
        return error_response(403, f"role {claims.role} may not call this endpoint", "forbidden")
    request[CLAIMS] = claims
    return await handler(request)


def _params(request: web.Request) -> dict:
    params = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) != 1:
            raise lists.BadRequest(f"parameter {key} given more than once")
        params[key] = values[0]
    return params


def list_handler(name: str):
    spec = lists.LISTS[name]
    names = [c.name + ("Minor" if c.kind == "fen" else "") for c in spec.columns]

    @roles(FINANCE)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            params = _params(request)
            as_csv = wants_csv(request)
            limit = lists.parse_limit(params.get("limit"))
            if as_csv:
                # The whole filtered list, read page by page in the list's stable order.
                response = web.StreamResponse(headers={
                    "Content-Type": f"{CSV_TYPE}; charset=utf-8",
                    "Content-Disposition": f'attachment; filename="{name}.csv"'})
                after, first = params.get("cursor"), True
                query = lists.build_query(spec, params, lists.MAX_LIMIT, after)
                await response.prepare(request)
                while True:
                    async with request.app[POOL].acquire() as conn:
                        rows = await conn.fetch(query.sql, *query.args)
                    items, after = lists.page(spec, rows, lists.MAX_LIMIT)
                    await response.write(rows_to_csv(items, names, first).encode())
                    first = False
                    if after is None:
                        break
                    query = lists.build_query(spec, params, lists.MAX_LIMIT, after)
                await response.write_eof()
                return response
            query = lists.build_query(spec, params, limit, params.get("cursor"))
        except lists.BadRequest as exc:
            return error_response(400, str(exc))
        async with request.app[POOL].acquire() as conn:
            rows = await conn.fetch(query.sql, *query.args)
        items, next_cursor = lists.page(spec, rows, limit)
        return json_response({"items": items, "nextCursor": next_cursor})

    return handler


def aggregate_handler(name: str, key: str, columns: list[str]):
    """A summary table of the dashboard, as JSON or CSV (not paginated: a handful of rows)."""
    @roles(FINANCE)
    async def handler(request: web.Request) -> web.Response:
        try:
            unknown = set(request.query) - {"format"}
            if unknown:
                raise lists.BadRequest(f"unknown parameter(s): {', '.join(sorted(unknown))}")
            as_csv = wants_csv(request)
        except lists.BadRequest as exc:
            return error_response(400, str(exc))
        async with request.app[POOL].acquire() as conn:
            data = await dashboard.summary(conn)
        items = data[key] if key != "byChannel" else data["funnel"]["byChannel"]
        if as_csv:
            return csv_response(name, rows_to_csv(items, columns, True))
        return json_response({"asOf": data["asOf"], "items": items})

    return handler


@roles(FINANCE)
async def dashboard_data(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(await dashboard.summary(conn))


@roles(AUDITOR)
async def dispute_trail(request: web.Request) -> web.Response:
    ticket = request.match_info["ticket_id"]
    try:
        as_csv = wants_csv(request)
    except lists.BadRequest as exc:  # format=xyz: a 400, not a 500 (found by schemathesis)
        return error_response(400, str(exc))
    async with request.app[POOL].acquire() as conn:
        decisions = await trails.ticket_trail(conn, ticket, flat=as_csv)
    if not decisions:
        return error_response(404, "no such dispute")
    if as_csv:
        return csv_response("dispute-trail", rows_to_csv(decisions, trails.FLAT, True))
    return json_response({"ticketId": ticket, "decisions": decisions})


@roles(AUDITOR)
async def account_trail(request: web.Request) -> web.Response:
    account = request.match_info["account_id"]
    try:
        params = _params(request)
        unknown = set(params) - {"cursor", "limit", "format"}
        if unknown:
            raise lists.BadRequest(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        as_csv = wants_csv(request)
        limit = lists.parse_limit(params.get("limit"))
        after = 0
        if params.get("cursor"):
            try:
                _, key = lists.cursors.decode(params["cursor"])
                after = int(key)
            except (lists.cursors.CursorError, ValueError):
                raise lists.BadRequest("invalid cursor") from None
    except lists.BadRequest as exc:
        return error_response(400, str(exc))
    if as_csv:
        out, first = [], True
        async with request.app[POOL].acquire() as conn:
            while True:
                decisions = await trails.account_trail(conn, account, after, lists.MAX_LIMIT, flat=True)
                out.append(rows_to_csv(decisions, trails.FLAT, first))
                first = False
                if len(decisions) < lists.MAX_LIMIT:
                    break
                after = decisions[-1]["globalPosition"]
        return csv_response("account-trail", "".join(out))
    async with request.app[POOL].acquire() as conn:
        decisions = await trails.account_trail(conn, account, after, limit + 1)
    more = len(decisions) > limit
    decisions = decisions[:limit]
    next_cursor = lists.cursors.encode(None, str(decisions[-1]["globalPosition"])) if more else None
    return json_response({"accountId": account, "decisions": decisions, "nextCursor": next_cursor})


@roles(AUDITOR)
async def decision_trail(request: web.Request) -> web.Response:
    decision_id = request.match_info["decision_id"]
    if not trails.is_uuid(decision_id):
        return error_response(400, "decision id must be a UUID")
    async with request.app[POOL].acquire() as conn:
        trail = await trails.decision_trail(conn, decision_id)
    if trail is None:
        return error_response(404, "no such decision")
    return json_response(trail)


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[POOL].acquire() as conn:
            head = await conn.fetchrow("SELECT global_position, as_of FROM finance.v_as_of")
    except (asyncpg.PostgresError, OSError):
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ready", "projectedPosition": head["global_position"] if head else 0})


async def openapi_json(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 description (docs/openapi.json is the same, committed)."""
    return web.json_response(_openapi(request.app))


def _openapi(app: web.Application) -> dict:
    """Built once: ~23 ms of the event loop each time, on routes that need no token."""
    if not app[OPENAPI]:
        app[OPENAPI].update(openapi.openapi_document(app))
    return app[OPENAPI]


async def api_docs(request: web.Request) -> web.Response:
    """A page listing every operation of this API."""
    return web.Response(text=openapi.docs_page(_openapi(request.app)), content_type="text/html")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def index(request: web.Request) -> web.Response:
    return web.Response(text=STATIC.joinpath("index.html").read_text(), content_type="text/html", charset="utf-8")


def _static(name: str, content_type: str):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=STATIC.joinpath(name).read_text(), content_type=content_type, charset="utf-8")
    return handler


# Every response, errors included: finance data must not be sniffed, framed or cached, and the
# server does not advertise its software versions (issue 19).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                               " object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Server": "wuguan",
}


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def build_app(pool: asyncpg.Pool, secret: str, clock=time.time) -> web.Application:
    """The routes over an existing pool (tests pass theirs; `serve` makes one)."""
    app = web.Application(middlewares=[timing, auth])
    app.on_response_prepare.append(_secure_headers)
    app[SECRET], app[POOL], app[CLOCK], app[OPENAPI] = secret, pool, clock, {}
    r = app.router
    for name in lists.LISTS:
        r.add_get(f"/api/{name}", list_handler(name))
    r.add_get("/api/disputes/aging", aggregate_handler("dispute-aging", "disputeAging", ["bucket", "count", "amountMinor"]))
    r.add_get("/api/arrears/aging", aggregate_handler("arrears-aging", "arrearsAging", ["bucket", "count", "amountMinor"]))
    r.add_get("/api/reminders/by-channel", aggregate_handler(
        "reminders-by-channel", "byChannel", ["channel", "scheduled", "reminders", "delivered", "occurrences"]))
    r.add_get("/api/card-replacements/by-outlet", aggregate_handler(
        "card-replacements-by-outlet", "cardsByOutlet",
        ["outletId", "replaced", "escalated", "referred", "transferredMinor"]))
    r.add_get("/api/dashboard", dashboard_data)
    r.add_get("/api/disputes/{ticket_id}/trail", dispute_trail)
    r.add_get("/api/audit/accounts/{account_id}", account_trail)
    r.add_get("/api/audit/decisions/{decision_id}", decision_trail)
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/", index)
    r.add_get("/static/dashboard.js", _static("dashboard.js", "application/javascript"))
    r.add_get("/static/dashboard.css", _static("dashboard.css", "text/css"))
    r.add_get("/openapi.json", openapi_json)
    r.add_get("/docs", api_docs)
    r.add_get("/static/drilldown.js", _static("drilldown.js", "application/javascript"))
    self_check_api.add_routes(app)
    return app


def _on_progress(progress) -> None:
    PROJECTOR_POSITION.set(progress.position)
    PROJECTOR_APPLIED.inc(progress.applied)
    PROJECTOR_CAUGHT_UP.set_to_current_time()  # catch_up returns only at the head


def _report_projector_end(task: asyncio.Task) -> None:
    # run_projector survives database outages only; anything else ends it, and the API would go
    # on serving an old state in silence (WuguanFinanceProjectorStalled fires; this says why).
    # The class only: an error's text may quote an event's values (A.PRIVACY).
    if not task.cancelled() and task.exception() is not None:
        log.error("finance projector stopped (%s): restart the API once the cause is fixed",
                  type(task.exception()).__name__)


async def serve(settings: ApiSettings, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Migrate, start the projector and the HTTP server; run until `stop` (or cancelled)."""
    async with connection(settings.database_url) as conn:
        await ensure_schema(conn)
    pool = await create_pool(settings.database_url, role=DB_ROLE, max_size=settings.db_pool_size)
    stop = stop or asyncio.Event()
    gauges = GaugeRefresher(pool, settings.gauges_interval_ms / 1000)

    def on_progress(progress) -> None:
        _on_progress(progress)
        gauges.on_progress(progress)

    projector = asyncio.create_task(run_projector(pool, settings.projector_interval_ms / 1000, stop, on_progress))
    projector.add_done_callback(_report_projector_end)
    runner = web.AppRunner(build_app(pool, settings.secret), access_log=None)  # access logs would hold account ids
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info("finance api listening on http://%s:%s/", settings.host, settings.port)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await projector
        await gauges.close()
        await runner.cleanup()
        await pool.close()


async def main(settings: ApiSettings) -> None:
    """`wuguan api`: serve until SIGTERM or SIGINT, then stop the projector and close cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop=stop)
