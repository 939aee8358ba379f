"""Leader election over the store: one server drives the reconciler, the others stand by.

    lease = Lease(store, holder="host:pid:nonce", ttl_s=5.0)
    if lease.hold():               # acquire or renew; False while another server leads
        with store.session() as session:
            lease.check(session)   # fencing: raises Fenced unless this server still leads
            ...                    # the reconciler's writes
        if lease.fresh(): executor.launch(...)   # side effects only on a lease with time left

The lease is one row (`leader_lease`, id 1): a holder, an expiry on the database's clock, and
an epoch that grows by one at every change of leader. A server takes the lease when it has
expired, renews it while it holds it, and loses it when another server took it.

Fencing, so that a leader that was paused (SIGSTOP, a long GC, a stalled VM) and resumes cannot
act on what it decided before:

- every reconciler transaction first reads the lease row under a shared lock and goes on only
  if its epoch is still this server's (`check`); a new leader's takeover, which updates that
  row, waits for such a transaction or finds the epoch moved, and on PostgreSQL a transaction
  left idle by a paused server is ended by the database after
  `suan.control.store.IDLE_IN_TRANSACTION_MS`;
- every side effect outside the store (a launch, a stop) is made only while the lease still has
  `margin` of its time left on this server's monotonic clock (`fresh`), which keeps counting
  while the process is stopped; so after a pause longer than the lease, nothing is done before
  the lease is renewed, and renewal fails when another server took over.

On SQLite (one server per home) the lease is always this server's; the code path is the same.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from suan.control.models import LeaseRow
from suan.control.store import Store
from suan.errors import SuanError

LEASE_ID = 1


class Fenced(SuanError):
    """This server no longer leads: its transaction is rolled back and it stands by."""


def server_identity() -> str:
    """A holder name unique to this process: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def database_now(session: Session) -> float:
    """Seconds since the epoch on the database's clock (PostgreSQL), else this host's."""
    if session.get_bind().dialect.name == "postgresql":
        return float(session.scalar(text("select extract(epoch from clock_timestamp())")))
    return time.time()


class Lease:
    """This server's view of the lease; see the module docstring."""

    def __init__(self, store: Store, holder: str | None = None, ttl_s: float = 5.0,
                 margin_s: float | None = None):
        self.store = store
        self.holder = holder or server_identity()
        self.ttl_s = ttl_s
        self.margin_s = ttl_s / 3 if margin_s is None else margin_s
        self.epoch = 0
        self._valid_until = 0.0  # on time.monotonic()
        self.took_over_at: float | None = None

    @property
    def leading(self) -> bool:
        return self.epoch > 0

    def hold(self) -> bool:
        """Acquire the lease or renew it; True while this server leads."""
        asked = time.monotonic()
        try:
            with self.store.session() as session:
                epoch = self._claim(session)
        except (IntegrityError, OperationalError):  # another server won a race for the row
            epoch = 0
        if epoch and epoch != self.epoch:
            self.took_over_at = time.time()
        self.epoch = epoch
        self._valid_until = asked + self.ttl_s if epoch else 0.0
        return self.leading

    def _claim(self, session: Session) -> int:
        row = session.scalar(select(LeaseRow).where(LeaseRow.id == LEASE_ID).with_for_update())
        now = database_now(session)
        if row is None:
            session.add(LeaseRow(id=LEASE_ID, holder=self.holder, epoch=1,
                                 expires_at=now + self.ttl_s, acquired_at=now))
            session.flush()
            return 1
        if row.holder == self.holder and row.epoch == self.epoch:
            row.expires_at = now + self.ttl_s
            return row.epoch
        if row.expires_at < now:
            row.epoch, row.holder = row.epoch + 1, self.holder
            row.expires_at, row.acquired_at = now + self.ttl_s, now
            return row.epoch
        return 0

    def fresh(self) -> bool:
        """Whether this server leads with at least `margin_s` of its lease left."""
        return self.leading and time.monotonic() < self._valid_until - self.margin_s

    def check(self, session: Session) -> None:
        """Fencing for one transaction: raise Fenced unless the lease's epoch is still this
        server's (the row stays share-locked until the transaction ends)."""
        query = select(LeaseRow.epoch).where(LeaseRow.id == LEASE_ID).with_for_update(read=True)
        epoch = session.scalar(query)
        if not self.leading or epoch != self.epoch:
            self.epoch = 0
            raise Fenced(f"the lease moved to epoch {epoch}; this server stands by")
        if not self.fresh():
            raise Fenced("the lease ran out before it was renewed; this server stands by")

    def release(self) -> None:
        """Give the lease up now (a clean shutdown), so a standby takes over at once."""
        if not self.leading:
            return
        with self.store.session() as session:
            row = session.get(LeaseRow, LEASE_ID)
            if row is not None and row.holder == self.holder and row.epoch == self.epoch:
                row.expires_at = 0.0
        self.epoch = 0

    def status(self) -> dict:
        """The lease as the store holds it, for `/v1/leader` and `suan status`."""
        with self.store.session() as session:
            row = session.get(LeaseRow, LEASE_ID)
            now = database_now(session)
        if row is None:
            return {"leader": None, "epoch": 0, "this_server": self.holder, "leading": False}
        return {
            "leader": row.holder,
            "epoch": row.epoch,
            "expires_in_s": round(row.expires_at - now, 3),
            "this_server": self.holder,
            "leading": self.leading and row.holder == self.holder,
        }
