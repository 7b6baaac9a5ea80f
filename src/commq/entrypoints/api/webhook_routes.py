"""POST /webhooks/{provider}: delivery-status callbacks, verified by the provider's signature.

These routes are outside /communication-queue: providers carry no API key,
their signature is the authentication. A bad or missing signature is 401 and
changes nothing; a provider whose verification key is not configured gets 503,
so it keeps the events and redelivers them once the key is set.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from commq.adapters.callbacks import SignatureError
from commq.domain.delivery import DeliveryEvent, EventEffect
from commq.entrypoints.api.dependencies import container
from commq.entrypoints.api.problems import problem
from commq.entrypoints.bootstrap import Container

router = APIRouter(prefix="/webhooks", tags=["delivery status"])
App = Annotated[Container, Depends(container)]

#: SendGrid batches events; a batch larger than this is refused (413).
MAX_CALLBACK_BYTES = 8 * 1024 * 1024


@router.post("/sendgrid", summary="SendGrid Event Webhook (signed)")
async def sendgrid(request: Request, app: App) -> JSONResponse:
    """Apply a signed batch of SendGrid events to their jobs."""
    verifier = app.callbacks.sendgrid
    if verifier is None:
        return _not_configured("COMMQ_SENDGRID_WEBHOOK_PUBLIC_KEY")
    body = await _body(request)
    if body is None:
        return problem(413, "The event batch is too large")
    try:
        events = verifier.events(request.headers, body)
    except SignatureError as exc:
        return problem(401, str(exc))
    except ValueError as exc:
        return problem(400, str(exc))
    return await _apply(app, events)


@router.post("/twilio", summary="Twilio message status callback (signed)")
async def twilio(request: Request, app: App) -> JSONResponse:
    """Apply a signed Twilio status callback to its job."""
    verifier = app.callbacks.twilio
    if verifier is None:
        return _not_configured("COMMQ_TWILIO_AUTH_TOKEN")
    body = await _body(request)
    if body is None:
        return problem(413, "The callback is too large")
    # Bytes that are not UTF-8 cannot be what Twilio signed: decoded with replacement
    # characters they fail the signature (401) rather than being judged before it.
    params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    try:
        events = verifier.events(request.headers, str(request.url), params)
    except SignatureError as exc:
        return problem(401, str(exc))
    except ValueError as exc:
        return problem(400, str(exc))
    return await _apply(app, events)


async def _apply(app: Container, events: list[DeliveryEvent]) -> JSONResponse:
    effects = await app.deliveries.apply(events)
    return JSONResponse(
        {
            "received": len(events),
            "applied": effects[EventEffect.APPLIED],
            "duplicates": effects[EventEffect.DUPLICATE],
            "stale": effects[EventEffect.STALE],
            "unknown": effects[EventEffect.UNKNOWN_JOB],
        }
    )


async def _body(request: Request) -> bytes | None:
    """The raw body (signatures cover its exact bytes), or None past the size limit."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CALLBACK_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _not_configured(variable: str) -> JSONResponse:
    return problem(503, f"Delivery callbacks of this provider are not configured ({variable})")
