"""The OpenAPI document as the server really answers.

FastAPI documents a 422 for every route with parameters, and nothing else; llmos answers
bad input with 400 and has auth, limits and not-found answers besides, all in one error
shape (:mod:`agent.server.errors`). This module rewrites the generated document so that a
client (or a fuzzer checking responses against it, ``make fuzz``) sees every status a route
can answer, each with the error schema, and the bearer auth the ``/v1`` routes take.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["install_openapi", "ERROR_SCHEMA"]

_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type", "id"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": _NULLABLE_STRING,
                       "param": _NULLABLE_STRING, "id": {"type": "string"}}}},
}

_SSE_EVENT = {"type": "object", "required": ["data"],
              "properties": {"data": {"type": "string", "description": "one JSON object, or [DONE] at the end"}}}
"""One server-sent event of a streamed reply (``stream: true``)."""

_WHY = {
    400: "invalid request: the message says which field and how to fix it",
    401: "missing or invalid API key",
    403: "the key may not act for this user (or: no keys configured and the client is not on this machine)",
    404: "no such session for this API key",
    409: "the user already has a session with this id",
    413: "the request body is too large",
    429: "rate limit or concurrency cap reached (see Retry-After)",
    502: "the model backend failed",
}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    codes = [401, 403, 429]
    if operation.get("parameters") or "requestBody" in operation:
        codes.append(400)
    if "requestBody" in operation:
        codes.append(413)
    if "{session_id}" in path:
        codes.append(404)
    if path == "/v1/sessions" and method == "post":
        codes.append(409)
    if path in ("/v1/chat/completions", "/v1/sessions/{session_id}/messages"):
        codes.append(502)
    return sorted(codes)


def _document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                 "description": "an API key from server.api_keys"}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if not path.startswith("/v1/"):
                continue
            operation["security"] = [{"bearer": []}]
            for code in _statuses(path, method, operation):
                responses.setdefault(str(code), {"description": _WHY[code], "content": error})
            if path in ("/v1/chat/completions", "/v1/sessions/{session_id}/messages"):
                ok = responses.setdefault("200", {"description": "the reply"})
                ok.setdefault("content", {}).setdefault("text/event-stream", {"schema": _SSE_EVENT})
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the rewritten document (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
