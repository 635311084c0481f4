"""The relay's durable state: pending deliveries, alerts already handled, per-model cooldowns.

One SQLite database (stdlib ``sqlite3``) in the state directory, in WAL mode with
``synchronous=FULL``: a transaction that returned has reached the disk, so a delivery admitted
before Alertmanager gets its 200 survives ``kill -9`` and a power cut alike.

Admission is one transaction: for every candidate it checks the seen alerts (fingerprint +
startsAt) and the model's cooldown, then records the new delivery, marks its alerts seen and
starts the cooldown. Two notifications racing for one model therefore yield one delivery.

A delivery that finally fails releases what it claimed (its alerts' seen marks and the cooldown
it started), so the next repeat of a still-firing alert (Alertmanager re-sends every
``repeat_interval``) tries again instead of being swallowed as a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from exporter.relay.events import Candidate, RetrainEvent
from exporter.relay.payload import Alert, Notification

DB_NAME = "relay.sqlite3"
SCHEMA_VERSION = 1
Status = Literal["pending", "delivered", "failed"]
_COLUMNS = (
    "id",
    "model",
    "model_version",
    "event",
    "status",
    "attempts",
    "created_at",
    "next_attempt_at",
    "finished_at",
    "last_error",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM deliveries"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    model_version TEXT,
    event TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    finished_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS seen_alerts (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS seen_alerts_delivery ON seen_alerts (delivery_id);
CREATE TABLE IF NOT EXISTS cooldowns (
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,  -- '' when the alert names no version: NULLs never match in a key
    started_at REAL NOT NULL,
    delivery_id TEXT NOT NULL,
    PRIMARY KEY (model, model_version)
);
"""


class StoreError(Exception):
    """The state directory or database cannot be used."""


@dataclass(frozen=True)
class Delivery:
    """One retraining request; ``id`` is its ``webhook-id``, the same on every attempt."""

    id: str
    event: RetrainEvent
    status: Status
    attempts: int
    created_at: float
    next_attempt_at: float
    finished_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Admission:
    deliveries: tuple[Delivery, ...]
    skipped: Counter[str] = field(default_factory=Counter)


def new_delivery_id() -> str:
    """A ``webhook-id`` in the Standard Webhooks style (``msg_`` and a random unique part)."""
    return f"msg_{uuid.uuid4().hex}"


class RelayStore:
    """Thread-safe access to the relay database; every method is one transaction."""

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {directory}: {exc.strerror or exc}") from None
        self.path = directory / DB_NAME
        self._lock = threading.Lock()
        try:
            # One connection shared under a lock: writes are few and small, and SQLite
            # serialises writers anyway.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer relay (schema {version})")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable relay database: {exc}") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- admission -----------------------------------------------------------------------------

    def admit(
        self, candidates: Sequence[Candidate], notification: Notification, now: float, cooldown_seconds: float
    ) -> Admission:
        """Record a delivery for every candidate that is neither a repeat nor in cooldown."""
        skipped: Counter[str] = Counter()
        admitted: list[Delivery] = []
        with self._transaction() as db:
            for candidate in candidates:
                fresh: list[Alert] = []
                for alert in candidate.alerts:
                    seen = db.execute(
                        "SELECT 1 FROM seen_alerts WHERE fingerprint = ? AND starts_at = ?",
                        (alert.fingerprint, alert.startsAt),
                    ).fetchone()
                    repeated_here = any(
                        a.fingerprint == alert.fingerprint and a.startsAt == alert.startsAt for a in fresh
                    )
                    if seen or repeated_here:
                        skipped["duplicate"] += 1
                    else:
                        fresh.append(alert)
                if not fresh:
                    continue
                key = candidate.key
                version = key.model_version or ""
                row = db.execute(
                    "SELECT started_at FROM cooldowns WHERE model = ? AND model_version = ?", (key.model, version)
                ).fetchone()
                if row is not None and now - row[0] < cooldown_seconds:
                    # Not marked seen: if it still fires once the cooldown is over, it counts then.
                    skipped["cooldown"] += len(fresh)
                    continue
                event = RetrainEvent.from_alerts(key, tuple(fresh), notification)
                # Due at once, whatever clock the worker keeps: 0 is before any of them.
                delivery = Delivery(new_delivery_id(), event, "pending", 0, now, 0.0)
                db.execute(
                    "INSERT INTO deliveries (id, model, model_version, event, status, attempts, created_at,"
                    " next_attempt_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, 0)",
                    (delivery.id, key.model, key.model_version, json.dumps(event.as_dict()), now),
                )
                db.executemany(
                    "INSERT INTO seen_alerts (fingerprint, starts_at, delivery_id, seen_at) VALUES (?, ?, ?, ?)",
                    [(alert.fingerprint, alert.startsAt, delivery.id, now) for alert in fresh],
                )
                db.execute(
                    "INSERT OR REPLACE INTO cooldowns (model, model_version, started_at, delivery_id)"
                    " VALUES (?, ?, ?, ?)",
                    (key.model, version, now, delivery.id),
                )
                admitted.append(delivery)
        return Admission(tuple(admitted), skipped)

    # -- delivery bookkeeping ------------------------------------------------------------------

    def due(self, now: float, exclude: Iterable[str] = (), limit: int = 16) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first, minus ``exclude``."""
        skip = set(exclude)
        with self._lock:
            rows = self._db.execute(
                _SELECT + " WHERE status = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, created_at LIMIT ?",
                (now, limit + len(skip)),
            ).fetchall()
        return [d for d in map(_delivery, rows) if d.id not in skip][:limit]

    def next_attempt_at(self, exclude: Iterable[str] = ()) -> float | None:
        """When the earliest pending delivery outside ``exclude`` is due; None when none is."""
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        query = "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'"
        if skip:
            query += f" AND id NOT IN ({marks})"
        with self._lock:
            value = self._db.execute(query, skip).fetchone()[0]
        return None if value is None else float(value)

    def reschedule(self, delivery_id: str, attempts: int, next_attempt_at: float, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (attempts, next_attempt_at, error, delivery_id),
            )

    def finish(
        self,
        delivery_id: str,
        status: Literal["delivered", "failed"],
        attempts: int,
        now: float,
        error: str | None = None,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, finished_at = ?, last_error = ? WHERE id = ?",
                (status, attempts, now, error, delivery_id),
            )
            if status == "failed":
                db.execute("DELETE FROM seen_alerts WHERE delivery_id = ?", (delivery_id,))
                db.execute("DELETE FROM cooldowns WHERE delivery_id = ?", (delivery_id,))

    def pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").fetchone()[0])

    def get(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(_SELECT + " WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else _delivery(row)

    def deliveries(self) -> list[Delivery]:
        """Every delivery still held, oldest first (for inspection and tests)."""
        with self._lock:
            rows = self._db.execute(_SELECT + " ORDER BY created_at, id").fetchall()
        return [_delivery(row) for row in rows]

    def prune(
        self, now: float, dedup_retention_seconds: float, history_retention_seconds: float, cooldown_seconds: float
    ) -> None:
        """Forget old seen marks, finished deliveries and expired cooldowns."""
        with self._transaction() as db:
            db.execute("DELETE FROM seen_alerts WHERE seen_at < ?", (now - dedup_retention_seconds,))
            db.execute(
                "DELETE FROM deliveries WHERE status != 'pending' AND finished_at < ?",
                (now - history_retention_seconds,),
            )
            db.execute("DELETE FROM cooldowns WHERE started_at < ?", (now - cooldown_seconds,))


def _delivery(row: Sequence[object]) -> Delivery:
    values = dict(zip(_COLUMNS, row))
    return Delivery(
        id=str(values["id"]),
        event=RetrainEvent.from_dict(json.loads(str(values["event"]))),
        status=values["status"],  # type: ignore[arg-type]
        attempts=int(values["attempts"]),  # type: ignore[call-overload]
        created_at=float(values["created_at"]),  # type: ignore[arg-type]
        next_attempt_at=float(values["next_attempt_at"]),  # type: ignore[arg-type]
        finished_at=None if values["finished_at"] is None else float(values["finished_at"]),  # type: ignore[arg-type]
        last_error=None if values["last_error"] is None else str(values["last_error"]),
    )
