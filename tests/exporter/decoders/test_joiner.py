from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.decoders.joiner import Departure, HalfJoiner, Side


def test_pairs_in_either_order():
    joiner = HalfJoiner[str](max_pending=4, ttl_seconds=10.0)
    assert joiner.offer("a", Side.RESPONSE, "resp-a", now=0.0).pair is None
    assert joiner.offer("a", Side.REQUEST, "req-a", now=1.0).pair == ("req-a", "resp-a")
    assert joiner.offer("b", Side.REQUEST, "req-b", now=1.0).pair is None
    assert joiner.offer("b", Side.RESPONSE, "resp-b", now=2.0).pair == ("req-b", "resp-b")
    assert joiner.pending == 0 and joiner.joined == 2


def test_ttl_expiry_hands_back_halves_oldest_first_and_counts_them():
    joiner = HalfJoiner[str](max_pending=10, ttl_seconds=5.0)
    joiner.offer("a", Side.REQUEST, "req-a", now=0.0)
    joiner.offer("b", Side.RESPONSE, "resp-b", now=1.0)
    joiner.offer("c", Side.REQUEST, "req-c", now=4.0)
    assert joiner.expire(now=4.9) == []
    left = joiner.expire(now=6.0)
    assert [(x.half, x.side, x.why) for x in left] == [
        ("req-a", Side.REQUEST, Departure.EXPIRED),
        ("resp-b", Side.RESPONSE, Departure.EXPIRED),
    ]
    assert (joiner.expired_requests, joiner.expired_responses, joiner.pending) == (1, 1, 1)


def test_a_partner_arriving_after_the_ttl_does_not_pair():
    joiner = HalfJoiner[str](max_pending=10, ttl_seconds=5.0)
    joiner.offer("a", Side.REQUEST, "req-a", now=0.0)
    step = joiner.offer("a", Side.RESPONSE, "resp-a", now=5.0)
    assert step.pair is None and [x.half for x in step.leftovers] == ["req-a"]
    assert joiner.pending == 1


def test_full_buffer_evicts_the_oldest_and_counts_it():
    joiner = HalfJoiner[str](max_pending=2, ttl_seconds=60.0)
    joiner.offer("a", Side.REQUEST, "req-a", now=0.0)
    joiner.offer("b", Side.RESPONSE, "resp-b", now=0.0)
    step = joiner.offer("c", Side.REQUEST, "req-c", now=0.0)
    assert [(x.half, x.why) for x in step.leftovers] == [("req-a", Departure.EVICTED)]
    step = joiner.offer("d", Side.REQUEST, "req-d", now=0.0)
    assert [(x.half, x.why) for x in step.leftovers] == [("resp-b", Departure.EVICTED)]
    assert (joiner.evicted_requests, joiner.evicted_responses, joiner.pending) == (1, 1, 2)


def test_same_side_twice_replaces_and_hands_back_the_older():
    joiner = HalfJoiner[str](max_pending=10, ttl_seconds=60.0)
    joiner.offer("a", Side.REQUEST, "first", now=0.0)
    step = joiner.offer("a", Side.REQUEST, "second", now=1.0)
    assert [(x.half, x.why) for x in step.leftovers] == [("first", Departure.REPLACED)]
    assert joiner.offer("a", Side.RESPONSE, "resp", now=2.0).pair == ("second", "resp")


def test_drain_empties_the_buffer():
    joiner = HalfJoiner[str]()
    joiner.offer("a", Side.REQUEST, "req-a", now=0.0)
    assert [x.why for x in joiner.drain()] == [Departure.DRAINED]
    assert joiner.pending == 0


@pytest.mark.parametrize(("max_pending", "ttl"), [(0, 1.0), (1, 0.0), (1, float("nan"))])
def test_bounds_must_be_positive(max_pending, ttl):
    with pytest.raises(ValueError):
        HalfJoiner[str](max_pending=max_pending, ttl_seconds=ttl)


@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(Side), st.floats(0, 3, allow_nan=False)),
        max_size=60,
    ),
    st.integers(1, 5),
)
def test_every_half_is_paired_or_handed_back_exactly_once(offers, max_pending):
    joiner = HalfJoiner[int](max_pending=max_pending, ttl_seconds=2.0)
    now = 0.0
    seen: list[int] = []
    for serial, (key, side, step) in enumerate(offers):
        now += step
        result = joiner.offer(key, side, serial, now)
        if result.pair is not None:
            seen.extend(result.pair)
        seen.extend(x.half for x in result.leftovers)
        assert joiner.pending <= max_pending
    seen.extend(x.half for x in joiner.drain())
    assert sorted(seen) == list(range(len(offers)))
