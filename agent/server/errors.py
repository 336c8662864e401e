"""Errors as JSON: every failure the server answers has an error id and a clear message.

The body follows OpenAI's shape, so OpenAI clients surface the message::

    {"error": {"message": "...", "type": "invalid_request_error", "code": null,
               "param": "messages", "id": "err_5f2c9a1b7e3d"}}

Expected failures (bad input, auth, limits, unknown sessions) say what to fix. Unexpected
ones are logged here with their traceback under the same id and answered with the id
alone: the server never sends a traceback.
"""

from __future__ import annotations

import logging
import re
import secrets
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import BackendError, InputError, LlmosError

_USER_HINT = "invalid user id: use 1-128 letters, digits or ._@:+=/- (starting with a letter or digit)"
_HINTS = {
    ("user", "string_pattern_mismatch"): _USER_HINT,
    ("user_id", "string_pattern_mismatch"): _USER_HINT,
    ("session_id", "string_pattern_mismatch"): "invalid session id: use 1-64 letters, digits, _ or -",
    ("n", "less_than_equal"): "n > 1 is not supported: ask for one choice per request",
}
"""(field, pydantic error type) -> what to send instead, for the 400's message."""

__all__ = ["ApiError", "error_payload", "error_response", "describe_exception", "install_error_handlers",
           "new_error_id"]

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 409: "conflict", 413: "request_too_large",
          429: "rate_limit_error", 502: "backend_error", 503: "overloaded_error"}


class ApiError(Exception):
    """An HTTP error with a message for the client (raised by routes and dependencies)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def new_error_id() -> str:
    return f"err_{secrets.token_hex(6)}"


def error_payload(status: int, message: str, *, param: str | None = None, code: str | None = None,
                  error_id: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "code": code,
                      "param": param, "id": error_id or new_error_id()}}


def error_response(status: int, message: str, *, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_payload(status, message, param=param, code=code), status_code=status, headers=headers)


def describe_exception(exc: BaseException) -> tuple[int, str, str]:
    """(status, message, error id) for any exception; unexpected ones are logged with the id."""
    error_id = new_error_id()
    if isinstance(exc, ApiError):
        return exc.status, exc.message, error_id
    if isinstance(exc, InputError):
        return 400, str(exc), error_id
    if isinstance(exc, BackendError):
        log.warning("backend error %s: %s", error_id, exc)
        return 502, f"the model backend failed: {exc}", error_id
    if isinstance(exc, LlmosError):
        # Library errors carry messages meant for people; still log them for the operator.
        log.error("llmos error %s: %s", error_id, exc)
        return 500, str(exc), error_id
    log.error("unexpected error %s", error_id, exc_info=exc)
    return 500, f"internal server error (error id {error_id}); the server log has the details", error_id


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    problems: list[str] = []
    param: str | None = None
    for err in exc.errors()[:10]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        kind = err.get("type", "")
        if kind == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "invalid JSON")
            return f"the request body is not valid JSON ({detail}, at character {loc[0] if loc else '?'})", None
        if kind == "missing" and not loc:
            return "the request body is missing: send a JSON object (Content-Type: application/json)", None
        where = ".".join(loc) or "body"
        param = param or where
        hint = _HINTS.get((loc[-1], kind)) if loc else None
        problems.append(f"{where}: {hint}" if hint else f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems), param


def _allowed(request: Request, fallback: str) -> str:
    """Every method the API serves at this request's path (from the OpenAPI document, which
    lists each path's operations together), else what Starlette said."""
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            return ", ".join(sorted(m.upper() for m in operations))
    return fallback


class ClientGone(Exception):
    """The client disconnected before a non-streamed reply was ready (answered 499, to no one)."""


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as JSON (see the module docstring)."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code, headers=exc.headers)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _validation_message(exc)
        return error_response(400, message, param=param)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:  # Starlette names the methods of one route, not all the path's
            allow = _allowed(request, (getattr(exc, "headers", None) or {}).get("Allow", ""))
            return error_response(405, "method not allowed on this endpoint", headers={"Allow": allow})
        messages = {404: "no such endpoint: see /docs for the API", 405: "method not allowed on this endpoint",
                    413: "the request body is too large"}
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else ""
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        return error_response(exc.status_code, detail or messages.get(exc.status_code, phrase or "request failed"),
                              headers=getattr(exc, "headers", None))

    async def library(_: Request, exc: Exception) -> JSONResponse:
        status, message, error_id = describe_exception(exc)
        return JSONResponse(error_payload(status, message, error_id=error_id), status_code=status)

    async def client_gone(_: Request, exc: Exception) -> Response:
        return Response(status_code=499)  # nobody reads it; the turn was stored as cancelled

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ClientGone, client_gone)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(LlmosError, library)
    app.add_exception_handler(Exception, library)
