"""RFC 9457 problem+json answers for every error, so no client ever sees a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException, WebSocketException
from starlette.websockets import WebSocket, WebSocketState

from commq.domain.errors import (
    CommqError,
    InvalidCursorError,
    InvalidJobError,
    InvalidTransitionError,
    JobNotFoundError,
    PermissionDeniedError,
)

log = logging.getLogger("commq.api")

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status}
    body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def _status_of(exc: CommqError) -> int:
    if isinstance(exc, JobNotFoundError):
        return 404
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, InvalidTransitionError):
        return 409
    if isinstance(exc, InvalidJobError | InvalidCursorError):
        return 422
    return 400


async def _commq_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CommqError)
    status = _status_of(exc)
    field = exc.field if isinstance(exc, InvalidJobError) else None
    if isinstance(exc, InvalidCursorError):
        field = "cursor"
    if field:
        # The same shape as a 422 from request validation: one list to read either way.
        errors = [{"field": field, "message": str(exc)}]
        return problem(status, f"{field}: {exc}", field=field, errors=errors)
    return problem(status, str(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(error) for error in exc.errors()]
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return problem(422, detail, field=first["field"], errors=errors)


def _field_error(error: Any) -> dict[str, str]:
    loc = error.get("loc", ())
    if error.get("type") == "json_invalid":  # loc is ("body", the character's position)
        reason = error.get("ctx", {}).get("error", "invalid")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return {"field": "body", "message": f"not valid JSON: {reason}{at}"}
    # Only the leading "body" is FastAPI's: a key named "body" (an SMS payload's) stays.
    in_body = tuple(loc[:1]) == ("body",)
    location = [str(part) for part in (loc[1:] if in_body else loc)]
    # An error about the body as a whole (an array where an object belongs) names it.
    field = ".".join(location) or ("body" if in_body else "")
    message = str(error.get("msg", "invalid"))
    # Pydantic prefixes the message of a validator's ValueError; the field is named already.
    return {"field": field, "message": message.removeprefix("Value error, ")}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's "error parsing the body": JSON that json.loads refuses past its
        # syntax (an integer of more than 4300 digits, nesting deeper than its stack).
        return problem(422, _UNREADABLE_BODY, field="body")
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


_UNREADABLE_BODY = (
    "body: the JSON cannot be read (an integer of more than 4300 digits, or nesting too deep)"
)


#: Seconds a client is asked to wait before trying again while the database is unavailable.
DATABASE_RETRY_AFTER = 2


#: SQLite's errors about the database being unavailable; its other OperationalErrors
#: (no such table, a syntax error) are bugs.
_SQLITE_UNAVAILABLE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
)


def _unavailable(exc: Exception) -> bool:
    """Whether ``exc`` says the database could not be reached or used now, not that a
    statement is wrong."""
    sqlite_error = getattr(getattr(exc, "orig", None), "sqlite_errorname", None)
    return sqlite_error is None or str(sqlite_error).startswith(_SQLITE_UNAVAILABLE)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database could not be reached or answered in time (a restart, a cut connection,
    # SQLite's write lock held past the busy timeout): the client's to retry, not a bug.
    # The request may have taken effect if the connection was cut as it committed, so
    # the detail points at the idempotencyKey, which makes a retried enqueue safe.
    if not _unavailable(exc):
        return await _unexpected(request, exc)
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    log.warning("database unavailable: %s", reason)
    return problem(
        503,
        "database unavailable; try again (with the same idempotencyKey, an enqueue is "
        "stored at most once)",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return problem(500, "An unexpected error occurred; it has been logged.")


#: Close codes of a socket refused before its handshake, and the HTTP status they mean.
_SOCKET_STATUS = {4401: 401, 4403: 403}


async def _socket_refused(websocket: WebSocket, exc: Exception) -> None:
    """A socket refused at its handshake gets the problem+json answer a request would.

    Closing before accept makes the server answer a bare 403 with no body; a server
    with the ASGI denial-response extension (uvicorn) can send the real answer. Any
    other case is closed with the exception's code, as Starlette does.
    """
    assert isinstance(exc, WebSocketException)
    status = _SOCKET_STATUS.get(exc.code)
    extensions = websocket.scope.get("extensions") or {}
    if (
        status is None
        or websocket.application_state is not WebSocketState.CONNECTING
        or "websocket.http.response" not in extensions
    ):
        await websocket.close(exc.code, exc.reason)
        return
    await websocket.send_denial_response(problem(status, exc.reason or _TITLES[status]))


def install(app: FastAPI) -> None:
    """Route every error through problem+json."""
    app.add_exception_handler(CommqError, _commq_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(WebSocketException, _socket_refused)
    # Errors of the connection, not of a statement (IntegrityError and the like stay 500).
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
