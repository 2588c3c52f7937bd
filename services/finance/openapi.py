"""OpenAPI 3.1 description of the finance API, generated with apispec from marshmallow schemas.

Every route of api.build_app is described: the routes are read from the app's router, so a new
route appears on the next generation. Lists take their item schema from lists.LISTS; a route
this module has no schema for is still listed, with its roles, its auth responses and an
undescribed body. Served at /openapi.json (with a page at /docs) and committed at
docs/openapi.json: `python -m interfaces.generate` writes it, and a test fails when it is stale.
"""
from __future__ import annotations

import html
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields, validate

from schemas.fields import RFC3339_PATTERN, UUID_PATTERN

from . import lists

API_VERSION = "1.0.0"
JSON = "application/json"
CSV = "text/csv"
BEARER = "bearerJWT"

_KINDS = {
    "text": lambda: fields.String(allow_none=True),
    "int": lambda: fields.Integer(allow_none=True),
    "fen": lambda: fields.Integer(allow_none=True, metadata={"description": "Amount in fen."}),
    "time": lambda: fields.String(allow_none=True, metadata={"format": "date-time"}),
    "bool": lambda: fields.Boolean(allow_none=True),
}


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "What was wrong, in words."})
    reason = fields.String(metadata={"description": "A short code (auth failures: missing, expired, ...)."})


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "unavailable"]))
    projectedPosition = fields.Integer(metadata={"description": "Last event-store position projected."})


class BucketSchema(Schema):
    bucket = fields.String(required=True)
    count = fields.Integer(required=True)
    amountMinor = fields.Integer(required=True)


class ChannelSchema(Schema):
    channel = fields.String(required=True, allow_none=True)
    scheduled = fields.Integer(required=True, metadata={"description": "Reminders scheduled (issue 16)."})
    reminders = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    occurrences = fields.Integer(required=True)


class OutletSchema(Schema):
    outletId = fields.String(required=True, allow_none=True)
    replaced = fields.Integer(required=True)
    escalated = fields.Integer(required=True)
    referred = fields.Integer(required=True)
    transferredMinor = fields.Integer(required=True, allow_none=True)


class FunnelSchema(Schema):
    occurrences = fields.Integer(required=True)
    reminded = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    suspensionRequested = fields.Integer(required=True)
    suspended = fields.Integer(required=True)
    restored = fields.Integer(required=True)
    byChannel = fields.List(fields.Nested(ChannelSchema), required=True)


class SlaBreachesSchema(Schema):
    disputeReplyOverdue = fields.Integer(required=True)
    restorationSlaMissed = fields.Integer(required=True)


class MoneySchema(Schema):
    """The money figures first on the dashboard (issue 16), integer fen."""

    arrearsMinor = fields.Integer(required=True)
    arrearsAccounts = fields.Integer(required=True)
    disputedMinor = fields.Integer(required=True)
    openDisputes = fields.Integer(required=True)
    creditedMinor = fields.Integer(required=True)
    creditNotes = fields.Integer(required=True)
    lateFeesMinor = fields.Integer(required=True)


class TrendDaySchema(Schema):
    day = fields.String(required=True, metadata={"format": "date", "description": "a day in Asia/Shanghai"})
    decisions = fields.Integer(required=True)
    arrearsOpened = fields.Integer(required=True)
    arrearsClosed = fields.Integer(required=True)
    disputesOpened = fields.Integer(required=True)
    disputesAnswered = fields.Integer(required=True)


class DashboardSchema(Schema):
    asOf = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    position = fields.Integer(required=True)
    disputeAging = fields.List(fields.Nested(BucketSchema), required=True)
    arrearsAging = fields.List(fields.Nested(BucketSchema), required=True)
    funnel = fields.Nested(FunnelSchema, required=True)
    slaBreaches = fields.Nested(SlaBreachesSchema, required=True)
    cardsByOutlet = fields.List(fields.Nested(OutletSchema), required=True)
    money = fields.Nested(MoneySchema, required=True)
    trends = fields.List(fields.Nested(TrendDaySchema), required=True)


class StoredDecisionSchema(Schema):
    globalPosition = fields.Integer(required=True)
    streamId = fields.String(required=True)
    streamVersion = fields.Integer(required=True)
    businessTime = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    decision = fields.Dict(required=True, metadata={
        "description": "The decision as stored (schemas/json/decision.<type>.schema.json), phone numbers masked."})


class DisputeTrailSchema(Schema):
    ticketId = fields.String(required=True)
    decisions = fields.List(fields.Nested(StoredDecisionSchema), required=True)


class AccountTrailSchema(Schema):
    accountId = fields.String(required=True)
    decisions = fields.List(fields.Nested(StoredDecisionSchema), required=True)
    nextCursor = fields.String(required=True, allow_none=True)


class DecisionTrailSchema(Schema):
    decision = fields.Nested(StoredDecisionSchema, required=True)
    causedBy = fields.List(fields.Nested(StoredDecisionSchema), required=True)
    externalInputs = fields.List(fields.String(), required=True, metadata={
        "description": "Ids of the upstream inputs that caused the decision (not in the store)."})
    caused = fields.List(fields.Nested(StoredDecisionSchema), required=True)


class SelfCheckRowSchema(Schema):
    key = fields.String(required=True)
    standard = fields.String(required=True)
    ruleId = fields.String(required=True)
    limit = fields.String(required=True, metadata={"description": "The limit, from the self-check policy."})
    measured = fields.Dict(required=True, metadata={"description": "The row's figures (counts, p50/p95/max, ...)."})
    breaches = fields.List(fields.Dict(), required=True, metadata={
        "description": "Each breach with the decisionIds that show it."})
    status = fields.String(required=True, validate=validate.OneOf(["达标", "不达标", "无数据 / not measured"]))
    met = fields.Boolean(required=True, allow_none=True, metadata={"description": "null: nothing measured."})
    department = fields.String(required=True)
    note = fields.String(metadata={"description": "How the row is measured, or why it cannot be."})


class SelfCheckSchema(Schema):
    period = fields.String(required=True)
    start = fields.String(required=True, data_key="from", metadata={"format": "date-time"})
    end = fields.String(required=True, data_key="to", metadata={"format": "date-time", "description": "Exclusive."})
    policyVersion = fields.String(required=True)
    status = fields.String(required=True)
    met = fields.Boolean(required=True, metadata={"description": "False when any row is not met."})
    notMeasured = fields.List(fields.String(), required=True)
    rows = fields.List(fields.Nested(SelfCheckRowSchema), required=True)


def _aggregate(name: str, item: type[Schema]) -> type[Schema]:
    return Schema.from_dict({"asOf": fields.String(required=True, allow_none=True, metadata={"format": "date-time"}),
                             "items": fields.List(fields.Nested(item), required=True)}, name=name)


# Routes whose JSON body has a schema here, beyond the lists (which come from lists.LISTS).
BODIES: dict[str, tuple[str, type[Schema]]] = {
    "/api/disputes/aging": ("Open disputes by age bucket (held amounts).", _aggregate("DisputeAging", BucketSchema)),
    "/api/arrears/aging": ("Open arrears by age bucket (overdue amounts).", _aggregate("ArrearsAging", BucketSchema)),
    "/api/reminders/by-channel": ("Reminders and deliveries per channel.", _aggregate("RemindersByChannel",
                                                                                     ChannelSchema)),
    "/api/card-replacements/by-outlet": ("Card replacements per outlet.", _aggregate("CardReplacementsByOutlet",
                                                                                    OutletSchema)),
    "/api/dashboard": ("Every number of the dashboard page.", DashboardSchema),
    "/api/disputes/{ticket_id}/trail": ("Every decision about one dispute ticket.", DisputeTrailSchema),
    "/api/audit/accounts/{account_id}": ("Every decision about one account, a page at a time.", AccountTrailSchema),
    "/api/audit/decisions/{decision_id}": ("One decision with what caused it and what it caused.",
                                           DecisionTrailSchema),
    "/healthz": ("Ready when the projections' database answers.", HealthSchema),
    "/api/self-check": ("The service-standard self-check (服务标准自查) of a month, from the decision log.",
                        SelfCheckSchema),
}
CSV_ROUTES = frozenset({*BODIES} - {"/api/dashboard", "/api/audit/decisions/{decision_id}", "/healthz"})
# Required query parameters of a route with a body here.
QUERY_PARAMS = {"/api/self-check": [{"name": "period", "in": "query", "required": True,
                                     "description": "The month, YYYY-MM (2000-2099) with a month 01-12.",
                                     "schema": {"type": "string", "pattern": r"^20\d\d-(0[1-9]|1[0-2])$"}}]}
# Pages whose path would give the same operationId as an /api route.
PAGED = frozenset({"/api/audit/accounts/{account_id}"})
OTHER_CONTENT = {"/metrics": "text/plain", "/": "text/html", "/docs": "text/html",
                 "/static/dashboard.js": "application/javascript", "/static/dashboard.css": "text/css",
                 "/openapi.json": JSON, "/self-check": "text/html", "/static/self-check.js": "application/javascript",
                 "/static/self-check.css": "text/css"}


# What lists.parse_moment accepts.
MOMENT = {"anyOf": [{"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                    {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}]}
# Cursors are opaque: base64url of the last row's sort key (cursor.py).
CURSOR = {"type": "string", "pattern": r"^[A-Za-z0-9_-]*$"}
PATH_PARAMS = {"decision_id": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}}


def list_item_schema(name: str, spec: lists.ListSpec) -> type[Schema]:
    columns = {c.name + ("Minor" if c.kind == "fen" else ""): _KINDS[c.kind]() for c in spec.columns}
    return Schema.from_dict(columns, name=_camel(name) + "Item")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _param(name: str, where: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": schema or {"type": "string"}}


def _list_params(spec: lists.ListSpec) -> list[dict[str, Any]]:
    out = [
        _param("cursor", "query", "nextCursor of the previous page.", CURSOR),
        _param("limit", "query", "Items per page.", {"type": "integer", "minimum": 1, "maximum": lists.MAX_LIMIT,
                                                     "default": lists.DEFAULT_LIMIT}),
        _format_param(),
        _param("from", "query", "Earliest time: YYYY-MM-DD (operator's day) or RFC 3339 with offset.", MOMENT),
        _param("to", "query", "Latest time, inclusive of a whole day: YYYY-MM-DD or RFC 3339 with offset.", MOMENT),
    ]
    return out + [_param(name, "query", f"Only rows with this {name}.") for name in spec.filters]


def _format_param() -> dict[str, Any]:
    return _param("format", "query", "csv or json (default: json, or CSV when Accept asks for text/csv).",
                  {"type": "string", "enum": ["csv", "json"]})


def _responses(ok: dict[str, Any], roles: frozenset | None, has_input: bool) -> dict[str, Any]:
    out = {"200": ok}
    error = {"content": {JSON: {"schema": "Error"}}}
    if has_input:
        out["400"] = {"description": "A parameter is wrong; the message says which.", **error}
    if roles is not None:
        out["401"] = {"description": "Missing, malformed, expired or untrusted bearer token.", **error}
        out["403"] = {"description": f"The token's role is not one of: {', '.join(sorted(roles))}.", **error}
    return out


def _ok(description: str, body: Any, csv: bool) -> dict[str, Any]:
    content: dict[str, Any] = {JSON: {"schema": body}} if body is not None else {}
    if csv:
        content[CSV] = {"schema": {"type": "string"}}
    return {"description": description, "content": content} if content else {"description": description}


def operation(path: str, handler: Any) -> dict[str, Any]:
    """The GET operation of one route, from what is known about it (generic when nothing is)."""
    roles = getattr(handler, "allowed_roles", None)
    name = path.removeprefix("/api/")
    params = [_param(p.strip("{}"), "path", p.strip("{}"), PATH_PARAMS.get(p.strip("{}")))
              for p in path.split("/") if p.startswith("{")]
    if name in lists.LISTS:
        spec = lists.LISTS[name]
        summary = f"The {name} list, oldest first, a page at a time."
        body = Schema.from_dict({"items": fields.List(fields.Nested(list_item_schema(name, spec)), required=True),
                                 "nextCursor": fields.String(required=True, allow_none=True)},
                                name=_camel(name) + "Page")
        params += _list_params(spec)
        ok = _ok(summary, body, csv=True)
    elif path in BODIES:
        summary, body = BODIES[path]
        params += QUERY_PARAMS.get(path, [])
        if path in PAGED:
            params += [_param("cursor", "query", "nextCursor of the previous page.", CURSOR),
                       _param("limit", "query", "Decisions per page.",
                              {"type": "integer", "minimum": 1, "maximum": lists.MAX_LIMIT})]
        if path in CSV_ROUTES:
            params.append(_format_param())
        ok = _ok(summary, body, csv=path in CSV_ROUTES)
    else:
        summary = (handler.__doc__ or f"GET {path}").strip().split("\n")[0]
        content_type = OTHER_CONTENT.get(path)
        ok = {"description": summary, **({"content": {content_type: {"schema": {}}}} if content_type else {})}
    out: dict[str, Any] = {"summary": summary, "operationId": _operation_id(path), "parameters": params,
                           "responses": _responses(ok, roles, bool(params))}
    if any(p["in"] == "path" for p in params):
        out["responses"]["404"] = {"description": "No such item.", "content": {JSON: {"schema": "Error"}}}
    if path == "/healthz":
        out["responses"]["503"] = {"description": "The database does not answer.", "content": {JSON: {"schema": HealthSchema}}}
    if roles is not None:
        out["security"] = [{BEARER: []}]
        out["description"] = f"Roles: {', '.join(sorted(roles))}."
    return out


def _operation_id(path: str) -> str:
    """getSelfCheck for /api/self-check; a page of the same name (/self-check) is getSelfCheckPage."""
    words = [w.strip("{}") for w in path.replace("-", "/").replace("_", "/").split("/") if w and w != "api"]
    is_page = not path.startswith("/api/") and "." not in path and path not in ("/", "/healthz", "/docs", "/metrics")
    page = "Page" if is_page else ""
    return ("get" + "".join(w[:1].upper() + w[1:] for w in words) if words else "getIndex") + page


def openapi_document(app) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an app built by api.build_app."""
    spec = APISpec(
        title="Wuguan finance API", version=API_VERSION, openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Read-only finance API over projections of Wuguan's decisions. Amounts are integer "
                             "fen; times are RFC 3339 with offset. Bearer tokens are JWTs (`wuguan api-token`)."},
    )
    spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Error", schema=ErrorSchema)
    seen = set()
    for route in app.router.routes():
        resource = route.resource
        if route.method != "GET" or resource is None or resource.canonical in seen:
            continue
        seen.add(resource.canonical)
        spec.path(path=resource.canonical, operations={"get": operation(resource.canonical, route.handler)})
    return spec.to_dict()


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained HTML page listing every operation (no script: the CSP allows none inline)."""
    rows = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["name"] for p in op.get("parameters", [])) or "-"
            codes = ", ".join(op["responses"])
            rows.append(f"<tr><td><code>{method.upper()} {html.escape(path)}</code></td>"
                        f"<td>{html.escape(op.get('summary', ''))} {html.escape(op.get('description', ''))}</td>"
                        f"<td>{html.escape(params)}</td><td>{codes}</td></tr>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Wuguan finance API</title></head>"
            f"<body><h1>{html.escape(document['info']['title'])} {html.escape(document['info']['version'])}</h1>"
            f"<p>{html.escape(document['info']['description'])}</p>"
            "<p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>"
            "<table><thead><tr><th>operation</th><th>what</th><th>parameters</th><th>responses</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></body></html>")
