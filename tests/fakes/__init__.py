"""Fake providers for tests: local HTTP servers that answer as SendGrid and Twilio document.

Each fake runs on 127.0.0.1 on a free port, in a thread, as a context manager::

    from fakes import FakeSendGrid, FakeTwilio, Ok, Fail, RateLimited, Hang, Slow, Disconnect

    with FakeSendGrid(api_key="SG.k") as sendgrid:
        sender = SendGridSender("SG.k", email_from="a@b.test", base_url=sendgrid.base_url)
        sendgrid.set_mode(Fail(503))          # every request from now on: 503
        sendgrid.script(RateLimited(2.0), Ok())   # the next two requests, then the mode again
        sendgrid.for_recipient("x@y.test", Fail(400, message="bad"))  # always, for one recipient
        sendgrid.set_mode(Hang())             # read the request, never answer
        ...
        sendgrid.requests      # every Recorded request (method, path, headers, body, at, status)
        sendgrid.accepted      # the messages answered with success
        sendgrid.peak_rate(1.0)   # most requests seen within any 1-second window

Modes (``fakes.modes``): ``Ok()``; ``Fail(status, code=None, message=None,
field=None, retry_after=None)``; ``RateLimited(reset_in)``; ``Hang(limit)``
(read the request, then say nothing: a timeout after the request was sent);
``Disconnect()`` (read it, close the connection); ``Slow(delay, then)``;
``Answer(status, body, headers)`` (exactly that, e.g. a load balancer's page).
Precedence: ``for_recipient`` > ``script`` > ``set_mode`` (initially ``Ok()``).
Requests with a bad path, bad credentials or an invalid body are answered as
the provider would, whatever the mode. ``stop()`` (or leaving the ``with``)
ends hangs and closes every connection. ``errors`` lists exceptions the fake
itself raised (a test should find it empty).

Import as ``fakes`` (pytest puts ``tests/`` on ``sys.path``). Provider details:
``fakes.sendgrid`` (also ``limit(count, per)``: a real rate limit) and
``fakes.twilio``.
"""

from fakes.http import (
    Answer,
    Disconnect,
    Fail,
    FakeProvider,
    Hang,
    Mode,
    Ok,
    RateLimited,
    Recorded,
    Slow,
)
from fakes.sendgrid import FakeSendGrid
from fakes.twilio import FakeTwilio

__all__ = [
    "Answer",
    "Disconnect",
    "Fail",
    "FakeProvider",
    "FakeSendGrid",
    "FakeTwilio",
    "Hang",
    "Mode",
    "Ok",
    "RateLimited",
    "Recorded",
    "Slow",
]
