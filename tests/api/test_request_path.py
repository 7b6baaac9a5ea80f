"""The API's own dependencies are coroutines: FastAPI runs a plain function dependency in
its thread pool, which costs two thread switches on every request (POST /jobs included)."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.routing import APIRoute

from commq.entrypoints.api.app import create_app
from commq.entrypoints.settings import Settings


def _calls(dependant: Any) -> list[Any]:
    found = []
    for dependency in dependant.dependencies:
        found.append(dependency.call)
        found += _calls(dependency)
    return found


def _is_coroutine(call: Any) -> bool:
    # A dependency may be a function or an instance with __call__ (PermissionDependency).
    method = None if inspect.isfunction(call) else type(call).__call__
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(method)


def test_every_api_dependency_is_a_coroutine() -> None:
    app = create_app(Settings(), run_worker=False)
    routes = [r for r in _flatten(app.routes) if isinstance(r, APIRoute)]
    checked = 0
    for route in routes:
        if not route.path.startswith("/communication-queue"):
            continue
        for call in _calls(route.dependant):
            assert _is_coroutine(call), f"{route.path}: {call!r} would run in the thread pool"
            checked += 1
    assert checked > 20


def _flatten(routes: list[Any]) -> list[Any]:
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat += _flatten(included.routes) if included is not None else [route]
    return flat
