"""KServe request/response halves spread over an unkeyed topic: scale-out pairs them in
stage 2, where everything about a model meets, and exports what one process exports —
predictions, latency, feature summaries, unpaired halves, label joins — through kills,
restarts and stage-2 handovers."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.aggregator.inputs import load_models
from exporter.aggregator.scaleout import wire
from exporter.aggregator.scaleout.routing import join_shard_of, summary_partition
from exporter.aggregator.scaleout.stage2 import MergeStage
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.kafka import TopicPartition
from exporter.pipeline.decode import BatchDecoder
from tests.exporter.aggregator.scaleout.fakes import Crash, GroupConsumer
from tests.exporter.aggregator.scaleout.harness import (
    LABELS,
    PREDICTIONS,
    SUMMARIES,
    SUMMARY_PARTITIONS,
    Clock,
    Cluster,
    assert_same_metrics,
    combine,
    exposition,
    make_config,
)
from tests.exporter.aggregator.scaleout.kserve_traffic import KServeTraffic, make_kserve_traffic
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

ROWS = 60
BASE = 1_000.0
NOW = BASE + ROWS + 50
LATER = NOW + 300  # past the join TTL (60 s): what still waits at NOW leaves unpaired


@pytest.fixture(scope="module")
def phases() -> tuple[KServeTraffic, KServeTraffic]:
    """What arrives by NOW, and what arrives at LATER (it moves every partition's clock)."""
    return make_kserve_traffic(ROWS, BASE), make_kserve_traffic(3, BASE + ROWS, seed=9, tag="b", extras=False)


class Topics:
    """Appends messages round-robin over unkeyed partitions, as a producer without keys does."""

    def __init__(
        self, log: FakeLog, predictions: int = 4, labels: int = 2, names: tuple[str, str] = (PREDICTIONS, LABELS)
    ) -> None:
        self.log = log
        self.names = names
        self.counts = {names[0]: predictions, names[1]: labels}
        self.sent = {names[0]: 0, names[1]: 0}
        for topic, count in ((names[0], predictions), (names[1], labels), (SUMMARIES, SUMMARY_PARTITIONS)):
            for p in range(count):
                log.partitions.setdefault(TopicPartition(topic, p), [])

    def pending(self, traffic: KServeTraffic) -> list[tuple[str, bytes, tuple]]:
        """The traffic as (topic, value, headers), labels interleaved after their predictions."""
        out = [(self.names[0], value, headers) for value, headers in traffic.messages]
        step = max(1, len(out) // max(1, len(traffic.labels)))
        for n, label in enumerate(traffic.labels):
            out.insert(min(len(out), (n + 1) * (step + 1)), (self.names[1], label, ()))
        return out

    def send(self, items: list[tuple[str, bytes, tuple]]) -> None:
        for topic, value, headers in items:
            self.log.append(topic, value, headers=headers, partition=self.sent[topic] % self.counts[topic])
            self.sent[topic] += 1


def single_mode(config, phases) -> dict[str, float]:
    """One single-mode process over the same topics: the metrics scale-out must equal."""
    log = FakeLog()
    topics = Topics(log)
    clock = Clock(NOW)
    aggregator = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic),
        clock=clock,
    )
    aggregator.subscribe()
    for at, traffic in zip((NOW, LATER), phases):
        clock.now = at
        topics.send(topics.pending(traffic))
        while aggregator.poll_once():
            pass
    aggregator.evaluate()
    return exposition(aggregator.snapshot(), aggregator.latency())


@pytest.fixture(scope="module")
def expected(profiles, phases, tmp_path_factory):
    return single_mode(make_config(profiles, tmp_path_factory.mktemp("single")), phases)


def same_metrics(expected: dict[str, float], got: dict[str, float]) -> None:
    """Equal, but for the topic label of unmatched responses: single mode counts an expired
    response under whichever topic's poll noticed the expiry (here, often the labels topic);
    scale-out under the topic the response came from."""
    assert_same_metrics(_any_topic_for_unmatched(expected), _any_topic_for_unmatched(got))


def scraped(cluster: Cluster) -> dict[str, float]:
    return combine([exposition(r.merge.evaluate(), r.merge.latency()) for r in cluster.replicas])


def test_single_mode_pairs_everything_and_counts_the_unpaired(expected, phases):
    predictions = sum(v for k, v in expected.items() if k.startswith("model_health_predictions_total{"))
    pairs = phases[0].pairs + phases[1].pairs
    assert predictions == pairs + 2  # + the lonely request (no response) and the unreadable response's request
    rejected = {k: v for k, v in expected.items() if k.startswith("model_health_records_rejected_total{")}
    assert sum(v for k, v in rejected.items() if 'reason="unmatched_response"' in k) == 1
    assert sum(v for k, v in rejected.items() if 'reason="unknown_model"' in k) == 1
    assert sum(v for k, v in expected.items() if k.startswith("model_health_labels_joined_total{")) == len(
        phases[0].labels
    ) + len(phases[1].labels)
    assert (
        sum(v for k, v in expected.items() if k.startswith("model_health_request_duration_seconds_count{")) == pairs + 1
    )  # + bad body


def run_cluster(
    profiles, phases, tmp_path, replicas: int = 2, schedule=None, join_shards: int = 0
) -> tuple[Cluster, dict[str, float]]:
    log = FakeLog()
    topics = Topics(log)
    cluster = Cluster(make_config(profiles, tmp_path / "state", join_shards=join_shards), log, Clock(NOW))
    for i in range(replicas):
        cluster.start(tmp_path / f"r{i}")
    for at, traffic in zip((NOW, LATER), phases):
        cluster.clock.now = at
        items = topics.pending(traffic)
        if schedule is not None and at == NOW:
            schedule(cluster, topics, items, tmp_path)
        else:
            topics.send(items)
        cluster.drain()
    return cluster, scraped(cluster)


@pytest.mark.parametrize("join_shards", [0, 3])
def test_two_replicas_on_four_unkeyed_partitions_pair_what_one_process_pairs(
    profiles, phases, expected, tmp_path, join_shards
):
    """With join shards the halves are paired where their inference's id routes, and the
    records they make go on to their models' owners and are joined with their labels there."""
    cluster, got = run_cluster(profiles, phases, tmp_path, join_shards=join_shards)
    same_metrics(expected, got)
    if join_shards:  # the halves went to the shards, none to the owners
        kinds = [(wire.SummaryRange.of(m), m) for m in cluster.log.messages(SUMMARIES) if wire.SummaryRange.of(m)]
        halves = set()
        for summary, message in kinds:
            if summary.kind in (wire.MODEL_KIND, wire.JOIN_KIND):
                model = summary.key if summary.kind == wire.MODEL_KIND else join_shard_of(summary.key)[0]
                profile = lambda v, model=model: cluster.models[(model, v)][1]  # noqa: E731
                if wire.decode_model_partial(message.value, profile).halves:
                    halves.add(summary.kind)
        assert halves == {wire.JOIN_KIND}
        # Halves route by the inference's id, which a one-row request's record is labelled by:
        # its label join happens where it paired, nothing goes on as a forwarded join message.
        assert not [k for k, m in kinds if k.kind == wire.JOIN_KIND and k.source_topic == SUMMARIES]
    assert got['model_health_records_rejected_total{reason="unmatched_response",topic="model-predictions"}'] == 1
    # The halves really were split: each replica's stage 1 read only some partitions.
    assert all(len(r.partial.consumer.assignment()) < 6 for r in cluster.replicas)
    assert all(r.merge.states for r in cluster.replicas)


def test_one_replica_pairs_the_same(profiles, phases, expected, tmp_path):
    _, got = run_cluster(profiles, phases, tmp_path, replicas=1)
    same_metrics(expected, got)


@pytest.mark.parametrize(("seed", "join_shards"), [(s, 0) for s in range(4)] + [(s, 3) for s in range(3)])
def test_kills_restarts_and_handovers_mid_stream_pair_the_same(profiles, phases, expected, tmp_path, seed, join_shards):
    """Stage-1 replicas die mid-poll, mid-flush and before the final commit, come back and
    join; summaries partitions move between replicas (restored from a checkpoint or replayed
    from offset 0) while halves wait for their partners. The end equals a clean run."""
    rng = np.random.default_rng(seed)
    crashes = {"n": 0}

    def schedule(cluster: Cluster, topics: Topics, items, tmp_path) -> None:
        generation = len(cluster.replicas)
        for _ in range(6):
            victim = cluster.replicas[int(rng.integers(len(cluster.replicas)))]
            places = ["poll", "produce", "commit"]
            where = rng.choice(places + ["forward"] if join_shards else places)
            if where == "forward":  # stage 2 dies sending what pairing made to owners and shards
                forward = victim.merge._dead_letters
                forward.die_after = forward.sent + int(rng.integers(0, 3))
            elif where == "produce":
                victim.producer.die_after = victim.producer.sent + int(rng.integers(1, 4))
            elif where == "commit":
                victim.partial.consumer.commit_hook = _die_on_second_commit()
            try:
                for _ in range(int(rng.integers(2, 10))):
                    topics.send(items[:20])
                    del items[:20]
                    for replica in list(cluster.replicas):
                        replica.step()
            except Crash:
                crashes["n"] += 1
            victim.kill()
            generation += 1
            cluster.start(tmp_path / f"r{generation % 3}")  # restarts reuse state dirs: checkpoints
        topics.send(items)

    cluster, got = run_cluster(profiles, phases, tmp_path, schedule=schedule, join_shards=join_shards)
    same_metrics(expected, got)
    assert crashes["n"] >= 1


def _die_on_second_commit():
    calls = {"n": 0}

    def hook(offsets) -> None:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise Crash("died after producing, before the final commit")

    return hook


def test_waiting_halves_are_in_the_checkpoint_and_a_replay_rebuilds_them(profiles, phases, tmp_path):
    """A new owner of a summaries partition — restoring the checkpoint, or replaying from
    offset 0 — holds the same waiting halves (and everything else) as the old one."""
    log = FakeLog()
    topics = Topics(log)
    cluster = Cluster(make_config(profiles, tmp_path / "state"), log, Clock(NOW))
    replica = cluster.start(tmp_path / "r0")
    topics.send(topics.pending(phases[0]))
    cluster.drain()
    replica.merge.checkpoint(commit=False)
    partition = summary_partition("fraud", SUMMARY_PARTITIONS)
    old = replica.merge.states[partition]
    assert old.pairing.pending() == 2  # the lonely request and the lonely response

    def owner(state_dir):
        config = cluster.config.model_copy(update={"state": cluster.config.state.model_copy(update={"dir": state_dir})})
        return MergeStage(
            config, cluster.models, GroupConsumer(cluster.merge_group), SUMMARY_PARTITIONS, clock=cluster.clock
        )

    restored = owner(tmp_path / "r0").restore(partition)
    replayed = owner(tmp_path / "empty")
    state = replayed.restore(partition)
    assert state.next_offset == 0
    for message in log.partitions[TopicPartition(SUMMARIES, partition)]:
        replayed.merge(state, message)
        state.next_offset = message.next_offset
    for new in (restored, state):
        assert new.next_offset == old.next_offset
        assert new.export_extra() == old.export_extra()
        assert new.pairing.pending() == 2


# ---------------------------------------------------------------------------------------------
# Seldon Core v2: inputs and outputs on two topics per model, so always apart.


def seldon_phase(rows: int, tag: str, lonely: bool) -> list[tuple[str, int, bytes, bytes]]:
    """(topic, partition, key, value) of ``rows`` inferences per model version."""
    from tests.exporter.aggregator.scaleout.traffic import MODELS
    from tests.exporter.decoders.messages import seldon_request, seldon_response

    out = []
    for index, (model, version) in enumerate(MODELS):
        for i in range(rows):
            key = f"{tag}-{model}-{version}-{i}".encode()
            values = [[float(i % 7), float(index), 0.5 * i]]
            out.append((f"seldon.prod.model.{model}.inputs", i % 2, key, seldon_request(values)))
            out.append(
                (f"seldon.prod.model.{model}.outputs", (i + 1) % 2, key, seldon_response([i % 2], version=version))
            )
    if lonely:
        out.append(
            ("seldon.prod.model.churn.inputs", 0, f"{tag}-lonely-in".encode(), seldon_request([[1.0, 2.0, 3.0]]))
        )
        out.append(
            ("seldon.prod.model.fraud.outputs", 1, f"{tag}-lonely-out".encode(), seldon_response([1], version="7"))
        )
    return out


def seldon_config(profiles, state_dir):
    from exporter.config import AggregatorConfig
    from tests.exporter.aggregator.scaleout.traffic import WINDOWS, models_config

    models = [{**m, "namespace": "prod", "thresholds": {"min_samples": 100}} for m in models_config(profiles)]
    return AggregatorConfig(
        kafka={"mode": "scale_out", "partial_flush_seconds": 1.0, "format": "seldon"},
        models=models,
        windows=WINDOWS,
        state={"dir": str(state_dir)},
        allowed_lateness_seconds=100_000,
    )


def seldon_log(config) -> FakeLog:
    log = FakeLog()
    for topic in [
        *(f"seldon.prod.model.{m}.{side}" for m in ("fraud", "churn") for side in ("inputs", "outputs")),
        config.kafka.labels_topic,
    ]:
        for p in range(2):
            log.partitions.setdefault(TopicPartition(topic, p), [])
    for p in range(SUMMARY_PARTITIONS):
        log.partitions.setdefault(TopicPartition(SUMMARIES, p), [])
    return log


@pytest.mark.parametrize("join_shards", [0, 3])
def test_seldon_inputs_and_outputs_pair_across_replicas_as_in_one_process(profiles, tmp_path, join_shards):
    phases = [(NOW, seldon_phase(20, "a", lonely=True)), (LATER, seldon_phase(2, "b", lonely=False))]
    config = seldon_config(profiles, tmp_path / "single")
    log = seldon_log(config)
    clock = Clock(NOW)
    single = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic, config.kafka.format),
        clock=clock,
    )
    single.subscribe()
    for at, messages in phases:
        clock.now = at
        for topic, partition, key, value in messages:
            log.append(topic, value, key=key, partition=partition)
        while single.poll_once():
            pass
    single.evaluate()
    expected = exposition(single.snapshot(), single.latency())
    assert sum(v for k, v in expected.items() if k.startswith("model_health_predictions_total{")) == 3 * 22 + 1
    assert sum(v for k, v in expected.items() if 'reason="unmatched_response"' in k) == 1

    config = seldon_config(profiles, tmp_path / "state")
    config = config.model_copy(update={"kafka": config.kafka.model_copy(update={"join_shards": join_shards})})
    log = seldon_log(config)
    cluster = Cluster(config, log, Clock(NOW))
    for i in range(2):
        cluster.start(tmp_path / f"r{i}")
    for at, messages in phases:
        cluster.clock.now = at
        for topic, partition, key, value in messages:
            log.append(topic, value, key=key, partition=partition)
        cluster.drain()
    got = scraped(cluster)
    assert (
        'model_health_records_rejected_total{reason="unmatched_response",topic="seldon.prod.model.fraud.outputs"}'
        in got
    )
    same_metrics(expected, got)


def _any_topic_for_unmatched(samples: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in samples.items():
        if name.startswith('model_health_records_rejected_total{reason="unmatched_response"'):
            name = 'model_health_records_rejected_total{reason="unmatched_response"}'
        out[name] = out.get(name, 0.0) + value
    return out


def test_halves_travel_in_parts_in_order_and_older_partials_carry_none(profiles):
    """Halves count as rows and by size when a range is split; a partial encoded without
    the field (before halves travelled) decodes with none."""
    from exporter.aggregator.scaleout import wire
    from exporter.aggregator.scaleout.halves import read_halves
    from exporter.decoders.sink import DecodeSink
    from exporter.kafka import Message
    from exporter.profiles import load_profile

    traffic = make_kserve_traffic(4, BASE, extras=False)
    carried = []
    for offset, (value, headers) in enumerate(traffic.messages):
        fmt, halves = read_halves(DecodeSink(), Message(PREDICTIONS, 0, offset, None, value, headers), LABELS)
        carried += [wire.CarriedHalf.of(fmt, PREDICTIONS, side, half) for side, half in halves if half.model == "fraud"]
    assert len(carried) == 16
    profile = lambda version: load_profile(profiles[("fraud", version)])  # noqa: E731
    partial = wire.ModelPartial("fraud", 30, {}, None, carried)
    parts = wire.split_model_partial(partial, max_rows=5)
    assert [len(p.halves) for p in parts] == [5, 5, 5, 1]
    by_size = wire.split_model_partial(partial, max_half_bytes=3 * len(carried[0].document))
    assert len(by_size) > 4 and all(len(p.halves) <= 3 for p in by_size)
    decoded = [h for p in parts for h in wire.decode_model_partial(wire.encode_model_partial(p), profile).halves]
    assert decoded == carried
    assert decoded[0].half() == carried[0].half()
    assert wire.decode_model_partial(wire.encode_model_partial(wire.ModelPartial("fraud", 30)), profile).halves == []


def test_both_halves_route_by_the_id_their_record_and_label_are_joined_under():
    """Stage 1 sends a half to the join shard of its inference's id — KServe's CloudEvent id,
    the last of its pairing key (namespace, model, id) — not of the whole key: both halves go
    there, and so does the label of the one-row request's record, which is named by that id."""
    from exporter.aggregator.scaleout.halves import read_halves
    from exporter.aggregator.scaleout.join_shards import split_join
    from exporter.aggregator.scaleout.routing import join_shards_of
    from exporter.decoders.sink import DecodeSink
    from exporter.kafka import Message
    from exporter.pipeline.request_keys import request_keys

    traffic = make_kserve_traffic(12, BASE, extras=False)
    carried = []
    for offset, (value, headers) in enumerate(traffic.messages):
        fmt, halves = read_halves(DecodeSink(), Message(PREDICTIONS, 0, offset, None, value, headers), LABELS)
        for side, half in halves:
            if half.model == "fraud":
                carried.append(wire.CarriedHalf.of(fmt, PREDICTIONS, side, half))
                assert isinstance(half.key, tuple) and carried[-1].pairs_on == half.key[2] == half.request_id
    _, by_shard = split_join(wire.ModelPartial("fraud", 30, {}, None, carried), 5)
    assert len(by_shard) > 1
    routed: dict[str, set[int]] = {}
    for shard, partial in by_shard.items():
        for half in partial.halves:
            routed.setdefault(half.half()[1].request_id, set()).add(shard)
    assert len(routed) == 2 * 12 and all(len(shards) == 1 for shards in routed.values())  # both halves together
    ids = sorted(routed)
    label_shards = join_shards_of(request_keys("fraud", ids), 5).tolist()  # where the labels' rows go
    assert [routed[i].pop() for i in ids] == label_shards


def _as_the_agent_logs(traffic: KServeTraffic) -> KServeTraffic:
    """The traffic without any version: KServe's agent sends only its endpoint, ``canary`` for
    fraud v8 (a canary rollout) and ``default`` for the rest."""
    messages = []
    for value, headers in traffic.messages:
        fields = dict(headers)
        version = fields.pop("ce_modelversion")
        canary = fields["ce_inferenceservicename"] == b"fraud" and version == b"8"
        fields["ce_endpoint"] = b"canary" if canary else b"default"
        messages.append((value, tuple(fields.items())))
    return KServeTraffic(messages, traffic.labels, traffic.pairs)


def test_slots_name_versions_the_same_in_both_modes(profiles, phases, expected, tmp_path):
    """With no version in the events, the configured slots map KServe's endpoints to versions:
    single mode and scale-out count exactly what versioned events counted."""
    unversioned = tuple(_as_the_agent_logs(p) for p in phases)
    base = make_config(profiles, tmp_path / "state").model_dump(mode="json")
    slots = {("fraud", "7"): ["default"], ("fraud", "8"): ["canary"]}
    base["models"] = [{**m, "slots": slots.get((m["name"], m["version"]), [])} for m in base["models"]]
    config = AggregatorConfig(**base)
    single = single_mode(
        config.model_copy(update={"kafka": config.kafka.model_copy(update={"mode": "single"})}), unversioned
    )
    same_metrics(expected, single)
    log = FakeLog()
    topics = Topics(log)
    cluster = Cluster(config, log, Clock(NOW))
    for i in range(2):
        cluster.start(tmp_path / f"r{i}")
    for at, traffic in zip((NOW, LATER), unversioned):
        cluster.clock.now = at
        topics.send(topics.pending(traffic))
        cluster.drain()
    same_metrics(expected, scraped(cluster))


def test_batched_requests_pair_and_join_on_their_rows_shards(profiles, tmp_path):
    """A request of three instances makes three records, ``<id>/0`` … ``<id>/2``, whose join keys
    route apart from the key their halves paired on: a shard meets the rows that are its own in
    place and sends the others to their shards as ``join`` messages — and every label still finds
    its prediction, as in one process."""
    phases = (
        make_kserve_traffic(40, BASE, tag="m", batch=3),
        make_kserve_traffic(3, BASE + ROWS, seed=9, tag="n", extras=False, batch=3),
    )
    expected = single_mode(make_config(profiles, tmp_path / "single"), phases)
    assert expected['model_health_labels_joined_total{model="fraud"}'] == 2 * 3 * (20 + 2)
    cluster, got = run_cluster(profiles, phases, tmp_path, join_shards=3)
    same_metrics(expected, got)
    forwarded = [
        m
        for m in cluster.log.messages(SUMMARIES)
        if (summary := wire.SummaryRange.of(m)) is not None
        and summary.kind == wire.JOIN_KIND
        and summary.source_topic == SUMMARIES
    ]
    assert forwarded  # some rows' shards were on the other partition
