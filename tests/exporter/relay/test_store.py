"""De-duplication, cooldowns and pending deliveries in the SQLite state, on explicit times."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from exporter.relay.events import plan
from exporter.relay.payload import Notification
from exporter.relay.store import RelayStore, StoreError
from tests.exporter.relay.notifications import alert, notification

COOLDOWN = 3600.0


def admit(store: RelayStore, *alerts: dict, now: float = 1000.0, cooldown: float = COOLDOWN):
    parsed = Notification.model_validate(notification(*alerts))
    planned = plan(parsed, "ModelHealthRetrainRecommended", "model", "model_version")
    return store.admit(planned.candidates, parsed, now, cooldown)


@pytest.fixture
def store(tmp_path: Path):
    opened = RelayStore(tmp_path / "state")
    yield opened
    opened.close()


def test_same_fingerprint_and_start_is_one_delivery(store: RelayStore) -> None:
    a = alert(fingerprint="f1")
    assert len(admit(store, a).deliveries) == 1
    again = admit(store, a, now=1001)
    assert again.deliveries == () and again.skipped == {"duplicate": 1}
    # Same fingerprint, new startsAt: the alert resolved and fired again — a new alert, so the
    # cooldown decides.
    refired = admit(store, {**a, "startsAt": "2026-11-28T15:00:00Z"}, now=1002)
    assert refired.skipped == {"cooldown": 1}


def test_cooldown_is_per_model_and_version_and_expires(store: RelayStore) -> None:
    assert len(admit(store, alert("fraud", "7")).deliveries) == 1
    assert admit(store, alert("fraud", "7"), now=1000 + COOLDOWN - 1).skipped == {"cooldown": 1}
    assert len(admit(store, alert("fraud", "8"), now=1001).deliveries) == 1
    assert len(admit(store, alert("fraud", None), now=1001).deliveries) == 1
    assert len(admit(store, alert("churn", "7"), now=1001).deliveries) == 1
    assert len(admit(store, alert("fraud", "7"), now=1000 + COOLDOWN).deliveries) == 1


def test_zero_cooldown_only_dedups(store: RelayStore) -> None:
    assert len(admit(store, alert("fraud", "7"), cooldown=0).deliveries) == 1
    assert len(admit(store, alert("fraud", "7"), cooldown=0).deliveries) == 1


def test_state_survives_reopening(tmp_path: Path) -> None:
    first = RelayStore(tmp_path)
    a = alert(fingerprint="f1")
    (delivery,) = admit(first, a).deliveries
    first.close()
    second = RelayStore(tmp_path)
    assert [d.id for d in second.due(now=1.0)] == [delivery.id]
    assert second.pending_count() == 1
    assert admit(second, a, now=1001).skipped == {"duplicate": 1}
    assert admit(second, alert(), now=1001).skipped == {"cooldown": 1}
    assert second.get(delivery.id).event == delivery.event
    second.close()


def test_reschedule_and_finish(store: RelayStore) -> None:
    (delivery,) = admit(store, alert(fingerprint="f1")).deliveries
    store.reschedule(delivery.id, 1, 2000.0, "HTTP 503")
    assert store.due(now=1999.0) == [] and store.next_attempt_at() == 2000.0
    (due,) = store.due(now=2000.0)
    assert (due.attempts, due.last_error) == (1, "HTTP 503")
    assert store.due(now=2000.0, exclude=[delivery.id]) == []
    store.finish(delivery.id, "delivered", 2, 2001.0)
    assert store.pending_count() == 0 and store.next_attempt_at() is None
    assert store.get(delivery.id).status == "delivered"
    assert admit(store, alert(fingerprint="f1"), now=2002).skipped == {"duplicate": 1}


def test_failure_releases_the_alert_and_the_cooldown(store: RelayStore) -> None:
    a = alert(fingerprint="f1")
    (delivery,) = admit(store, a).deliveries
    store.finish(delivery.id, "failed", 8, 1500.0, "HTTP 401")
    assert store.get(delivery.id).last_error == "HTTP 401"
    assert len(admit(store, a, now=1501).deliveries) == 1


def test_racing_notifications_yield_one_delivery(store: RelayStore) -> None:
    a = alert(fingerprint="race")
    results = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        results.append(len(admit(store, a).deliveries))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0] * 7 + [1]


def test_prune_forgets_old_marks_and_finished_deliveries(store: RelayStore) -> None:
    a = alert(fingerprint="old")
    (delivery,) = admit(store, a, now=1000).deliveries
    store.finish(delivery.id, "delivered", 1, 1000.0)
    store.prune(
        now=1000 + 10 * COOLDOWN,
        dedup_retention_seconds=COOLDOWN,
        history_retention_seconds=COOLDOWN,
        cooldown_seconds=COOLDOWN,
    )
    assert store.deliveries() == []
    assert len(admit(store, a, now=1000 + 10 * COOLDOWN).deliveries) == 1


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "relay.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable relay database"):
        RelayStore(tmp_path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    RelayStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "relay.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer relay"):
        RelayStore(tmp_path)
