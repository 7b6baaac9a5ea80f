"""A webhook receiver on 127.0.0.1 that counts deliveries per job, for crash and outage tests.

Every request is recorded (with its ``webhook-id``, the job id) *before* it is
answered, so a delivery counts once the receiver has the message, answered or
not: that is the moment a provider has taken it. ``Ok()`` answers 200;
``Fail(status)`` that status; ``Hang(limit)`` holds the answer back. A test that
must act between "received" and "answered" sets ``before_answer``: it runs on the
server thread after the request is recorded and before its answer goes out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from fakes.http import FakeProvider
from fakes.modes import Answer, Fail, Mode, Ok, RateLimited, Recorded


class FakeReceiver(FakeProvider):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        #: Runs after a request is recorded and before it is answered (server thread).
        self.before_answer: Callable[[Recorded], None] | None = None

    @property
    def url(self) -> str:
        """Where jobs should send their webhooks."""
        return f"{self.base_url}/hook"

    def deliveries(self) -> Counter[str]:
        """How many times each job (by its webhook-id) reached the receiver."""
        return Counter(r.headers.get("webhook-id", "") for r in self.requests)

    def record(self, request: Recorded) -> Mode | Answer:
        action = super().record(request)
        hook = self.before_answer
        if hook is not None:
            hook(request)
        return action

    def route(self, request: Recorded) -> Answer | None:
        return None

    def recipient_of(self, request: Recorded) -> str | None:
        return request.path

    def render(self, mode: Ok | Fail | RateLimited, request: Recorded) -> Answer:
        if isinstance(mode, Ok):
            return Answer(200, b"ok")
        if isinstance(mode, Fail):
            return Answer(mode.status)
        return Answer(429, headers={"Retry-After": str(max(1, round(mode.reset_in)))})
