"""The schema, its column types, and the database clock.

Times: PostgreSQL stores ``timestamptz``; SQLite stores fixed-width UTC text
``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts and compares correctly as text.
Both come back as aware UTC datetimes. Lease and schedule comparisons use
``db_now()`` / ``db_after()``, the database's clock, never this process's.

Payloads are stored as JSON text exactly as given (key order kept), not jsonb.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    literal,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from commq.adapters import fast_json
from commq.domain.jobs import AttemptOutcome, JobStatus


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: timestamptz on PostgreSQL, sortable text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return utc_text(value)
        return _aware(value).astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return utc_from_text(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


# The claim and the result write convert a handful of times per job. Both functions
# avoid datetime.replace(), which cost more than the parse or the format itself.


def utc_text(value: datetime) -> str:
    """An aware datetime as SQLite's fixed-width UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    # In UTC, isoformat() ends in exactly "+00:00".
    return _aware(value).astimezone(UTC).isoformat(" ", "microseconds")[:-6]


def _aware(value: datetime) -> datetime:
    # A naive time would be taken as this machine's local time: refused instead.
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: commq stores aware UTC times")
    return value


_UTC_TEXT_WIDTH = len("YYYY-MM-DD HH:MM:SS.ffffff")


def utc_from_text(value: str) -> datetime:
    """The aware UTC datetime of SQLite's UTC text (or of any ISO 8601 text without an offset)."""
    if len(value) == _UTC_TEXT_WIDTH:
        return datetime.fromisoformat(value + "+00:00")
    # Shorter text (a date alone parsed with "+00:00" appended comes back naive).
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as text, so it comes back exactly as it went in."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # orjson: every enqueued job writes one (the stdlib took 5 us for a small payload,
        # orjson 0.3); what orjson refuses (a lone surrogate) is written ASCII-escaped.
        return None if value is None else fast_json.dumps_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class db_now(FunctionElement[datetime]):
    """The database's current time (PostgreSQL: statement start; SQLite: 'now')."""

    type = UtcDateTime()
    inherit_cache = True
    name = "db_now"


class db_after(FunctionElement[datetime]):
    """The database's current time plus ``seconds`` (may be negative)."""

    type = UtcDateTime()
    inherit_cache = True
    name = "db_after"

    def __init__(self, seconds: float | ColumnElement[float]) -> None:
        # A column (a batch of results) gives each row its own delay.
        if not isinstance(seconds, ColumnElement):
            seconds = literal(float(seconds), Float())
        super().__init__(seconds)


# SQLite 'now' has millisecond precision; '000' pads it to the stored width.
_SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now'{}) || '000')"


@compiles(db_now)
def _pg_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "statement_timestamp()"


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return _SQLITE_NOW.format("")


@compiles(db_after)
def _pg_after(element: db_after, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() + make_interval(secs => {seconds}))"


@compiles(db_after, "sqlite")
def _sqlite_after(element: db_after, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return _SQLITE_NOW.format(f", printf('%+.6f seconds', {seconds})")


def compiled_per_dialect(element: type[FunctionElement[Any]], postgresql: str, sqlite: str) -> None:
    """Compile ``element``'s arguments into ``postgresql`` or ``sqlite``, each a template
    whose ``{}`` takes them (comma-separated)."""

    def compile_to(template: str) -> Callable[..., str]:
        def compiled(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
            return template.format(compiler.process(element.clauses, **kw))

        return compiled

    compiles(element)(compile_to(postgresql))
    compiles(element, "sqlite")(compile_to(sqlite))


class ascii_lower(FunctionElement[str]):
    """Text with only its ASCII letters lower-cased, alike on both databases: SQLite's
    lower() is ASCII-only, PostgreSQL's follows the locale unless asked for "C"."""

    type = Text()
    inherit_cache = True
    name = "ascii_lower"


compiled_per_dialect(ascii_lower, 'lower({} COLLATE "C")', "lower({})")


def sql_status(status: JobStatus | AttemptOutcome) -> ColumnElement[str]:
    """A status as an SQL literal: partial indexes are only used for literal predicates."""
    return literal_column(f"'{status.value}'", String())


_PENDING = "status = 'pending'"
_PROCESSING = "status = 'processing'"
_FAILED = "status = 'failed'"
_SUCCEEDED = "outcome = 'succeeded'"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _partial_index(name: str, where: str, *columns: Any, unique: bool = False) -> Index:
    clause = text(where)
    return Index(name, *columns, unique=unique, postgresql_where=clause, sqlite_where=clause)


jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("business_id", Text, nullable=False),
    Column("communication_id", Text),
    Column("channel", String(16), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("payload", JsonText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    #: Attempt rows ever written for the job: the next attempt row's seq is seq + 1.
    Column("seq", Integer, nullable=False),
    Column("run_at", UtcDateTime, nullable=False),
    Column("last_error", Text),
    Column("error_type", String(16)),
    Column("provider", Text),
    Column("provider_message_id", Text),
    Column("delivery_status", String(16)),
    Column("idempotency_key", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("failed_at", UtcDateTime),
    Column("cancelled_at", UtcDateTime),
    Column("lease_token", String(36)),
    Column("lease_expires_at", UtcDateTime),
    Column("worker_id", Text),
)

# Partial indexes stay small (only the rows of one status) and keep the claim
# loop fast however many completed jobs the table holds.
_c = jobs.c
_partial_index("ix_jobs_claim", _PENDING, _c.priority.desc(), _c.run_at, _c.id)
_partial_index("ix_jobs_due", _PENDING, _c.run_at, _c.id)
_partial_index("ix_jobs_business_due", _PENDING, _c.business_id, _c.run_at, _c.id)
_partial_index("ix_jobs_lease", _PROCESSING, _c.lease_expires_at)
_partial_index("ix_jobs_failed", _FAILED, _c.failed_at.desc(), _c.id.desc())
_partial_index(
    "ix_jobs_business_failed", _FAILED, _c.business_id, _c.failed_at.desc(), _c.id.desc()
)
_partial_index(
    "uq_jobs_business_idempotency",
    "idempotency_key IS NOT NULL",
    _c.business_id,
    _c.idempotency_key,
    unique=True,
)
Index("ix_jobs_business_status", _c.business_id, _c.status, _c.id)
Index("ix_jobs_business_id", _c.business_id, _c.id)
# Only jobs that have one: most do not, and each status change would write an entry.
_partial_index(
    "ix_jobs_business_communication",
    "communication_id IS NOT NULL",
    _c.business_id,
    _c.communication_id,
    _c.id,
)

attempts = Table(
    "attempts",
    metadata,
    # On PostgreSQL the jobs' delete trigger takes the attempts instead (migration 0009).
    Column("job_id", String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    # Copied from the job so the per-business processing-time average needs no join.
    Column("business_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("duration_ms", Integer),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("provider", Text),
    Column("provider_message_id", Text),
)
_partial_index("ix_attempts_succeeded", _SUCCEEDED, attempts.c.finished_at)
_partial_index(
    "ix_attempts_business_succeeded", _SUCCEEDED, attempts.c.business_id, attempts.c.finished_at
)

#: Append-only: nothing updates or deletes these rows.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_key_id", Text, nullable=False),
    Column("actor_name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("business_id", Text),
    Column("job_id", String(36)),
    Column("filter", JsonText),
    Column("count", Integer),
)
Index("ix_audit_events_business_id", audit_events.c.business_id, audit_events.c.id)
Index("ix_audit_events_job_id", audit_events.c.job_id, audit_events.c.id)

# ---- operations (migration 0002): live counters and analytics rollups, kept by triggers
# (see that migration). PostgreSQL spreads concurrent writers over ``slot`` 1-15 and a
# periodic compaction folds them into slot 0; readers sum every slot.

#: Jobs by business, channel, provider ("" before the first attempt) and status.
job_counts = Table(
    "job_counts",
    metadata,
    Column("business_id", Text, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("provider", Text, primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("slot", SmallInteger, primary_key=True),
    Column("n", BigInteger, nullable=False),
)


def _rollup_table(name: str, *figures: str) -> Table:
    table = Table(
        name,
        metadata,
        #: "minute", "hour" or "day"; bucket_start is that bucket's start in UTC.
        Column("grain", String(8), primary_key=True),
        Column("bucket_start", UtcDateTime, primary_key=True),
        Column("business_id", Text, primary_key=True),
        Column("channel", Text, primary_key=True),
        #: "" where there is none (a job not yet attempted, a success's error type).
        Column("provider", Text, primary_key=True),
        Column("error_type", Text, primary_key=True),
        Column("slot", SmallInteger, primary_key=True),
        *(Column(figure, BigInteger, nullable=False) for figure in figures),
    )
    Index(f"ix_{name}_business_id", table.c.business_id, table.c.grain, table.c.bucket_start)
    _partial_index(f"ix_{name}_unfolded", "slot > 0", table.c.grain, table.c.bucket_start)
    return table


#: Jobs enqueued, completed and failed per bucket (by createdAt, completedAt, failedAt).
rollups = _rollup_table("rollups", "enqueued", "completed", "failed")
#: Attempts per bucket of their finish; duration_ms sums the successful ones.
attempt_rollups = _rollup_table("attempt_rollups", "succeeded", "failed", "duration_ms")

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("prefix", Text, nullable=False, unique=True),
    Column("secret_hash", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("business_id", Text),
    Column("created_at", UtcDateTime, nullable=False),
)

# ---- providers (migration 0003): rate slots, circuit breakers, delivery events, suppressions

#: One row per provider: the next free send slot and the provider's own pause (its 429),
#: both in epoch seconds of the database clock, so all workers on all machines agree.
provider_rates = Table(
    "provider_rates",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("next_slot", Float, nullable=False),
    Column("paused_until", Float, nullable=False),
)

#: One row per (provider, scope) whose circuit ever saw a provider failure.
circuits = Table(
    "circuits",
    metadata,
    Column("provider", Text, primary_key=True),
    #: "*" for every business, or the business whose own credentials the provider uses.
    Column("scope", Text, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("opened_at", UtcDateTime),
    Column("probe_started_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: Provider events already applied, so a redelivered event changes nothing.
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("job_id", String(36)),
    Column("received_at", UtcDateTime, nullable=False),
)

#: Recipients a business must not send to any more (hard bounce, spam report, STOP).
suppressions = Table(
    "suppressions",
    metadata,
    Column("business_id", Text, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("recipient", Text, primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("job_id", String(36)),
    Column("created_at", UtcDateTime, nullable=False),
)

# Delivery events find their job by the provider's message id.
_partial_index(
    "ix_jobs_provider_message",
    "provider_message_id IS NOT NULL",
    _c.provider,
    _c.provider_message_id,
)

# ---- alerts (migration 0004)

#: One row per alert: a rule's condition holding for a scope, from start to resolution.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("rule", String(32), nullable=False),
    #: The business the alert is about, or "" for every business together.
    Column("scope", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("value", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_notified_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("notifications", Integer, nullable=False),
)
# At most one firing alert per rule and scope, even if two evaluators raced.
_partial_index("uq_alerts_firing", "status = 'firing'", alerts.c.rule, alerts.c.scope, unique=True)
Index("ix_alerts_resolved_at", alerts.c.resolved_at)
# The failure-rate rule counts a window of failed attempts without scanning the table.
_partial_index(
    "ix_attempts_unsucceeded",
    "outcome <> 'succeeded'",
    attempts.c.finished_at,
    attempts.c.business_id,
)
