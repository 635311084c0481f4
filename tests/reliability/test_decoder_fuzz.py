"""Fuzzed bad input on every decoder: mutated real messages, alone and in mixed batches.

``tests/exporter/decoders/test_fuzz.py`` feeds each Kafka wire decoder random bytes and
random records. This suite starts from *valid* messages of every format a component reads —
native JSON, NDJSON (column-read fast path and line by line), labels, Arrow IPC, KServe
CloudEvents (binary, structured, batched; V1 and OIP v2), Seldon protobuf, every fixed
``kafka.format``, the sidecar's summary messages and the scale-out replicas' partial and
pipeline summaries — and damages them the way a network, a disk or a buggy producer does:
flipped bytes, cuts, insertions, repeated slices, two messages spliced together. Then:

- a prediction decoder never raises and accounts for every message (a row, a label or a
  refusal with a reason — never the last-resort ``decoder failed``), alone or in a batch;
- a summary decoder returns a summary or raises its own documented error
  (``SummaryFormatError``, ``WireError``) — nothing else, so the consumer can dead-letter it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from detectors.profile import build_profile
from exporter.aggregator.scaleout import wire as partial_wire
from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.wire_formats import WireFormat
from exporter.demo.synthetic import synthetic_table
from exporter.kafka import Message
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.summary_wire import (
    SummaryFormatError,
    decode_summary,
    encode_summary,
    kafka_headers,
    read_summary_header,
)
from exporter.records import Decoded
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    arrow_batch,
    ipc_stream,
    kserve_headers,
    native_record,
    ndjson,
    seldon_request,
    seldon_response,
    structured_event,
    v2_request,
    v2_response,
)
from tests.exporter.decoders.messages import (
    kafka_headers as as_kafka_headers,
)
from tests.exporter.decoders.test_fuzz import assert_contract, outcomes
from tests.exporter.pipeline.test_summary_wire import SHAPE as SUMMARY_SHAPE
from tests.exporter.pipeline.test_summary_wire import folded, header

PREDICTIONS, LABELS = "model-predictions", "model-labels"
Headers = list[tuple[str, bytes]]


def _valid_messages() -> list[tuple[str, bytes, Headers, str]]:
    """(what, value, headers, topic) for one valid message of every format the aggregator reads."""
    kserve_request = as_kafka_headers(kserve_headers("k1", REQUEST_TYPE, prefix="ce_"))
    kserve_response = as_kafka_headers(kserve_headers("k1", RESPONSE_TYPE, prefix="ce_"))
    batch_event = (
        b"["
        + structured_event("b1", REQUEST_TYPE, {"instances": [[1.0, "a"]]})
        + b","
        + structured_event("b1", RESPONSE_TYPE, {"predictions": [1]})
        + b"]"
    )
    return [
        ("json", json.dumps(native_record(1, features=4)).encode(), [], PREDICTIONS),
        ("json-array", json.dumps([native_record(i, features=3) for i in range(3)]).encode(), [], PREDICTIONS),
        ("ndjson", ndjson([native_record(i, features=4) for i in range(6)]), [], PREDICTIONS),
        (
            "ndjson-numeric",
            ndjson(
                [
                    {
                        "model": "fraud",
                        "model_version": "7",
                        "timestamp": 1.8e9 + i,
                        "features": {"a": i * 0.5, "b": i},
                        "prediction": 0.25 * (i % 4),
                    }
                    for i in range(8)
                ]
            ),
            [],
            PREDICTIONS,
        ),
        (
            "label",
            json.dumps({"model": "fraud", "request_id": "r-1", "label": 1, "timestamp": 1.8e9}).encode(),
            [],
            LABELS,
        ),
        (
            "labels-ndjson",
            ndjson([{"model": "fraud", "request_id": f"r-{i}", "label": i % 2} for i in range(4)]),
            [],
            LABELS,
        ),
        ("arrow", ipc_stream(arrow_batch(rows=4, features=3)), [], PREDICTIONS),
        (
            "arrow-labels",
            ipc_stream(pa.table({"model": ["fraud"] * 3, "request_id": ["a", "b", "c"], "label": [0, 1, 1]})),
            [],
            LABELS,
        ),
        (
            "kserve-v1-request",
            json.dumps({"instances": [[1.0, 2.0], [3.0, 4.0]]}).encode(),
            kserve_request,
            PREDICTIONS,
        ),
        ("kserve-v1-response", json.dumps({"predictions": [0, 1]}).encode(), kserve_response, PREDICTIONS),
        ("kserve-v2-request", json.dumps(v2_request([[1.0, 2.0]])).encode(), kserve_request, PREDICTIONS),
        ("kserve-v2-response", json.dumps(v2_response([0.7])).encode(), kserve_response, PREDICTIONS),
        ("kserve-structured", structured_event("s1", REQUEST_TYPE, {"instances": [[1.0]]}), [], PREDICTIONS),
        ("kserve-batch", batch_event, [], PREDICTIONS),
        ("seldon-inputs", seldon_request([[1.0, 2.0], [3.0, 4.0]], request_id="q1"), [], "seldon.ns.model.m.inputs"),
        ("seldon-outputs", seldon_response([1, 0]), [], "seldon.ns.model.m.outputs"),
        ("seldon-raw", seldon_request([[1.0, 2.0]], raw=True, request_id="q2"), [], "seldon.ns.model.m.inputs"),
    ]


VALID = _valid_messages()
FIXED_FORMATS = [None, *(f for f in WireFormat if f is not WireFormat.UNKNOWN)]

mutation = st.tuples(
    st.sampled_from(["flip", "cut", "insert", "repeat", "splice", "drop"]),
    st.integers(0, 1 << 20),
    st.binary(min_size=1, max_size=8),
)


def mutate(value: bytes, steps: list[tuple[str, int, bytes]], other: bytes) -> bytes:
    """``value`` damaged by ``steps``; ``other`` is a second valid message for splices."""
    data = bytearray(value)
    for kind, at, noise in steps:
        where = at % (len(data) + 1)
        if kind == "flip" and data:
            data[where % len(data)] ^= noise[0] or 0x01
        elif kind == "cut":
            del data[where:]
        elif kind == "insert":
            data[where:where] = noise
        elif kind == "repeat":
            data[where:where] = data[where : where + 1 + noise[0] % 64]
        elif kind == "splice":
            data = data[:where] + other[at % (len(other) + 1) :]
        elif kind == "drop":
            del data[where : where + 1 + noise[0] % 16]
    return bytes(data)


def mutate_headers(headers: Headers, steps: list[tuple[int, bytes]]) -> Headers:
    out = list(headers)
    for at, noise in steps:
        if out and at % 3 == 0:
            name, _ = out[at % len(out)]
            out[at % len(out)] = (name, noise)  # a header value damaged
        elif out and at % 3 == 1:
            del out[at % len(out)]  # a header lost
        else:
            out.append((["ce_id", "ce_type", "ce_specversion", "content-type", "ce_time"][at % 5], noise))
    return out


damaged_message = st.builds(
    lambda index, steps, other, header_steps, topic_swap: _damaged(index, steps, other, header_steps, topic_swap),
    st.integers(0, len(VALID) - 1),
    st.lists(mutation, max_size=4),
    st.integers(0, len(VALID) - 1),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.binary(max_size=12)), max_size=2),
    st.booleans(),
)


def _damaged(index: int, steps: list, other: int, header_steps: list, topic_swap: bool) -> tuple[str, WireMessage]:
    what, value, headers, topic = VALID[index]
    if topic_swap:  # the right bytes on the wrong topic
        topic = VALID[other][3]
    message = WireMessage(
        mutate(value, steps, VALID[other][1]), topic, mutate_headers(headers, header_steps), b"k", 1.0
    )
    return what, message


class Tally:
    """What the fuzzing fed and what came out, for the figures line."""

    def __init__(self) -> None:
        self.examples = 0
        self.messages = 0
        self.outcomes: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()

    def add(self, decoded: Decoded) -> None:
        self.outcomes["rows"] += decoded.prediction_rows
        self.outcomes["labels"] += sum(t.num_rows for t in decoded.labels)
        for rejected in decoded.rejected:
            self.outcomes[f"refused:{rejected.reason.value}"] += 1


def _run(scale, test: Callable[..., None], short_examples: int, *strategies: st.SearchStrategy) -> None:
    """Run ``test`` as a hypothesis property, seeded: a run replays (MODEL_HEALTH_RELIABILITY_SEED).

    A soak runs ~100 examples per second of its length (a few minutes per property at the
    default 300 s; an example takes ~2 ms).
    """
    examples = scale.pick(short_examples, max(short_examples, int(scale.seconds * 100)))
    prop = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(*strategies)(test))
    seed(scale.seed)(prop)()


def test_damaged_messages_are_each_accounted_for_alone_and_in_batches(scale, figures):
    tally = Tally()
    started = time.monotonic()

    def one(batch: list[tuple[str, WireMessage]], fixed: WireFormat | None) -> None:
        tally.examples += 1
        messages = [message for _, message in batch]
        tally.messages += len(messages)
        tally.inputs.update(what for what, _ in batch)
        joiners = Joiners()
        result = decode_batch(messages, 0.0, joiners, labels_topic=LABELS, expected=fixed)
        drained = joiners.drain(now=1e12)  # every half still waiting comes out too
        assert_contract(result.decoded)
        assert_contract(drained)
        assert len(result.formats) == len(messages)
        tally.add(result.decoded)
        tally.add(drained)
        # Each message alone ends somewhere (empty documents aside: nothing to account for).
        for message in messages:
            alone = Joiners()
            single = decode_batch([message], 0.0, alone, labels_topic=LABELS, expected=fixed)
            assert_contract(single.decoded)
            assert outcomes(single.decoded) + outcomes(alone.drain(now=1e12)) >= 1 or _empty(message.value)

    # Every format damaged a fixed number of times by the seeded random source, then
    # hypothesis's batches of damaged messages of any formats, under every kafka.format.
    rng = scale.rng("decoders")
    kinds = ["flip", "cut", "insert", "repeat", "splice", "drop"]
    for index in range(len(VALID)):
        for _ in range(scale.pick(20, max(20, int(scale.seconds * 3)))):
            steps = [
                (rng.choice(kinds), rng.randrange(1 << 20), rng.randbytes(rng.randint(1, 8)))
                for _ in range(rng.randint(1, 4))
            ]
            header_steps = [
                (rng.randrange(1 << 16), rng.randbytes(rng.randint(0, 12))) for _ in range(rng.randint(0, 2))
            ]
            batch = [_damaged(index, steps, rng.randrange(len(VALID)), header_steps, rng.random() < 0.2)]
            one(batch, rng.choice(FIXED_FORMATS))
    _run(scale, one, 150, st.lists(damaged_message, min_size=1, max_size=4), st.sampled_from(FIXED_FORMATS))
    figures.record(
        sent=tally.messages,
        counted=tally.messages,
        faults=tally.messages,
        lost=0,
        duplicated=None,
        examples=tally.examples,
        formats=len(tally.inputs),
        rows=tally.outcomes["rows"],
        labels=tally.outcomes["labels"],
        refused=sum(v for k, v in tally.outcomes.items() if k.startswith("refused:")),
        reasons=len([k for k in tally.outcomes if k.startswith("refused:")]),
        seconds=round(time.monotonic() - started, 1),
    )
    assert set(tally.inputs) == {what for what, *_ in VALID}, "every valid format was damaged at least once"


def _empty(value: bytes | None) -> bool:
    text = (value or b"").strip()
    if not text:
        return True
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        try:
            return pa.ipc.open_stream(text).read_all().num_rows == 0
        except Exception:  # noqa: BLE001 - any failure means "not an empty stream"
            return False
    return document == [] or document == {}


@pytest.fixture(scope="module")
def summary_profile():
    return build_profile(
        synthetic_table(3_000, seed=1, **SUMMARY_SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )


@pytest.fixture(scope="module")
def summary_bucket(summary_profile) -> Bucket:
    bucket = folded(summary_profile, rows=300)
    return Bucket(
        bucket.records,
        bucket.features,
        bucket.prediction,
        label=summary_profile.label,
        performance=summary_profile.performance,
        loss=summary_profile.loss,
        labels=3,
    )


def _damage_and_decode(
    scale, figures, valid: bytes, other: bytes, decode: Callable[[bytes], object], refusal: type[Exception]
) -> None:
    """Damaged ``valid`` (or random bytes) → ``decode`` returns, or raises ``refusal``; figures."""
    outcome: Counter[str] = Counter()

    def one(steps: list, noise: bytes, random_bytes: bool) -> None:
        value = noise if random_bytes else mutate(valid, steps, other)
        try:
            decode(value)
            outcome["decoded"] += 1
        except refusal:
            outcome["refused"] += 1

    # A seeded sweep of damage first (every run covers the same ground), then hypothesis.
    rng = scale.rng(f"summaries-{decode.__name__}")
    kinds = ["flip", "cut", "insert", "repeat", "splice", "drop"]
    for _ in range(scale.pick(200, max(200, int(scale.seconds * 20)))):
        steps = [
            (rng.choice(kinds), rng.randrange(1 << 20), rng.randbytes(rng.randint(1, 8)))
            for _ in range(rng.randint(1, 3))
        ]
        one(steps, b"", False)
    _run(
        scale,
        one,
        150,
        st.lists(mutation, min_size=1, max_size=3),
        st.binary(max_size=64),
        st.integers(0, 4).map(lambda n: n == 0),
    )
    figures.record(
        sent=outcome.total(),
        counted=outcome.total(),
        faults=outcome.total(),
        lost=0,
        duplicated=None,
        decoded=outcome["decoded"],
        refused=outcome["refused"],
    )


def test_damaged_sidecar_summaries_decode_or_are_refused(scale, figures, summary_profile, summary_bucket):
    """``model-health-summaries`` messages of a sidecar in edge mode (``exporter.pipeline.summary_wire``)."""
    valid = encode_summary(header(records=300, labels=3), summary_bucket)
    assert kafka_headers(header())

    def decode(value: bytes) -> None:
        read_summary_header(value)
        decode_summary(value, summary_profile)

    _damage_and_decode(scale, figures, valid, valid[::-1], decode, SummaryFormatError)


def test_damaged_partial_summaries_decode_or_are_refused(scale, figures, summary_profile, summary_bucket):
    """Scale-out replicas' model partials (``exporter.aggregator.scaleout.wire``): decoded, or a ``WireError``."""
    start = 1_800_000_000
    # Only the fields every version of this (young) format has: the test must not pin the rest.
    partial = partial_wire.ModelPartial(
        "fraud",
        60,
        {
            "7": partial_wire.VersionPartial(
                profile_created_at=summary_profile.metadata.created_at, predictions={start: summary_bucket}, errors=2
            )
        },
    )
    valid = partial_wire.encode_model_partial(partial, profile_for={"7": summary_profile}.get)
    pipeline = partial_wire.encode_pipeline_partial(partial_wire.PipelinePartial(consumed={(PREDICTIONS, "ndjson"): 4}))
    _damage_and_decode(
        scale,
        figures,
        valid,
        pipeline,
        lambda value: partial_wire.decode_model_partial(value, lambda v: summary_profile if v == "7" else None),
        partial_wire.WireError,
    )


def test_damaged_partial_summary_headers_are_refused_or_ignored(scale, figures):
    good = partial_wire.SummaryRange("model", "fraud", PREDICTIONS, 0, 0, 10, 1.8e9).headers()
    outcome: Counter[str] = Counter()

    def one(steps: list) -> None:
        message = Message("model-health-summaries", 0, 0, b"fraud", b"", tuple(mutate_headers(list(good), steps)))
        try:
            outcome["read" if partial_wire.SummaryRange.of(message) else "ignored"] += 1
        except partial_wire.WireError:
            outcome["refused"] += 1

    _run(scale, one, 100, st.lists(st.tuples(st.integers(0, 1 << 16), st.binary(max_size=12)), max_size=3))
    figures.record(
        sent=outcome.total(), counted=outcome.total(), faults=outcome.total(), lost=0, duplicated=None, **outcome
    )


# A count that is not a whole number of records at least 0 (1e999, -5, 2.5, "7").
_counts = st.one_of(
    st.integers(-3, 10**20), st.floats(allow_nan=True), st.text(max_size=3), st.none(), st.booleans(), st.just("@")
)


def test_damaged_pipeline_summaries_never_add_a_bad_count(scale, figures):
    """Pipeline partials are JSON counter deltas: refused, or whole counts ≥ 0 — never a counter going down."""
    outcome: Counter[str] = Counter()

    def one(format_version: object, rows: list, raw: str) -> None:
        text = json.dumps({"format": format_version, "consumed": rows, "rejected": rows[:1]}, allow_nan=True)
        text = text.replace('"@"', raw)  # numbers JSON carries but json.dumps never writes
        try:
            decoded = partial_wire.decode_pipeline_partial(text.encode())
        except partial_wire.WireError:
            outcome["refused"] += 1
            return
        outcome["decoded"] += 1
        for value in (*decoded.consumed.values(), *decoded.rejected.values()):
            assert type(value) is int and value >= 0, f"count {value!r} from {text}"

    failure = None
    try:
        _run(
            scale,
            one,
            150,
            st.one_of(st.just(1), st.integers(0, 2), st.text(max_size=2)),
            st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3), _counts).map(list), max_size=3),
            st.sampled_from(["1e999", "-1e999", "-0", "1E3", "7", "123456789012345678901234567890"]),
        )
    except BaseException as error:
        failure = str(error).splitlines()[0][:90]
        raise
    finally:
        figures.record(
            sent=outcome.total(),
            counted=outcome.total(),
            faults=outcome.total(),
            lost=0,
            duplicated=None,
            **outcome,
            **({"failure": failure} if failure else {}),
        )
