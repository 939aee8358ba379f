"""The control plane's tables (SQLAlchemy 2). Migrations in `migrations/` create them.

Times are seconds since the epoch (float). Documents (job specs, placements, queue specs) are
stored as JSON text so that SQLite and PostgreSQL hold the same bytes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every control-plane table."""


class UserRow(Base):
    """A person or robot that submits jobs. `admin` is a cluster administrator."""

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class TokenRow(Base):
    """An API token, stored only as its SHA-256 digest, with a short public `id` (listing,
    revoking), a `name` for people, and when it expires (None: never) and was last used
    (to the minute)."""

    __tablename__ = "tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class QueueRow(Base):
    """A queue (team) as its `kind: Queue` document (see docs/job-spec.md)."""

    __tablename__ = "queues"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)


class JobRow(Base):
    """One submitted job and where it is in its lifecycle.

    `id` is the scheduler's job name. `attempt` counts launches (0 before the first);
    `restarts` counts restarts after failures (bounded by the spec's maxRestarts).
    `stop_target` is the state a job being stopped moves to once its ranks are gone.
    `attained_s` is the device-seconds of its runs that have ended (a run that holds devices
    now adds its own from `start_time`).
    `held_by` names who holds a waiting job back from the scheduler ("" when nobody does).
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    user: Mapped[str] = mapped_column(String(63), index=True)
    queue: Mapped[str] = mapped_column(String(63), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    document: Mapped[str] = mapped_column(Text)
    checkpoint_dir: Mapped[str] = mapped_column(Text)
    workdir: Mapped[str] = mapped_column(Text, default="")
    submit_time: Mapped[float] = mapped_column(Float)
    start_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    not_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    placement: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_code: Mapped[str] = mapped_column(String(32), default="")  # a WaitCode, "" if none
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_target: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stop_reason: Mapped[str] = mapped_column(Text, default="")
    attained_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    held_by: Mapped[str] = mapped_column(String(63), default="", server_default="")
    # Dependencies not yet met, as JSON [[kind, job id], ...] (None: none left); see
    # suan.control.dependencies. An array member names its array, index, size and throttle.
    waits_for: Mapped[str | None] = mapped_column(Text, nullable=True)
    array_id: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    array_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    array_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    array_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_jobs_submit_time_id", "submit_time", "id"),
        Index("ix_jobs_state_submit_time_id", "state", "submit_time", "id"),
    )


class RankRow(Base):
    """One process of one launch of a job: enough to find it again after a restart.

    `pid` and `start_ticks` are 0 where the engine runs the rank on another machine;
    `engine_id` is the engine's id for the launch (a Slurm job id, ...).
    """

    __tablename__ = "ranks"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(255))
    devices: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    start_ticks: Mapped[int] = mapped_column(BigInteger)
    log_path: Mapped[str] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    engine_id: Mapped[str] = mapped_column(String(255), default="")


class EventRow(Base):
    """Something that happened to a job: a transition, a placement, an exit code."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    time: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_events_job_time", "job_id", "time"),)


class AuditRow(Base):
    """One mutating API call: when, by whom (`-` without a valid token), what, and its status."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[float] = mapped_column(Float, index=True)
    user: Mapped[str] = mapped_column(String(63))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)


class LeaseRow(Base):
    """The one row (`id` 1) naming the server that leads: `holder` until `expires_at` (the
    database's clock), under `epoch`, which grows by one at every change of leader."""

    __tablename__ = "leader_lease"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float] = mapped_column(Float)


class IdempotencyRow(Base):
    """A submission's `Idempotency-Key` (per user), the digest of its request and the answer
    it got (`status`, JSON `body`; null until the submission commits). See idempotency.py."""

    __tablename__ = "idempotency_keys"
    user: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer, default=201)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)


class ProgressRow(Base):
    """One progress record a rank printed (`suan.progress`), stamped with the time the server
    read it (`seen_at`; the rank's clock is not trusted). Step times feed straggler and hang
    detection and the program-goodput figures."""

    __tablename__ = "progress"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    step_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    checkpoint_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    seen_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_progress_job", "job_id", "attempt", "rank"),)


class NodeOverrideRow(Base):
    """An operator's word on a node (suan.control.overrides): `action` `cordon` (no new work)
    or `drain` (cordon, then the node's gangs are stopped and requeued at `drain_at`), why,
    by whom and when. One row per node; uncordoning deletes it."""

    __tablename__ = "node_overrides"
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    by: Mapped[str] = mapped_column(String(63))
    at: Mapped[float] = mapped_column(Float)
    drain_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class WebSessionRow(Base):
    """A dashboard login (suan.web.sessions): the SHA-256 digest of its cookie, the public id
    of the API token it was opened with (it dies with that token), its user, its CSRF token,
    and when it expires."""

    __tablename__ = "web_sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(String(16), index=True)
    user: Mapped[str] = mapped_column(String(63))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
