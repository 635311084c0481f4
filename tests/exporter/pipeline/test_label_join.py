from collections import Counter, OrderedDict

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.partial import LABEL_JOIN_SCHEMA
from exporter.pipeline.request_keys import keys_of_models, request_keys


def keys(model: str, ids: list[str]) -> np.ndarray:
    return request_keys(model, ids)


def label_table(rows: list[tuple[str, str]]) -> pa.Table:
    """Label rows (model, request id) as the fold keeps them for the join."""
    models = pa.array([m for m, _ in rows], pa.string())
    ids = pa.array([r for _, r in rows], pa.string())
    return pa.table(
        [
            models,
            ids,
            pa.array(keys_of_models(models, ids), pa.uint64()),
            pa.array([1.0] * len(rows)),
            pa.array(["1"] * len(rows)),
            pa.array([0.0] * len(rows)),
        ],
        schema=LABEL_JOIN_SCHEMA,
    )


def labels(*ids: str, model: str = "m") -> pa.Table:
    return label_table([(model, i) for i in ids])


def test_labels_may_arrive_first():
    joiner = LabelJoiner(ttl_seconds=60, max_pending=100)
    assert joiner.add_labels(labels("a", "b"), now=0) == {}
    joined = joiner.add_predictions("m", "7", keys("m", ["a", "c"]), [10.0, 11.0], [0.9, 0.1], [None, None], now=1)
    assert joined[("m", "7")].timestamps.tolist() == [10.0]
    assert joiner.counts["m"].joined == 1 and joiner.pending_counts() == {"m": 1}


def test_ttl_expiry_and_the_bound_count_as_unmatched():
    joiner = LabelJoiner(ttl_seconds=60, max_pending=2)
    joiner.add_predictions("m", "7", keys("m", ["a", "b", "c"]), [0.0] * 3, [0.5] * 3, [None] * 3, now=0)
    assert joiner.counts["m"].unmatched == 1  # "a" was pushed out by the bound
    joiner.add_labels(labels("x"), now=30)
    joiner.expire(now=70)  # "b" and "c" (arrived at 0) are past the TTL; "x" (30) is not
    assert joiner.counts["m"].unmatched == 3 and joiner.pending_counts() == {}
    joiner.expire(now=100)
    assert joiner.counts["m"].unmatched == 4


def test_state_round_trips():
    joiner = LabelJoiner(ttl_seconds=60, max_pending=10)
    joiner.add_predictions("m", "7", keys("m", ["a"]), [5.0], [0.3], [None], now=0)
    joiner.add_labels(labels("z"), now=0)
    again = LabelJoiner(ttl_seconds=60, max_pending=10)
    again.import_state(joiner.export_state())
    assert again.add_labels(labels("a"), now=1)[("m", "7")].scores.tolist() == [0.3]
    assert again.add_predictions("m", "7", keys("m", ["z"]), [6.0], [0.2], [None], now=1)[
        ("m", "7")
    ].timestamps.tolist() == [6.0]


class Reference:
    """The join's rules written plainly: one insertion-ordered dict per side."""

    def __init__(self, ttl: float, max_pending: int) -> None:
        self.ttl, self.max_pending = ttl, max_pending
        self.predictions: OrderedDict = OrderedDict()
        self.labels: OrderedDict = OrderedDict()
        self.joined: Counter = Counter()
        self.unmatched: Counter = Counter()

    def add_predictions(self, model, version, ids, times, scores, classes, now):  # type: ignore[no-untyped-def]
        pairs = []
        for rid, t, s, c in zip(ids, times, scores, classes):
            if rid is None:
                continue
            label = self.labels.pop((model, rid), None)
            if label is not None:
                pairs.append(((model, version), float(t), s, label))
            else:
                self.predictions[(model, rid)] = (version, float(t), s, c, now)
        self.bound()
        self.joined[model] += len(pairs)
        return sorted((key, t, _score(s), text) for key, t, s, (text, _, _) in pairs)

    def add_labels(self, rows, now):  # type: ignore[no-untyped-def]
        pairs = []
        for model, rid, value, text in rows:
            prediction = self.predictions.pop((model, rid), None)
            if prediction is not None:
                self.joined[model] += 1
                pairs.append(((model, prediction[0]), prediction[1], _score(prediction[2]), text))
            else:
                self.labels[(model, rid)] = (text, value, now)
        self.bound()
        return sorted(pairs)

    def bound(self) -> None:
        for side in (self.predictions, self.labels):
            while len(side) > self.max_pending:
                (model, _), _ = side.popitem(last=False)
                self.unmatched[model] += 1

    def expire(self, now: float) -> None:
        for side in (self.predictions, self.labels):
            while side:
                key, entry = next(iter(side.items()))
                if now - entry[-1] <= self.ttl:
                    break
                del side[key]
                self.unmatched[key[0]] += 1


def _score(score: float | None) -> str:
    return "missing" if score is None or score != score else repr(score)  # Joined scores hold NaN for None


def flat(joined: dict) -> list:
    return sorted(
        (key, t, _score(s), text)
        for key, j in joined.items()
        for t, s, text in zip(
            j.timestamps.tolist(),
            (j.scores.tolist() if j.scores is not None else [None] * j.timestamps.size),
            j.labels.tolist(),
        )
    )


ids = st.sampled_from([f"r{i}" for i in range(12)])
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("predict"),
            st.sampled_from(["m", "n"]),
            st.sampled_from(["1", "2"]),
            st.lists(st.one_of(ids, st.none()), max_size=8),
            st.booleans(),
        ),
        st.tuples(st.just("fresh"), st.sampled_from(["m", "n"]), st.integers(0, 40)),
        st.tuples(st.just("label"), st.lists(st.tuples(st.sampled_from(["m", "n"]), ids), max_size=8)),
        st.tuples(st.just("tick"), st.sampled_from([0, 1, 5, 30])),
        st.tuples(st.just("checkpoint")),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(operations, st.sampled_from([2, 5, 50]))
def test_the_join_follows_its_rules_through_any_sequence(ops, max_pending):
    joiner, reference, now, fresh = (
        LabelJoiner(ttl_seconds=20, max_pending=max_pending),
        Reference(20, max_pending),
        0.0,
        0,
    )
    for op in ops:
        if op[0] in ("predict", "fresh"):
            if op[0] == "predict":
                _, model, version, rids, as_arrow = op
            else:
                _, model, count = op
                version, rids, as_arrow = "1", [f"f{fresh + i}" for i in range(count)], True
                fresh += count
            times = [now + i for i in range(len(rids))]
            scores = [None if i % 3 == 0 else i / 10 for i in range(len(rids))]
            classes = [None if i % 2 else "a" for i in range(len(rids))]
            # Predictions without a request id never reach the join (the fold keeps them out).
            kept = [i for i, r in enumerate(rids) if r is not None]
            args = (
                keys(model, [rids[i] for i in kept]),
                [times[i] for i in kept],
                [scores[i] for i in kept],
                [classes[i] for i in kept],
            )
            if as_arrow:
                args = (
                    pa.array(args[0], pa.uint64()),
                    pa.array(args[1], pa.float64()),
                    pa.array(args[2], pa.float64()),
                    pa.array(args[3], pa.string()),
                )
            got = flat(joiner.add_predictions(model, version, *args, now=now))
            assert got == reference.add_predictions(model, version, rids, times, scores, classes, now)
        elif op[0] == "label":
            rows = [(m, r, 1.0, "1") for m, r in op[1]]
            table = label_table(list(op[1]))
            assert flat(joiner.add_labels(table, now=now)) == reference.add_labels(rows, now)
        elif op[0] == "tick":
            now += op[1]
            joiner.expire(now)
            reference.expire(now)
        else:
            again = LabelJoiner(ttl_seconds=20, max_pending=max_pending)
            again.import_state(joiner.export_state())
            joiner = again
        state = joiner.export_state()
        assert [(m, r) for m, r, *_ in state["predictions"]] == keyed(reference.predictions)
        assert [(m, r) for m, r, *_ in state["labels"]] == keyed(reference.labels)
        assert [p[2:] for p in state["predictions"]] == [list(v) for v in reference.predictions.values()]
        assert {m: (c.joined, c.unmatched) for m, c in joiner.counts.items() if c.joined or c.unmatched} == {
            m: (reference.joined[m], reference.unmatched[m])
            for m in set(reference.joined) | set(reference.unmatched)
            if reference.joined[m] or reference.unmatched[m]
        }
        assert joiner.pending_counts() == dict(Counter(m for m, _ in reference.predictions))


def keyed(entries: OrderedDict) -> list[tuple[str, int]]:
    """The reference's (model, request id) entries as the joiner holds them: (model, key)."""
    return [(m, int(request_keys(m, [r])[0])) for m, r in entries]


def test_holes_left_by_joins_are_closed_without_losing_order():
    joiner, reference = LabelJoiner(ttl_seconds=1e6, max_pending=10_000), Reference(1e6, 10_000)
    ids = [f"r{i}" for i in range(3_000)]
    joiner.add_predictions("m", "1", keys("m", ids), [1.0] * 3_000, [0.5] * 3_000, [None] * 3_000, now=0.0)
    reference.add_predictions("m", "1", ids, [1.0] * 3_000, [0.5] * 3_000, [None] * 3_000, now=0.0)
    joined = [i for i in ids if int(i[1:]) % 50]  # all but every 50th meet their label
    assert len(flat(joiner.add_labels(labels(*joined), now=1.0))) == len(
        reference.add_labels([("m", r, 1.0, "1") for r in joined], 1.0)
    )
    more = [f"s{i}" for i in range(3_000)]  # the buffer must grow: holes are closed first
    joiner.add_predictions("m", "1", keys("m", more), [2.0] * 3_000, [0.5] * 3_000, [None] * 3_000, now=2.0)
    reference.add_predictions("m", "1", more, [2.0] * 3_000, [0.5] * 3_000, [None] * 3_000, now=2.0)
    assert [(m, r) for m, r, *_ in joiner.export_state()["predictions"]] == keyed(reference.predictions)
    assert flat(joiner.add_labels(labels("r0", "s5"), now=3.0)) == reference.add_labels(
        [("m", "r0", 1.0, "1"), ("m", "s5", 1.0, "1")], 3.0
    )


def test_a_checkpoint_written_before_keys_is_keyed_when_read():
    """Format-2 checkpoints hold request ids where format 3 holds keys."""
    old = {
        "predictions": [["m", "a", "7", 5.0, 0.3, None, 0.0], ["n", "a", "1", 6.0, None, "x", 0.0]],
        "labels": [["m", "z", "1", 1.0, 0.0]],
        "counts": [["m", 2, 1]],
    }
    joiner = LabelJoiner(ttl_seconds=60, max_pending=10)
    joiner.import_state(old)
    assert joiner.pending_counts() == {"m": 1, "n": 1}
    assert joiner.add_labels(labels("a"), now=1)[("m", "7")].scores.tolist() == [0.3]
    assert joiner.add_predictions("m", "7", keys("m", ["z"]), [6.0], [0.2], [None], now=1)[
        ("m", "7")
    ].labels.tolist() == ["1"]
    assert joiner.counts["m"].joined == 4 and joiner.pending_counts() == {"n": 1}
