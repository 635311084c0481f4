"""Recent request ids: the same inference written twice is counted once, in bounded memory."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.pipeline.dedup import RecentRequestIds


def batch(*ids: str | None, time: float = 0.0) -> pa.Table:
    return pa.table({"request_id": pa.array(list(ids), pa.string()), "timestamp": [time] * len(ids)})


def kept(recent: RecentRequestIds, *ids: str | None, model: str = "m", time: float = 0.0) -> list[str | None]:
    return recent.keep_first(model, "t", batch(*ids, time=time)).column("request_id").to_pylist()


def test_copies_in_a_later_batch_and_in_the_same_batch_are_dropped_and_counted():
    recent = RecentRequestIds()
    assert kept(recent, "a", "b") == ["a", "b"]
    assert kept(recent, "b", "c", "c", None, None) == ["c", None, None]  # rows without an id always stay
    assert recent.take_dropped() == {"t": 2} and recent.dropped == {}


def test_ids_are_per_model():
    recent = RecentRequestIds()
    kept(recent, "a", model="fraud")
    assert kept(recent, "a", model="churn") == ["a"]


def test_memory_is_bounded_by_max_ids_a_batch_at_a_time():
    recent = RecentRequestIds(max_ids=100)
    for start in range(0, 1000, 10):
        kept(recent, *(f"r{i}" for i in range(start, start + 10)))
        assert recent.held("m") <= 100 + 10
    assert kept(recent, "r0") == ["r0"]  # long forgotten: fresh again
    assert kept(recent, "r995") == []  # recent: a copy


def test_ids_older_than_the_ttl_behind_the_newest_event_are_forgotten():
    recent = RecentRequestIds(ttl_seconds=60.0)
    kept(recent, "old", time=0.0)
    kept(recent, "mid", time=50.0)
    kept(recent, "new", time=100.0)  # "old" is 100 s behind: gone; "mid" 50 s: kept
    assert kept(recent, "old", "mid", time=100.0) == ["old"]


def test_state_round_trips_through_checkpoint_documents():
    recent = RecentRequestIds()
    kept(recent, "a", "b", time=5.0)
    kept(recent, "c", model="other")
    restored = RecentRequestIds()
    restored.import_documents(recent.export_documents())
    assert kept(restored, "a", "b", "d") == ["d"] and kept(restored, "c", model="other") == []
    restored.import_documents([])
    assert kept(restored, "a") == ["a"]


def test_drop_seen_checks_without_remembering_and_remember_holds_ids():
    recent = RecentRequestIds()
    table = batch("a", "b")
    assert recent.drop_seen("m", "t", table).num_rows == 2 and recent.held("m") == 0
    recent.remember("m", table)
    assert recent.drop_seen("m", "t", batch("a", "c")).column("request_id").to_pylist() == ["c"]
    assert recent.take_dropped() == {"t": 1}


def test_a_bad_saved_state_is_refused():
    with pytest.raises(ValueError, match="version"):
        RecentRequestIds().import_documents(['{"version": 9, "model": "m", "chunks": []}'])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e", None]), max_size=8), max_size=8))
def test_every_id_is_kept_exactly_once_when_nothing_is_forgotten(batches):
    recent = RecentRequestIds(max_ids=1000)
    seen: list[str] = []
    for ids in batches:
        out = kept(recent, *ids)
        assert out.count(None) == ids.count(None)  # unkeyed rows are never dropped
        seen += [i for i in out if i is not None]
    assert sorted(seen) == sorted({i for ids in batches for i in ids if i is not None})
    assert sum(recent.dropped.values()) == sum(len(ids) - ids.count(None) for ids in batches) - len(seen)


def test_models_beyond_the_bound_pass_unchecked(monkeypatch):
    monkeypatch.setattr("exporter.pipeline.dedup.MAX_MODELS", 2)
    recent = RecentRequestIds()
    kept(recent, "a", model="one")
    kept(recent, "a", model="two")
    assert kept(recent, "a", "a", model="three") == ["a", "a"]  # not remembered, not checked
    assert kept(recent, "a", model="one") == []
