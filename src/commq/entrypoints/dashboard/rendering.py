"""Jinja2 templates (autoescaped, always) and the filters the pages use."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


@functools.cache
def environment() -> Environment:
    """The template environment; every value is HTML-escaped unless marked safe."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.filters.update(when=when, age=age, percent=percent, pretty=pretty, rate=rate)
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page; ``context`` needs ``viewer`` (None on the sign-in page)."""
    context.setdefault("viewer", None)
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status)


def static_url(name: str) -> str:
    """A vendored or own asset, with the version so a new release is fetched anew."""
    return f"/dashboard/static/{name}?v={_version()}"


@functools.cache
def _version() -> str:
    try:
        return metadata.version("commq")
    except metadata.PackageNotFoundError:
        return "dev"


def when(iso: str | None) -> str:
    """An API timestamp as ``2026-05-01 12:00:03 UTC``."""
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float | None) -> str:
    """A duration as a person reads it: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f} s" if 0 < seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def percent(part: float, whole: float) -> int:
    """``part`` as a whole percentage of ``whole`` (0 when there is nothing)."""
    return round(100 * part / whole) if whole else 0


def rate(fraction: float | None) -> str:
    """A ratio from 0 to 1 as a percentage with one decimal."""
    return "—" if fraction is None else f"{100 * fraction:.1f}%"


def pretty(value: Any) -> str:
    """JSON laid out for reading (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
