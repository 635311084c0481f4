"""The Kafka seam against a real tansu broker, once per client library."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from exporter.errors import UserError
from exporter.kafka import (
    Backoff,
    BrokerAddress,
    BrokerUnavailable,
    ConsumerSettings,
    DeadLetter,
    Message,
    ProduceFailed,
    ProducerSettings,
    TopicPartition,
    dead_letter_headers,
    open_consumer,
    open_producer,
    retry,
    wait_for_broker,
)
from exporter.kafka.deadletter import MAX_DETAIL_BYTES
from exporter.kafka.embedded import EmbeddedBroker, free_port
from exporter.kafka.probe import parse_bootstrap
from exporter.records import Reason, Rejected
from tests.support.broker import (  # noqa: F401
    broker,
    group_settings,
    make_topic,
    poll_count,
    producer_settings,
    unique_group,
)

CLIENTS = ["kafka-python", "confluent"]


def produce(broker: EmbeddedBroker, client: str, topic: str, count: int, start: int = 0) -> None:
    producer = open_producer(producer_settings(broker), client)
    try:
        for i in range(start, start + count):
            producer.send(
                topic, f"v{i}".encode(), key=f"k{i}".encode(), headers=[("seq", str(i).encode()), ("empty", b"")]
            )
        producer.flush(10)
    finally:
        producer.close()


def offsets_by_partition(messages: list[Message]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for message in messages:
        found.setdefault(message.partition, []).append(message.offset)
    return found


@pytest.mark.parametrize("client", CLIENTS)
def test_every_message_arrives_once_with_key_headers_and_timestamp(broker, make_topic, client):
    topic = make_topic(partitions=3)
    produce(broker, client, topic, 300)
    consumer = open_consumer(group_settings(broker), client)
    try:
        consumer.subscribe([topic])
        got = poll_count(consumer, 300)
        # Anything more within another second would be a duplicate.
        got += consumer.poll(1.0)
        assert Counter(m.value for m in got) == Counter(f"v{i}".encode() for i in range(300))
        for message in got:
            i = int(message.value[1:])
            assert message.key == f"k{i}".encode()
            assert message.headers == (("seq", str(i).encode()), ("empty", b""))
            assert message.timestamp_ms is not None and abs(message.timestamp_ms / 1000 - time.time()) < 60
        offsets = offsets_by_partition(got)
        assert sorted(offsets) == [0, 1, 2]  # keys spread over every partition
        assert all(sorted(found) == list(range(len(found))) for found in offsets.values())
        assert consumer.assignment() == {TopicPartition(topic, p) for p in range(3)}
        # Fetch-response watermarks are exact where tansu's ListOffsets is not.
        assert consumer.high_watermarks() == {TopicPartition(topic, p): len(o) for p, o in offsets.items()}
    finally:
        consumer.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_new_member_resumes_after_the_committed_offsets(broker, make_topic, client):
    topic = make_topic(partitions=3)
    produce(broker, client, topic, 90)
    group = unique_group()
    first = open_consumer(group_settings(broker, group), client)
    try:
        first.subscribe([topic])
        got = poll_count(first, 90)
        # Commit half of each partition: the next member must start exactly there.
        by_partition = offsets_by_partition(got)
        commits = {(topic, p): len(found) // 2 for p, found in by_partition.items()}
        first.commit(commits)
        assert first.committed(commits) == commits
    finally:
        first.close()

    second = open_consumer(group_settings(broker, group), client)
    try:
        second.subscribe([topic])
        expected = sum(len(found) - len(found) // 2 for found in by_partition.values())
        rest = poll_count(second, expected)
        rest += second.poll(1.0)
        assert len(rest) == expected
        assert all(m.offset >= commits[(m.topic, m.partition)] for m in rest)
        assert second.committed(commits) == commits
        second.commit({})  # nothing to commit is not "commit everything"
        assert second.committed(commits) == commits
    finally:
        second.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_seek_from_the_assign_callback_and_while_consuming(broker, make_topic, client):
    topic = make_topic(partitions=1)
    produce(broker, client, topic, 40)  # batched, so offset 10 lies inside a record batch
    consumer = open_consumer(group_settings(broker), client)
    assigned: list[list[TopicPartition]] = []

    def on_assign(partitions: list[TopicPartition]) -> None:
        assigned.append(partitions)
        consumer.seek(topic, 0, 10)

    try:
        consumer.subscribe([topic], on_assign=on_assign)
        got = poll_count(consumer, 30)
        assert [m.offset for m in got] == list(range(10, 40))
        assert assigned == [[TopicPartition(topic, 0)]]

        consumer.seek(topic, 0, 35)
        again = poll_count(consumer, 5)
        assert [m.offset for m in again] == list(range(35, 40))
        assert [m.value for m in again] == [f"v{i}".encode() for i in range(35, 40)]
    finally:
        consumer.close()


class Member(threading.Thread):
    """One group member polling on its own thread, as the aggregator does, recording callbacks."""

    def __init__(self, settings: ConsumerSettings, client: str, topic: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._settings, self._client, self._topic = settings, client, topic
        self.events: list[tuple[str, list[int]]] = []
        self.owned: frozenset[int] = frozenset()
        self.leave = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = open_consumer(self._settings, self._client)
            consumer.subscribe([self._topic], on_assign=self._assigned, on_revoke=self._revoked)
            try:
                while not self.leave.is_set():
                    consumer.poll(0.5)
            finally:
                consumer.close()
        except BaseException as error:  # surfaced by the test thread
            self.error = error

    def _assigned(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("assign", [p.partition for p in partitions]))
        self.owned = frozenset(p.partition for p in partitions)

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("revoke", [p.partition for p in partitions]))
        self.owned = frozenset()


def wait_for(condition: Callable[[], bool], members: list[Member], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        for member in members:
            if member.error is not None:
                raise member.error
        assert time.monotonic() < deadline, [m.events for m in members]
        time.sleep(0.05)


@pytest.mark.parametrize("client", CLIENTS)
def test_two_members_split_partitions_and_rebalance_when_one_leaves(broker, make_topic, client):
    topic = make_topic(partitions=3)
    settings = group_settings(broker)
    first = Member(settings, client, topic, "first")
    second = Member(settings, client, topic, "second")
    members = [first, second]
    first.start()
    try:
        wait_for(lambda: first.owned == {0, 1, 2}, members)
        second.start()
        wait_for(lambda: first.owned and second.owned and first.owned | second.owned == {0, 1, 2}, members)
        assert not first.owned & second.owned
        owned_by_second = sorted(second.owned)

        second.leave.set()
        second.join(timeout=10)
        assert ("revoke", owned_by_second) in second.events
        wait_for(lambda: first.owned == {0, 1, 2} and len(first.events) >= 4, members)
        # first: assign all, give some up for second, then take all back.
        assert first.events[0] == ("assign", [0, 1, 2])
        assert first.events[1] == ("revoke", [0, 1, 2])  # eager protocol: all back, then a share
        assert first.events[-1] == ("assign", [0, 1, 2])
        assert first.error is None and second.error is None
    finally:
        for member in members:
            member.leave.set()
        for member in members:
            if member.is_alive():
                member.join(timeout=10)


@pytest.mark.parametrize("client", CLIENTS)
def test_dead_letter_keeps_payload_key_and_original_headers(broker, make_topic, client):
    topic = make_topic(partitions=1)
    producer = open_producer(producer_settings(broker), client)
    source = Message("model-predictions", 2, 41, b"req-7", b"{bad", (("ce_id", b"abc"),))
    rejected = Rejected(Reason.INVALID_JSON, "Expecting value: " + "é" * 2_000, b"{bad", source.headers)
    try:
        DeadLetter(producer, topic).write(rejected, source)
        producer.flush(10)
    finally:
        producer.close()
    consumer = open_consumer(group_settings(broker), client)
    try:
        consumer.subscribe([topic])
        (letter,) = poll_count(consumer, 1)
    finally:
        consumer.close()
    assert (letter.key, letter.value) == (b"req-7", b"{bad")
    headers = dict(letter.headers)
    assert letter.headers[0] == ("ce_id", b"abc")
    assert headers["model-health-reason"] == b"invalid_json"
    assert headers["model-health-source-topic"] == b"model-predictions"
    assert headers["model-health-source-partition"] == b"2"
    assert headers["model-health-source-offset"] == b"41"
    detail = headers["model-health-detail"]
    assert len(detail) <= MAX_DETAIL_BYTES and detail.decode().startswith("Expecting value: é")


def test_dead_letter_headers_replace_an_earlier_verdict_and_omit_a_missing_source():
    earlier = (("model-health-reason", b"too_large"), ("traceparent", b"00-1"))
    headers = dead_letter_headers(Rejected(Reason.UNKNOWN_MODEL, "no model x", b"{}", earlier))
    assert headers == (
        ("traceparent", b"00-1"),
        ("model-health-reason", b"unknown_model"),
        ("model-health-detail", b"no model x"),
    )


@pytest.mark.parametrize("client", CLIENTS)
def test_flush_raises_for_records_the_broker_never_took(make_topic, client):
    with EmbeddedBroker() as own:
        own.create_topics(["doomed"], partitions=1)
        producer = open_producer(
            producer_settings(own, request_timeout_ms=500, delivery_timeout_ms=1_000, linger_ms=0), client
        )
        try:
            producer.send("doomed", b"first")
            producer.flush(10)
            own.stop()
            for i in range(5):
                producer.send("doomed", f"lost {i}".encode())
            started = time.monotonic()
            with pytest.raises(ProduceFailed) as failed:
                producer.flush(15)
            assert time.monotonic() - started < 15
            assert "doomed" in str(failed.value) or "undelivered" in str(failed.value)
            producer.flush(1)  # failures are reported once, then forgotten
        finally:
            producer.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_clients_refuse_to_start_without_a_broker(client):
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=address):
        open_consumer(ConsumerSettings(address, "g", bootstrap_timeout_s=0.5), client)
    with pytest.raises(BrokerUnavailable, match=address):
        open_producer(ProducerSettings(address, bootstrap_timeout_s=0.5), client)
    assert time.monotonic() - started < 15


def test_an_unknown_client_is_a_user_error():
    with pytest.raises(UserError, match="kafka-python, confluent"):
        open_consumer(ConsumerSettings("127.0.0.1:9", "g"), "aiokafka")


def test_wait_for_broker_returns_what_the_broker_advertises(broker):
    (advertised,) = wait_for_broker(broker.bootstrap_servers, timeout_s=5)
    assert str(advertised) == broker.bootstrap_servers


def test_wait_for_broker_gives_up_with_the_address_and_the_cause():
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=f"cannot reach Kafka at {address}.*refused"):
        wait_for_broker(address, timeout_s=0.5)
    assert time.monotonic() - started < 3


def test_wait_for_broker_backs_off_exponentially_until_the_broker_answers():
    now = [0.0]
    slept: list[float] = []
    answers: list[list[BrokerAddress] | None] = [None] * 6 + [[BrokerAddress(1, "h", 9092)]]

    def check(_: str) -> list[BrokerAddress]:
        answer = answers.pop(0)
        if answer is None:
            raise ConnectionRefusedError("refused")
        return answer

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    result = wait_for_broker(
        "h:9092", 60, check=check, backoff=Backoff(0.1, 2.0, 1.0), sleep=sleep, clock=lambda: now[0]
    )
    assert result == [BrokerAddress(1, "h", 9092)]
    assert slept == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_retry_stops_at_the_deadline_and_lets_other_errors_through():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def refuse() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(BrokerUnavailable, match="connect: still failing after 4 attempt"):
        retry(refuse, what="connect", timeout_s=0.6, backoff=Backoff(0.1, 2, 5), sleep=sleep, clock=lambda: now[0])
    assert now[0] == pytest.approx(0.6)

    def misconfigured() -> None:
        raise ValueError("bad setting")

    with pytest.raises(ValueError):
        retry(misconfigured, what="connect", timeout_s=10, sleep=sleep, clock=lambda: now[0])


def test_bootstrap_strings_parse_like_kafka_clients_read_them():
    assert parse_bootstrap("a:9093, PLAINTEXT://b ,[::1]:9094") == [("a", 9093), ("b", 9092), ("::1", 9094)]
    with pytest.raises(BrokerUnavailable):
        parse_bootstrap(" , ")


@pytest.mark.parametrize("client", CLIENTS)
def test_clients_ride_out_a_broker_restart(client):
    with EmbeddedBroker() as own:
        own.create_topics(["survivor"], partitions=1)
        producer = open_producer(producer_settings(own), client)
        consumer = open_consumer(group_settings(own), client)
        try:
            producer.send("survivor", b"before")
            producer.flush(10)
            consumer.subscribe(["survivor"])
            assert [m.value for m in poll_count(consumer, 1)] == [b"before"]

            own.stop()
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                assert consumer.poll(0.5) == []  # an absent broker is a quiet poll, not an error

            own.start()  # in memory: the topic is gone, so make it again
            own.create_topics(["survivor"], partitions=1)
            producer.send("survivor", b"after")
            producer.flush(10)
            assert [m.value for m in poll_count(consumer, 1)] == [b"after"]
        finally:
            consumer.close()
            producer.close()
