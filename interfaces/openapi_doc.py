"""docs/openapi.json: the finance API's OpenAPI document, rendered from the routes of build_app."""
from __future__ import annotations

import orjson

from services.finance.api import build_app
from services.finance.openapi import openapi_document

PATH = "docs/openapi.json"


def render() -> bytes:
    # The routes and their schemas only: no pool is needed to describe them.
    app = build_app(None, "description-only-secret")
    return orjson.dumps(openapi_document(app), option=orjson.OPT_INDENT_2) + b"\n"
