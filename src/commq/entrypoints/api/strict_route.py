"""Routes that refuse what FastAPI would quietly misread, instead of guessing.

FastAPI keeps the last of a repeated query parameter (``?status=failed&status=pending``
lists pending jobs only), ignores a parameter the route does not take (``?stauts=failed``
lists every job), and ``json.loads`` keeps the last of a repeated key (``{"dryRun": true,
"dryRun": false}`` is a real bulk retry). It also ignores a body sent to a route that
reads none, and reads a JSON body sent as text/plain as no object at all. Each is a 422
naming the parameter, the key or the body.

The checks sit in the route class, so every route of a router that uses it gets them
and knows the query parameters it takes. They run before the route's dependencies, so
they come before a 403, as a malformed body already does.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Where a value sits in a JSON body: keys and list positions, as pydantic's ``loc``.
Path = tuple[str | int, ...]


class StrictRoute(APIRoute):
    """An APIRoute that refuses repeated or unknown query parameters, repeated JSON keys,
    a body not sent as JSON, and a body sent to a route that reads none."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        taken = frozenset(query_names(self.dependant))
        reads_body = self.body_field is not None
        may_send_body = not reads_body and bool((self.methods or set()) & _BODY_METHODS)

        async def strict_handler(request: Request) -> Response:
            # Each check is skipped when there is nothing to check: POST /jobs has no
            # query, and its body is parsed here once instead of by FastAPI.
            if request.scope["query_string"]:
                errors = query_errors(request.query_params, taken)
                if errors:
                    raise RequestValidationError(errors)
            if reads_body:
                await _parse_json_body(request)
            elif may_send_body:
                await _refuse_body(request)
            return await handler(request)

        return strict_handler


def query_names(dependant: Dependant) -> Iterator[str]:
    """The query parameters a route reads, its dependencies' included, as clients spell them."""
    for field in dependant.query_params:
        yield field.alias
    for dependency in dependant.dependencies:
        yield from query_names(dependency)


def query_errors(params: QueryParams, taken: frozenset[str]) -> list[dict[str, Any]]:
    """FastAPI-shaped errors for each parameter the route does not take or that is repeated."""
    errors = []
    for name, count in Counter(key for key, _ in params.multi_items()).items():
        if name not in taken:
            errors.append(_error(("query", name), "unknown_parameter", _unknown(taken)))
        elif count > 1:
            message = f"given {count} times; give it once (it takes one value)"
            errors.append(_error(("query", name), "repeated_parameter", message))
    return errors


def _unknown(taken: frozenset[str]) -> str:
    if not taken:
        return "not a parameter of this endpoint, which takes none"
    return f"not a parameter of this endpoint, which takes {', '.join(sorted(taken))}"


def _error(loc: Path, kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": message, "input": None}


async def _parse_json_body(request: Request) -> None:
    body = await request.body()
    if not body:
        return
    content_type = request.headers.get("content-type")
    if not _is_json(content_type):
        # FastAPI would hand the bytes to the model: "Input should be a valid dictionary".
        sent = f"not {content_type}" if content_type else "which is missing"
        message = f"must be JSON sent as Content-Type: application/json, {sent}"
        raise RequestValidationError([_error(("body",), "content_type", message)])
    repeated = False

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        found = dict(pairs)
        if len(found) == len(pairs):
            return found
        repeated = True
        return _RepeatedKeys(found, _first_repeated(pairs))

    try:
        parsed = json.loads(body, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):
        # Not JSON that json.loads reads (or not JSON at all, under another content
        # type): FastAPI reads the body itself and answers as it always does.
        return
    if repeated:
        path, key = _first_repeat(parsed)
        message = "given more than once in one JSON object; give it once"
        raise RequestValidationError([_error(("body", *path, key), "repeated_key", message)])
    # Starlette's Request.json() returns this cached value, so FastAPI (which asks for
    # it only under a JSON content type) does not parse the body a second time.
    request._json = parsed


async def _refuse_body(request: Request) -> None:
    """A 422 for a body sent to a route that reads none, unless it is empty, {} or null.

    ``POST /process-now`` with ``{"businessId": "acme"}`` would otherwise send every
    business's due jobs: the business belongs in the query string.
    """
    body = await request.body()
    if not body.strip():
        return
    try:
        empty = json.loads(body) in ({}, None)
    except (ValueError, RecursionError):
        empty = False
    if not empty:
        message = "this endpoint reads no body; give its parameters in the query string"
        raise RequestValidationError([_error(("body",), "body_not_read", message)])


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this type as JSON (application/json or .../*+json)."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _RepeatedKeys(dict[str, Any]):
    """A JSON object that held ``key`` more than once (only built on the way to a 422)."""

    def __init__(self, found: dict[str, Any], key: str) -> None:
        super().__init__(found)
        self.key = key


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no key is repeated")


def _first_repeat(parsed: Any) -> tuple[Path, str]:
    """Where the first repeated key is, located as pydantic locates errors (jobs.2.priority).

    A loop, not recursion: the body may be nested as deep as json.loads allows.
    """
    stack: list[tuple[Path, Any]] = [((), parsed)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _RepeatedKeys):
            return path, value.key
        if isinstance(value, dict):
            children: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        stack.extend(((*path, name), child) for name, child in reversed(children))
    raise AssertionError("no object with a repeated key")
