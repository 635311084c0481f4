"""The receipt a request waits on: armed, started, settled or withdrawn."""

from __future__ import annotations

import threading

import pyarrow as pa

from exporter.sidecar.queue import Outcome, Outgoing, Receipt, RecordQueue


def test_pending_until_armed_then_every_table_settled():
    receipt = Receipt()
    assert receipt.wait(0.0) is Outcome.PENDING  # nothing queued yet: a pair batch still gathering
    receipt.expect(2)
    assert receipt.start() and receipt.start()
    receipt.settle(True)
    assert receipt.wait(0.0) is Outcome.PENDING
    receipt.settle(True)
    assert receipt.wait(0.0) is Outcome.DELIVERED


def test_one_dropped_table_drops_the_request():
    receipt = Receipt()
    receipt.expect(2)
    receipt.start(), receipt.start()
    receipt.settle(True)
    receipt.settle(False)
    assert receipt.outcome is Outcome.DROPPED


def test_withdrawn_only_before_the_forwarder_starts_on_it():
    waiting = Receipt()
    waiting.expect(1)
    assert waiting.withdraw() and waiting.outcome is Outcome.WITHDRAWN
    assert not waiting.start()  # the forwarder skips it

    sending = Receipt()
    sending.expect(1)
    assert sending.start()
    assert not sending.withdraw()  # on the wire: its outcome is awaited instead
    sending.settle(True)
    assert sending.outcome is Outcome.DELIVERED


def test_a_shared_receipt_cannot_be_withdrawn():
    shared = Receipt(shared=True)
    shared.expect(1)
    assert not shared.withdraw()


def test_wait_wakes_when_settled_from_another_thread():
    receipt = Receipt()
    receipt.expect(1)
    receipt.start()
    threading.Timer(0.05, receipt.settle, args=(True,)).start()
    assert receipt.wait(30.0) is Outcome.DELIVERED


def test_wake_ends_a_take_without_items():
    queue = RecordQueue(10)
    threading.Timer(0.05, queue.wake).start()
    assert queue.take(5, timeout_s=30.0) == []
    queue.offer([Outgoing(table=pa.table({"x": [1, 2]}))])
    assert [item.records for item in queue.take(5, timeout_s=0.0)] == [2]
