"""Routes that refuse what FastAPI would quietly misread, instead of guessing.

FastAPI keeps the last of a repeated query parameter (``?status=failed&status=pending``
lists pending jobs only), ignores a parameter the route does not take (``?stauts=failed``
lists every job), and ``json.loads`` keeps the last of a repeated key (``{"dryRun": true,
"dryRun": false}`` is a real bulk retry). Each is a 422 naming the parameter or key.

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
#: Where a value sits in a JSON body: keys and list positions, as pydantic's ``loc``.
Path = tuple[str | int, ...]


class StrictRoute(APIRoute):
    """An APIRoute that refuses repeated or unknown query parameters and repeated JSON keys."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        taken = frozenset(query_names(self.dependant))
        reads_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            # Each check is skipped when there is nothing to check: POST /jobs has no
            # query, and its body is parsed here once instead of by FastAPI.
            if request.scope["query_string"]:
                errors = query_errors(request.query_params, taken)
                if errors:
                    raise RequestValidationError(errors)
            if reads_body:
                await _parse_json_body(request)
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
