"""Tenant isolation, route by route: no globex key reaches anything of acme's.

Both businesses are seeded once per backend with data of every kind (jobs in
every state with communicationIds, an idempotency key, attempts, suppressions,
audit events, firing alerts, delivery events). Then, for every route the app
has (API and dashboard), each globex role that holds the route's permission
tries to read or change acme's objects: by id, by communicationId, by
recipient, by a cursor taken from an acme listing, by naming ``businessId=acme``
and through exports, live stats and bulk actions. The answers must be what
DESIGN §3 promises (another business's job is a 404 exactly as if it did not
exist; naming another business is a 403; lists and counts hold none of acme's),
and acme's rows in the database must be exactly as seeded after every test.

``test_every_route_has_an_isolation_case`` fails when a route is added without
a case here (or a line in ``NO_TENANT_DATA`` saying why it needs none).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import psycopg
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from psycopg import sql
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from starlette.routing import Mount

from commq.adapters.store import tables
from commq.adapters.store.sql_alert_store import SqlAlertStore
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.domain.alerts import Alert, AlertRuleKind, AlertStatus
from commq.domain.delivery import DeliveryEvent, EventEffect
from commq.domain.jobs import Channel, DeliveryStatus
from commq.domain.permissions import Permission, Role, allows
from commq.domain.suppression import Suppression, SuppressionReason
from commq.entrypoints.alerting import alert_service
from commq.entrypoints.api.access import PermissionDependency
from commq.entrypoints.api.app import create_app
from commq.entrypoints.dashboard.viewer import PageAccess
from commq.entrypoints.settings import AlertSettings, Settings
from dashboard.conftest import csrf_of, sign_in

from .conftest import Api, base_settings, running, with_providers

#: The seeded world lives in the module's event loop, so its tests run there too.
in_module_loop = pytest.mark.asyncio(loop_scope="module")

Q = "/communication-queue"

#: Routes that hold no tenant data, each with the reason; every other route needs a case.
NO_TENANT_DATA = {
    # Probes and Prometheus text: process-wide figures, no job, business or recipient.
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    # The API's description and its viewers (static pages and their scripts).
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/oauth2-redirect",
    "GET /redoc",
    "MOUNT /docs/assets",
    # Provider callbacks carry no API key: the provider's signature is the authentication
    # (tests/api/test_delivery_webhooks.py); a tenant's key gains nothing there.
    "POST /webhooks/sendgrid",
    "POST /webhooks/twilio",
    # Signing in and out shows no business's data; the session then meets the pages below.
    "GET /dashboard/login",
    "POST /dashboard/login",
    "POST /dashboard/logout",
    "MOUNT /dashboard/static",
}

GLOBEX_ROLES = {
    "globex_admin": Role.ADMIN,
    "globex_manager": Role.MANAGER,
    "globex_support": Role.SUPPORT,
    "globex_producer": Role.PRODUCER,
}
#: A webhook the SSRF guard refuses (loopback): the job fails at its first attempt.
REFUSED_HOOK = "http://127.0.0.1:9/{business}-hook"
STATUSES = ("pending", "processing", "failed", "completed", "cancelled")


# ---------------------------------------------------------------- the seeded world


@dataclass
class Tenant:
    """What one business was seeded with."""

    name: str
    #: The business's jobs by what they show: pending, scheduled, processing, failed,
    #: completed (delivered), bounced (its recipient then suppressed), cancelled.
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppressed: list[str] = field(default_factory=list)
    #: A job deleted by the business's admin: gone, but named by an audit event.
    deleted: str = ""

    @property
    def communication_id(self) -> str:
        return f"{self.name}-order-1"

    @property
    def idempotency_key(self) -> str:
        return f"{self.name}-welcome-1"

    @property
    def ids(self) -> list[str]:
        return [job["id"] for job in self.jobs.values()]

    @property
    def markers(self) -> set[str]:
        """Text that only this business's data contains: seeing it anywhere is a leak."""
        recipients = {job["recipient"] for job in self.jobs.values()}
        return {*self.ids, self.deleted, *recipients, *self.suppressed, self.communication_id}


@dataclass
class World:
    """The app over one backend, acme and globex seeded, and acme's rows as seeded."""

    api: Api
    acme: Tenant
    globex: Tenant
    permissions: dict[str, Permission | None]
    acme_rows: dict[str, list[Any]]
    sessions: dict[str, tuple[httpx.AsyncClient, str]] = field(default_factory=dict)

    async def call(self, who: str, method: str, url: str, **options: Any) -> httpx.Response:
        """One request with ``who``'s key."""
        return await self.api.client.request(method, url, headers=self.api.as_(who), **options)

    async def acme_cursor(self, url: str, **params: Any) -> str:
        """The next-page cursor acme's admin got from its own first page of ``url``."""
        response = await self.call("acme_admin", "GET", url, params={**params, "limit": 1})
        assert response.status_code == 200, response.text
        if "Link" in response.headers:
            link = response.headers["Link"].split(";")[0].strip("<>")
            [cursor] = parse_qs(urlsplit(link).query)["cursor"]
            return cursor
        assert isinstance(response.json(), dict), (response.headers, response.text)
        cursor = response.json()["nextCursor"]
        assert cursor, f"acme needs two entries in {url} for a cursor"
        return str(cursor)

    async def session(self, who: str) -> tuple[httpx.AsyncClient, str]:
        """A browser signed in to the dashboard with ``who``'s key, and its CSRF token."""
        if who not in self.sessions:
            client = httpx.AsyncClient(
                transport=self.api.client._transport, base_url="http://commq.test"
            )
            signed = await sign_in(client, self.api.keys[who])
            assert signed.status_code == 303, signed.text
            page = await client.get("/dashboard/jobs")
            self.sessions[who] = (client, csrf_of(page.text))
        return self.sessions[who]


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    tmp_path = tmp_path_factory.mktemp("isolation")
    with _database(request, tmp_path) as url:
        async with running(_settings(url, tmp_path)) as api:
            for who, role in GLOBEX_ROLES.items():
                if who not in api.keys:
                    _, api.keys[who] = await api.container.keys.create(who, role, "globex")
            acme, globex = await _seed(api, "acme"), await _seed(api, "globex")
            await _fire_alerts(api)
            permissions = route_permissions(api.client._transport.app)  # type: ignore[attr-defined]
            rows = await acme_rows(api, acme)
            built = World(api, acme, globex, permissions, rows)
            try:
                yield built
            finally:
                for client, _ in built.sessions.values():
                    await client.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def w(world: World) -> AsyncIterator[World]:
    """The seeded world; after the test, acme's rows must be exactly as seeded."""
    yield world
    now, before = await acme_rows(world.api, world.acme), world.acme_rows
    world.acme_rows = now  # so only the test that changed them reports it, not every later one
    assert now == before, "acme's data changed"


def _settings(url: str, tmp_path: Path) -> Settings:
    # Webhooks through the real sender so a loopback hook fails; alerts per business,
    # evaluated by hand (the interval keeps the app's own rounds away from the test).
    settings = with_providers(
        base_settings(url, tmp_path),
        "email=outbox,sms=outbox,webhook=webhook",
        session_secret="isolation-test-secret",
    )
    alerts = AlertSettings(failed_jobs=0, per_business=True, interval=3600)
    return replace(settings, alerts=alerts)


@contextmanager
def _database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this module's own on the parameter's backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "commq.db"
        path.write_bytes(template.read_bytes())
        yield f"sqlite:///{path}"
        return
    server: str = request.getfixturevalue("postgres_server")
    template_name: str = request.getfixturevalue("_postgres_template")
    name = f"commq_iso_{secrets.token_hex(6)}"
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(create.format(sql.Identifier(name), sql.Identifier(template_name)))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


async def _seed(api: Api, business: str) -> Tenant:
    """Jobs in every state, attempts, delivery events, suppressions and audit events."""
    tenant = Tenant(business)
    admin = f"{business}_admin"
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    async def job(label: str, **fields: Any) -> None:
        fields.setdefault("communicationId", tenant.communication_id)
        tenant.jobs[label] = await api.enqueue(admin, **fields)

    hook = REFUSED_HOOK.format(business=business)
    await job("failed", channel="webhook", recipient=hook, payload={"body": {"n": 1}})
    await job("completed", recipient=f"{business}-carla@example.com")
    await job("bounced", recipient=f"{business}-bob@example.com")
    await api.container.process_pass(business)  # None would also send the other's jobs
    await _deliver(api, tenant)
    await job(
        "pending", recipient=f"{business}-pat@example.com", idempotencyKey=tenant.idempotency_key
    )
    await job("scheduled", recipient=f"{business}-sam@example.com", runAt=later)
    await job("cancelled", recipient=f"{business}-cy@example.com")
    cancelled = await api.client.post(
        f"{Q}/{tenant.jobs['cancelled']['id']}/cancel", headers=api.as_(admin)
    )
    assert cancelled.status_code == 200, cancelled.text
    gone = await api.enqueue(admin, recipient=f"{business}-gone@example.com", runAt=later)
    deleted = await api.client.delete(f"{Q}/{gone['id']}", headers=api.as_(admin))
    assert deleted.status_code == 200, deleted.text
    tenant.deleted = gone["id"]
    await job("processing", recipient=f"{business}-pete@example.com", runAt=later)
    await _hold_as_processing(api, tenant.jobs["processing"]["id"])
    for label, seeded in tenant.jobs.items():
        stored = await api.client.get(f"{Q}/{seeded['id']}", headers=api.as_(admin))
        tenant.jobs[label] = stored.json()
    assert [tenant.jobs[s]["status"] for s in ("failed", "completed", "bounced")] == [
        "failed",
        "completed",
        "completed",
    ]
    return tenant


async def _deliver(api: Api, tenant: Tenant) -> None:
    """A delivered event for one job; a hard bounce for another, suppressing its recipient."""
    bounced = tenant.jobs["bounced"]
    events = [
        DeliveryEvent(
            "outbox", f"{tenant.name}-ev-1", tenant.jobs["completed"]["id"], None,
            DeliveryStatus.DELIVERED,
        ),
        DeliveryEvent(
            "outbox", f"{tenant.name}-ev-2", bounced["id"], None,
            DeliveryStatus.BOUNCED, SuppressionReason.HARD_BOUNCE,
        ),
    ]  # fmt: skip
    effects = await api.container.deliveries.apply(events)
    assert effects[EventEffect.APPLIED] == 2, effects
    # A second entry, so acme's suppression list has a second page (and a cursor).
    stop = Suppression(
        tenant.name, Channel.SMS, f"+1415555{len(tenant.name):04d}", SuppressionReason.STOP, None
    )
    await SqlSuppressionStore(api.container.engine).add_suppression(stop)
    tenant.suppressed = [bounced["recipient"], stop.recipient]


async def _hold_as_processing(api: Api, job_id: str) -> None:
    """The job as a worker holds it mid-send (a lease no maintenance round will expire)."""
    now = datetime.now(UTC)
    held = (
        update(tables.jobs)
        .where(tables.jobs.c.id == job_id)
        .values(
            status="processing",
            started_at=now,
            lease_token=str(uuid.uuid4()),
            lease_expires_at=now + timedelta(days=1),
            worker_id="isolation-test",
        )
    )
    async with api.container.engine.begin() as conn:
        await conn.execute(held)


async def _fire_alerts(api: Api) -> None:
    """One alert round (each business has a failed job), plus an alert about everyone."""
    await alert_service(api.container).evaluate()
    now = datetime.now(UTC)
    everyone = Alert(
        str(uuid.uuid4()), AlertRuleKind.FAILED_JOBS, None, AlertStatus.FIRING, 0, 2,
        "2 jobs have failed", now, now,
    )  # fmt: skip
    await SqlAlertStore(api.container.engine).save_alert(everyone)
    firing = await api.client.get(f"{Q}/alerts", headers=api.as_("acme_admin"))
    assert [a["businessId"] for a in firing.json()["items"]] == ["acme"], firing.text


async def acme_rows(api: Api, acme: Tenant) -> dict[str, list[Any]]:
    """Every row of acme's, and every audit event naming one of acme's jobs."""
    t = tables
    queries = {
        "jobs": select(t.jobs).where(t.jobs.c.business_id == "acme"),
        "attempts": select(t.attempts).where(t.attempts.c.business_id == "acme"),
        "audit": select(t.audit_events).where(
            (t.audit_events.c.business_id == "acme")
            | t.audit_events.c.job_id.in_([*acme.ids, acme.deleted])
        ),
        "suppressions": select(t.suppressions).where(t.suppressions.c.business_id == "acme"),
        "alerts": select(t.alerts).where(t.alerts.c.scope == "acme"),
        "deliveries": select(t.delivery_events).where(t.delivery_events.c.job_id.in_(acme.ids)),
    }
    async with api.container.engine.connect() as conn:
        return {
            name: sorted(tuple(row) for row in (await conn.execute(query)).all())
            for name, query in queries.items()
        }


async def globex_counts(w: World) -> dict[str, int]:
    """globex's jobs by status, read from the database."""
    query = select(tables.jobs.c.status).where(tables.jobs.c.business_id == "globex")
    async with w.api.container.engine.connect() as conn:
        found = [row[0] for row in (await conn.execute(query)).all()]
    return {status: found.count(status) for status in STATUSES}


# ---------------------------------------------------------------- the route table


def route_keys(app: FastAPI) -> dict[str, Any]:
    """Every route of the app as ``"METHOD /path"`` (``WS``, ``MOUNT`` for those kinds)."""
    found: dict[str, Any] = {}
    for route in _flattened(app.routes):
        if isinstance(route, APIWebSocketRoute):
            found[f"WS {route.path}"] = route
        elif isinstance(route, Mount):
            found[f"MOUNT {route.path}"] = route
        else:
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method != "HEAD":  # Starlette's own pages answer HEAD beside GET
                    found[f"{method} {route.path}"] = route
    return found


def _flattened(routes: list[Any]) -> list[Any]:
    # FastAPI keeps an included router as one entry holding that router's routes.
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat += _flattened(included.routes) if included is not None else [route]
    return flat


def route_permissions(app: FastAPI) -> dict[str, Permission | None]:
    """The permission each route checks (None: it checks none)."""
    permissions: dict[str, Permission | None] = {}
    for key, route in route_keys(app).items():
        dependant = getattr(route, "dependant", None)  # mounts and Starlette routes have none
        calls = [d.call for d in dependant.dependencies] if dependant is not None else []
        checks = [c.permission for c in calls if isinstance(c, PermissionDependency | PageAccess)]
        permissions[key] = checks[0] if checks else None
    return permissions


Case = Callable[[World, str], Awaitable[None]]
CASES: dict[str, Case] = {}


def case(*routes: str) -> Callable[[Case], Case]:
    """Register the isolation case of ``routes``; it runs once per globex role allowed."""

    def register(check: Case) -> Case:
        for route in routes:
            assert route not in CASES, f"two cases for {route}"
            CASES[route] = check
        return check

    return register


# ---------------------------------------------------------------- what each answer must be


def assert_forbidden(response: httpx.Response) -> None:
    """Naming another business is refused, not silently narrowed (design-notes, API)."""
    assert response.status_code == 403, response.text


def assert_nothing_of_acme(w: World, text: str, typed: Any = ()) -> None:
    """No acme id, recipient or communicationId in ``text``, but what globex ``typed``
    itself (a page echoes its filter values back into the form)."""
    echoed = {str(value) for value in typed}
    leaked = sorted(marker for marker in w.acme.markers - echoed if marker in text)
    assert not leaked, f"acme's {leaked} shown to globex"


def assert_only_globex(w: World, response: httpx.Response) -> None:
    """A list (or ``{"items": [...]}``, or a batch's ``{"jobs": [...]}``) of globex's only."""
    assert response.status_code in (200, 201), response.text
    body = response.json()
    listed = body if isinstance(body, list) else body.get("items", body.get("jobs"))
    assert all(item["businessId"] == "globex" for item in listed), listed
    assert_nothing_of_acme(w, response.text)


async def assert_foreign_cursor_leaks_nothing(
    w: World, who: str, url: str, cursor: str, **params: Any
) -> None:
    """acme's cursor may be refused (422) or read as a position; it never yields acme's."""
    response = await w.call(who, "GET", url, params={**params, "cursor": cursor})
    if response.status_code == 422:
        return
    assert_only_globex(w, response)


async def assert_job_unknown(w: World, who: str, method: str, suffix: str = "") -> None:
    """Each acme job answers exactly as an id that never existed does: 404, same words."""
    never = str(uuid.uuid4())
    unknown = await w.call(who, method, f"{Q}/{never}{suffix}")
    assert unknown.status_code == 404, unknown.text
    for label, job in w.acme.jobs.items():
        response = await w.call(who, method, f"{Q}/{job['id']}{suffix}")
        assert response.status_code == 404, f"{label}: {response.text}"
        assert response.text.replace(job["id"], never) == unknown.text, label


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


# ---------------------------------------------------------------- API: one job


@case(f"GET {Q}/{{job_id}}")
async def reading_an_acme_job_by_id_is_404(w: World, who: str) -> None:
    await assert_job_unknown(w, who, "GET")


@case(f"POST {Q}/{{job_id}}/retry")
async def retrying_an_acme_job_is_404_whatever_its_state(w: World, who: str) -> None:
    # Not 409 for acme's pending job: that would tell globex the job exists.
    await assert_job_unknown(w, who, "POST", "/retry")


@case(f"POST {Q}/{{job_id}}/cancel")
async def cancelling_an_acme_job_is_404_whatever_its_state(w: World, who: str) -> None:
    await assert_job_unknown(w, who, "POST", "/cancel")


@case(f"DELETE {Q}/{{job_id}}")
async def deleting_an_acme_job_is_404_even_while_it_is_processing(w: World, who: str) -> None:
    await assert_job_unknown(w, who, "DELETE")


@case(f"GET {Q}/by-communication/{{communicationId:path}}")
async def acmes_communication_has_no_jobs_for_globex(w: World, who: str) -> None:
    url = f"{Q}/by-communication/{quote(w.acme.communication_id, safe='')}"
    response = await w.call(who, "GET", url)
    assert response.status_code == 200, response.text
    assert response.json() == []
    assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))
    own = await w.call(who, "GET", f"{Q}/by-communication/{w.globex.communication_id}")
    assert_only_globex(w, own)
    assert len(own.json()) == len(w.globex.jobs)


# ---------------------------------------------------------------- API: enqueue


def _job_body(**fields: Any) -> dict[str, Any]:
    body = {
        "channel": "email",
        "recipient": "gina@example.com",
        "payload": {"subject": "Hi", "text": "hi"},
    }
    return {**body, "runAt": (datetime.now(UTC) + timedelta(days=2)).isoformat(), **fields}


@case(f"POST {Q}/jobs")
async def enqueueing_never_reaches_acme(w: World, who: str) -> None:
    named = await w.call(who, "POST", f"{Q}/jobs", json=_job_body(businessId="acme"))
    assert_forbidden(named)
    # acme's idempotency key names nothing in globex: a new globex job, not acme's.
    reused = await w.call(
        who, "POST", f"{Q}/jobs", json=_job_body(idempotencyKey=w.acme.idempotency_key)
    )
    assert reused.status_code in (200, 201), reused.text
    assert reused.json()["businessId"] == "globex"
    assert reused.json()["id"] not in w.acme.ids


@case(f"POST {Q}/jobs/batch")
async def enqueueing_a_batch_never_reaches_acme(w: World, who: str) -> None:
    named = {"jobs": [_job_body(), _job_body(businessId="acme")]}
    assert_forbidden(await w.call(who, "POST", f"{Q}/jobs/batch", json=named))
    reused = {"jobs": [_job_body(idempotencyKey=w.acme.idempotency_key), _job_body()]}
    response = await w.call(who, "POST", f"{Q}/jobs/batch", json=reused)
    assert response.status_code == 201, response.text
    assert_only_globex(w, response)


# ---------------------------------------------------------------- API: lists and exports


@case(f"GET {Q}/jobs")
async def job_lists_hold_only_globex_jobs_whatever_the_filter(w: World, who: str) -> None:
    url = f"{Q}/jobs"
    acme_failed = w.acme.jobs["failed"]
    for params in (
        {"limit": 500},
        {"recipient": w.acme.jobs["pending"]["recipient"]},
        {"recipient": acme_failed["recipient"], "status": "failed"},
        {"communicationId": w.acme.communication_id},
        {"q": acme_failed["lastError"][:40]},
    ):
        assert_only_globex(w, await w.call(who, "GET", url, params=params))
    assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))
    await assert_foreign_cursor_leaks_nothing(w, who, url, await w.acme_cursor(url))


@case(f"GET {Q}/pending")
async def the_pending_list_holds_only_globex_jobs(w: World, who: str) -> None:
    url = f"{Q}/pending"
    response = await w.call(who, "GET", url, params={"limit": 500})
    assert_only_globex(w, response)
    assert len(response.json()) == (await globex_counts(w))["pending"]
    assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))
    await assert_foreign_cursor_leaks_nothing(w, who, url, await w.acme_cursor(url))


@case(f"GET {Q}/failed")
async def the_failed_list_holds_only_globex_jobs(w: World, who: str) -> None:
    url = f"{Q}/failed"
    for params in ({"limit": 500}, {"recipient": w.acme.jobs["failed"]["recipient"]}):
        assert_only_globex(w, await w.call(who, "GET", url, params=params))
    assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))


@case(f"GET {Q}/failed/export.csv", f"GET {Q}/jobs/export.csv")
async def csv_exports_hold_only_globex_jobs(w: World, who: str) -> None:
    for url in (f"{Q}/failed/export.csv", f"{Q}/jobs/export.csv"):
        whole = await w.call(who, "GET", url)
        assert {row["businessId"] for row in csv_rows(whole)} == {"globex"}
        assert_nothing_of_acme(w, whole.text)
        for params in (
            {"recipient": w.acme.jobs["failed"]["recipient"]},
            {"communicationId": w.acme.communication_id},
        ):
            assert csv_rows(await w.call(who, "GET", url, params=params)) == []
        assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))


# ---------------------------------------------------------------- API: bulk actions


async def _bulk_touches_no_acme_job(
    w: World, who: str, url: str, acme_job: dict[str, Any], globex_matches: int
) -> None:
    filters = (
        {"ids": [acme_job["id"]]},
        {"recipient": acme_job["recipient"]},
        {"communicationId": w.acme.communication_id, "ids": w.acme.ids},
    )
    for body in filters:
        for dry_run in (True, False):
            response = await w.call(who, "POST", url, json={**body, "dryRun": dry_run})
            assert response.status_code == 200, response.text
            assert response.json()["count"] == 0, (body, dry_run, response.json())
    everything = await w.call(who, "POST", url, json={"dryRun": True})
    assert everything.json()["count"] == globex_matches, everything.text
    named = {"businessId": "acme", "dryRun": True}
    assert_forbidden(await w.call(who, "POST", url, json=named))


@case(f"POST {Q}/failed/retry")
async def bulk_retry_counts_and_retries_no_acme_job(w: World, who: str) -> None:
    globex_failed = (await globex_counts(w))["failed"]
    url = f"{Q}/failed/retry"
    await _bulk_touches_no_acme_job(w, who, url, w.acme.jobs["failed"], globex_failed)


@case(f"POST {Q}/pending/cancel")
async def bulk_cancel_counts_and_cancels_no_acme_job(w: World, who: str) -> None:
    globex_pending = (await globex_counts(w))["pending"]
    url = f"{Q}/pending/cancel"
    await _bulk_touches_no_acme_job(w, who, url, w.acme.jobs["pending"], globex_pending)


@case(f"POST {Q}/process-now")
async def process_now_sends_no_acme_job(w: World, who: str) -> None:
    # acme's due pending job stays pending: the fixture compares acme's rows afterwards.
    response = await w.call(who, "POST", f"{Q}/process-now")
    assert response.status_code == 200, response.text
    assert_forbidden(await w.call(who, "POST", f"{Q}/process-now", params={"businessId": "acme"}))


# ---------------------------------------------------------------- API: stats and live stats


def assert_globex_figures(stats: dict[str, Any], counts: dict[str, int]) -> None:
    assert {status: stats[status] for status in STATUSES} == counts, stats


@case(f"GET {Q}/stats")
async def stats_count_only_globex_jobs(w: World, who: str) -> None:
    response = await w.call(who, "GET", f"{Q}/stats")
    assert response.status_code == 200, response.text
    assert_globex_figures(response.json(), await globex_counts(w))
    assert_forbidden(await w.call(who, "GET", f"{Q}/stats", params={"businessId": "acme"}))


@case(f"GET {Q}/stats/history")
async def the_history_sums_only_globex_jobs(w: World, who: str) -> None:
    url = f"{Q}/stats/history"
    since = {"from": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    response = await w.call(who, "GET", url, params=since)
    assert response.status_code == 200, response.text
    points = [p for series in response.json()["series"] for p in series["points"]]
    async with w.api.container.engine.connect() as conn:
        mine = select(tables.jobs.c.id).where(tables.jobs.c.business_id == "globex")
        globex_jobs = len((await conn.execute(mine)).all())
    # The rollups keep counting the job globex deleted while seeding.
    assert sum(p["enqueued"] for p in points) == globex_jobs + 1
    assert_forbidden(await w.call(who, "GET", url, params={**since, "businessId": "acme"}))


@case(f"GET {Q}/stats/stream")
async def the_stats_stream_counts_only_globex_jobs(w: World, who: str) -> None:
    app = w.api.client._transport.app  # type: ignore[attr-defined]
    status, first = await first_sse_event(app, w.api.keys[who])
    assert status == 200
    assert first is not None
    assert_globex_figures(first, await globex_counts(w))
    status, _ = await first_sse_event(app, w.api.keys[who], "businessId=acme")
    assert status == 403


@case(f"WS {Q}/ws")
async def the_stats_socket_counts_only_globex_jobs(w: World, who: str) -> None:
    app = w.api.client._transport.app  # type: ignore[attr-defined]
    closed, first = await first_socket_message(app, w.api.keys[who])
    assert closed is None
    assert first is not None
    assert_globex_figures(first, await globex_counts(w))
    closed, first = await first_socket_message(app, w.api.keys[who], "businessId=acme")
    assert (closed, first) == (4403, None)


# ---------------------------------------------------------------- API: audit, alerts, suppressions


def assert_only_globex_events(w: World, response: httpx.Response) -> None:
    # Not assert_only_globex: globex's own bulk events rightly record the acme ids and
    # recipients globex put in its filters (the cases above do), which reveals nothing.
    assert response.status_code == 200, response.text
    for event in response.json()["items"]:
        assert event["businessId"] == "globex", event
        assert event["jobId"] not in w.acme.ids, event


@case(f"GET {Q}/audit")
async def the_audit_trail_holds_only_globex_events(w: World, who: str) -> None:
    url = f"{Q}/audit"
    assert_only_globex_events(w, await w.call(who, "GET", url, params={"limit": 500}))
    by_job = await w.call(who, "GET", url, params={"jobId": w.acme.jobs["cancelled"]["id"]})
    assert by_job.status_code == 200, by_job.text
    assert by_job.json()["items"] == []
    assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))
    foreign = await w.call(who, "GET", url, params={"cursor": await w.acme_cursor(url)})
    if foreign.status_code != 422:  # refusing acme's cursor is as good as reading it as globex's
        assert_only_globex_events(w, foreign)


@case(f"GET {Q}/alerts")
async def alerts_are_only_globexs_own(w: World, who: str) -> None:
    # Neither acme's alert nor the one about every business together.
    response = await w.call(who, "GET", f"{Q}/alerts")
    assert_only_globex(w, response)
    assert [a["rule"] for a in response.json()["items"]] == ["failedJobs"]
    assert_forbidden(await w.call(who, "GET", f"{Q}/alerts", params={"businessId": "acme"}))


@case(f"GET {Q}/suppressions")
async def the_suppression_list_holds_only_globexs_recipients(w: World, who: str) -> None:
    url = f"{Q}/suppressions"
    response = await w.call(who, "GET", url, params={"limit": 500})
    assert_only_globex(w, response)
    assert len(response.json()["items"]) == len(w.globex.suppressed)
    assert_forbidden(await w.call(who, "GET", url, params={"businessId": "acme"}))
    await assert_foreign_cursor_leaks_nothing(w, who, url, await w.acme_cursor(url))


async def _acme_recipients_unknown(w: World, who: str, method: str) -> None:
    never = "nobody-ever@example.com"
    unknown = await w.call(who, method, f"{Q}/suppressions/{never}")
    assert unknown.status_code == 404, unknown.text
    for recipient in w.acme.suppressed:
        response = await w.call(who, method, f"{Q}/suppressions/{quote(recipient)}")
        assert response.status_code == 404, response.text
        assert response.text.replace(recipient, never) == unknown.text
        named = {"businessId": "acme"}
        url = f"{Q}/suppressions/{quote(recipient)}"
        assert_forbidden(await w.call(who, method, url, params=named))


@case(f"GET {Q}/suppressions/{{recipient:path}}")
async def acmes_suppressed_recipient_is_not_suppressed_for_globex(w: World, who: str) -> None:
    await _acme_recipients_unknown(w, who, "GET")


@case(f"DELETE {Q}/suppressions/{{recipient:path}}")
async def removing_acmes_suppression_is_404_and_keeps_it(w: World, who: str) -> None:
    await _acme_recipients_unknown(w, who, "DELETE")


# ---------------------------------------------------------------- live stats over raw ASGI
# httpx's ASGITransport waits for a whole response, and a stream never ends: these drive
# the app directly in this event loop, read the first message, then hang up.


def _scope(kind: str, path: str, key: str, query: str) -> dict[str, Any]:
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"commq.test"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("commq.test", 80),
        "subprotocols": [],
        "state": {},
    }


async def _drive(
    app: Any, scope: dict[str, Any], opening: dict[str, Any], closing: dict[str, Any],
    first: Callable[[dict[str, Any]], bool],
) -> list[dict[str, Any]]:  # fmt: skip
    """Run ``app`` until ``first`` accepts a message it sent; returns what it sent."""
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    opened = False

    async def receive() -> dict[str, Any]:
        nonlocal opened
        if not opened:
            opened = True
            return opening
        await done.wait()
        return closing

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if first(message):
            done.set()

    task = asyncio.create_task(app(scope, receive, send))
    async with asyncio.timeout(10):
        await asyncio.wait(
            [task, asyncio.ensure_future(done.wait())], return_when="FIRST_COMPLETED"
        )
        done.set()
        await task
    return sent


async def first_sse_event(app: Any, key: str, query: str = "") -> tuple[int, dict[str, Any] | None]:
    """The stream's status and its first ``stats`` event (None: none came)."""
    sent = await _drive(
        app,
        _scope("http", f"{Q}/stats/stream", key, query),
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
        lambda m: b"event: stats" in m.get("body", b"") or not m.get("more_body", True),
    )
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    for message in sent:
        for line in message.get("body", b"").decode().splitlines():
            if line.startswith("data: "):
                return status, json.loads(line.removeprefix("data: "))
    return status, None


async def first_socket_message(
    app: Any, key: str, query: str = ""
) -> tuple[int | None, dict[str, Any] | None]:
    """The close code before any message (None: it stayed open), and the first message."""
    sent = await _drive(
        app,
        _scope("websocket", f"{Q}/ws", key, query),
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
        lambda m: m["type"] in ("websocket.send", "websocket.close"),
    )
    for message in sent:
        if message["type"] == "websocket.close":
            return message.get("code", 1000), None
        if message["type"] == "websocket.send":
            return None, json.loads(message["text"])
    return None, None


# ---------------------------------------------------------------- dashboard pages


async def _page(w: World, who: str, url: str, **params: Any) -> httpx.Response:
    client, _ = await w.session(who)
    # No ``params={}``: httpx would drop the query already in ``url``.
    return await client.get(url, params=params or None)


def assert_page_without_acme(w: World, response: httpx.Response, typed: Any = ()) -> None:
    assert response.status_code == 200, response.text
    assert_nothing_of_acme(w, response.text, typed)


@case("GET /dashboard")
async def the_overview_shows_nothing_of_acme(w: World, who: str) -> None:
    for params in ({}, {"businessId": "acme"}):
        assert_page_without_acme(w, await _page(w, who, "/dashboard", **params))


@case("GET /dashboard/jobs")
async def the_jobs_page_lists_no_acme_job_whatever_the_filter(w: World, who: str) -> None:
    acme_cursor = await w.acme_cursor(f"{Q}/jobs")
    for params in (
        {},
        {"status": "failed"},
        {"recipient": w.acme.jobs["pending"]["recipient"]},
        {"communicationId": w.acme.communication_id},
        {"businessId": "acme"},
        {"cursor": acme_cursor},
    ):
        response = await _page(w, who, "/dashboard/jobs", **params)
        assert_page_without_acme(w, response, params.values())


async def _dashboard_job_unknown(w: World, who: str, url: Callable[[str], str]) -> None:
    never = str(uuid.uuid4())
    unknown = await _page(w, who, url(never))
    assert unknown.status_code == 404, unknown.text
    for label, job in w.acme.jobs.items():
        response = await _page(w, who, url(job["id"]))
        assert response.status_code == 404, f"{label}: {response.text}"
        assert response.text.replace(job["id"], never) == unknown.text, label


@case("GET /dashboard/jobs/{job_id}")
async def an_acme_job_page_is_the_same_404_as_no_job(w: World, who: str) -> None:
    await _dashboard_job_unknown(w, who, lambda job_id: f"/dashboard/jobs/{job_id}")


@case("GET /dashboard/open-job")
async def opening_an_acme_job_id_is_the_same_404_as_no_job(w: World, who: str) -> None:
    await _dashboard_job_unknown(w, who, lambda job_id: f"/dashboard/open-job?id={job_id}")


@case("GET /dashboard/audit")
async def the_audit_page_shows_no_acme_event(w: World, who: str) -> None:
    # Events link to their job: no link may lead to an acme job (globex's own bulk
    # events show the acme ids globex typed as their filter, which reveals nothing).
    for params in (
        {},
        {"jobId": w.acme.jobs["cancelled"]["id"]},
        {"businessId": "acme"},
        {"cursor": await w.acme_cursor(f"{Q}/audit")},
    ):
        response = await _page(w, who, "/dashboard/audit", **params)
        assert response.status_code == 200, response.text
        linked = [job_id for job_id in w.acme.ids if f"/dashboard/jobs/{job_id}" in response.text]
        assert not linked, f"the audit page links to acme's jobs {linked}"


@case("GET /dashboard/suppressions")
async def the_suppressions_page_shows_no_acme_recipient(w: World, who: str) -> None:
    for params in (
        {},
        {"businessId": "acme"},
        {"cursor": await w.acme_cursor(f"{Q}/suppressions")},
    ):
        assert_page_without_acme(w, await _page(w, who, "/dashboard/suppressions", **params))


@in_module_loop
async def test_a_globex_session_cannot_act_on_acme_jobs_through_the_api(w: World) -> None:
    # The dashboard's buttons call the API with the session cookie and its CSRF token.
    client, csrf = await w.session("globex_admin")
    headers = {"X-CSRF-Token": csrf}
    for job in w.acme.jobs.values():
        for method, suffix in (("POST", "/retry"), ("POST", "/cancel"), ("DELETE", "")):
            response = await client.request(method, f"{Q}/{job['id']}{suffix}", headers=headers)
            assert response.status_code == 404, response.text
    for bulk in (f"{Q}/failed/retry", f"{Q}/pending/cancel"):
        response = await client.post(bulk, json={"ids": w.acme.ids}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["count"] == 0, response.text


# ---------------------------------------------------------------- the tests
# Last in the module: the parametrization below needs every case registered above.


def test_every_route_has_an_isolation_case() -> None:
    app = create_app(Settings(session_secret="isolation-test-secret"), run_worker=False)
    routes = set(route_keys(app))
    uncovered = routes - set(CASES) - NO_TENANT_DATA
    assert not uncovered, f"routes without a tenant-isolation case here: {sorted(uncovered)}"
    stale = (set(CASES) | NO_TENANT_DATA) - routes
    assert not stale, f"cases or exemptions for routes the app no longer has: {sorted(stale)}"


@in_module_loop
@pytest.mark.parametrize("route", sorted(CASES))
async def test_globex_keys_reach_nothing_of_acme_through(route: str, w: World) -> None:
    permission = w.permissions[route]
    allowed = [who for who, role in GLOBEX_ROLES.items() if allows(role, permission)]
    assert allowed, f"no globex role may use {route}"
    for who in allowed:
        await CASES[route](w, who)
