"""The operations web UI at /dashboard: server-rendered pages and a small script.

``install`` adds its routes, static files and headers to the API's app and
returns the session signer, which the API's guard also accepts in place of a
Bearer key (see ``sessions``).
"""

from __future__ import annotations

from commq.entrypoints.dashboard.mount import install

__all__ = ["install"]
