import pyarrow as pa

from exporter.labels import LabelJoiner


def labels(*ids: str, model: str = "m") -> pa.Table:
    return pa.table({"model": [model] * len(ids), "request_id": list(ids), "label_value": [1.0] * len(ids),
                     "label_class": ["1"] * len(ids), "timestamp": [0.0] * len(ids)})


def test_labels_may_arrive_first():
    joiner = LabelJoiner(ttl_seconds=60, max_pending=100)
    assert joiner.add_labels(labels("a", "b"), now=0) == {}
    joined = joiner.add_predictions("m", "7", ["a", "c"], [10.0, 11.0], [0.9, 0.1], [None, None], now=1)
    assert joined[("m", "7")].timestamps.tolist() == [10.0]
    assert joiner.counts["m"].joined == 1 and joiner.pending_counts() == {"m": 1}


def test_ttl_expiry_and_the_bound_count_as_unmatched():
    joiner = LabelJoiner(ttl_seconds=60, max_pending=2)
    joiner.add_predictions("m", "7", ["a", "b", "c"], [0.0] * 3, [0.5] * 3, [None] * 3, now=0)
    assert joiner.counts["m"].unmatched == 1  # "a" was pushed out by the bound
    joiner.add_labels(labels("x"), now=30)
    joiner.expire(now=70)  # "b" and "c" (arrived at 0) are past the TTL; "x" (30) is not
    assert joiner.counts["m"].unmatched == 3 and joiner.pending_counts() == {}
    joiner.expire(now=100)
    assert joiner.counts["m"].unmatched == 4


def test_state_round_trips():
    joiner = LabelJoiner(ttl_seconds=60, max_pending=10)
    joiner.add_predictions("m", "7", ["a"], [5.0], [0.3], [None], now=0)
    joiner.add_labels(labels("z"), now=0)
    again = LabelJoiner(ttl_seconds=60, max_pending=10)
    again.import_state(joiner.export_state())
    assert again.add_labels(labels("a"), now=1)[("m", "7")].scores.tolist() == [0.3]
    assert again.add_predictions("m", "7", ["z"], [6.0], [0.2], [None], now=1)[("m", "7")].timestamps.tolist() == [6.0]
