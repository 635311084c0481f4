"""Kafka for the exporter: one small interface, two clients behind it.

``open_consumer`` / ``open_producer`` return a :class:`Consumer` / :class:`Producer` backed by
kafka-python (``client="kafka-python"``, the default, always installed) or confluent-kafka
(``client="confluent"``, from the ``confluent`` extra, about four times faster to consume).
Callers and tests depend on the protocols only, so a fake fits in the same place.

Consumers commit manually and start from the earliest offset when the group has none; their
caller must keep calling ``poll`` (every 1–3 s at most) — see :class:`Consumer`.
"""

from __future__ import annotations

from exporter.errors import UserError
from exporter.kafka.deadletter import DEFAULT_TOPIC as DEAD_LETTER_TOPIC
from exporter.kafka.deadletter import DeadLetter, dead_letter_headers
from exporter.kafka.probe import Backoff, BrokerAddress, probe, retry, wait_for_broker
from exporter.kafka.types import (
    CLIENTS,
    DEFAULT_CLIENT,
    BrokerUnavailable,
    CommitFailed,
    Consumer,
    ConsumerSettings,
    KafkaIOError,
    Message,
    PartitionsCallback,
    ProduceFailed,
    Producer,
    ProducerSettings,
    TopicPartition,
    check_client,
)

__all__ = [
    "CLIENTS",
    "DEAD_LETTER_TOPIC",
    "DEFAULT_CLIENT",
    "Backoff",
    "BrokerAddress",
    "BrokerUnavailable",
    "CommitFailed",
    "Consumer",
    "ConsumerSettings",
    "DeadLetter",
    "KafkaIOError",
    "Message",
    "PartitionsCallback",
    "ProduceFailed",
    "Producer",
    "ProducerSettings",
    "TopicPartition",
    "dead_letter_headers",
    "open_consumer",
    "open_producer",
    "probe",
    "retry",
    "wait_for_broker",
]

_CONFLUENT_MISSING = (
    "the confluent Kafka client is not installed: pip install 'model-health-exporter[confluent]'"
    " or use client kafka-python"
)


def _client_classes(client: str) -> tuple[type[Consumer], type[Producer]]:
    """The consumer and producer classes of ``client``, importing only that client."""
    if check_client(client) == "confluent":
        try:
            from exporter.kafka.confluent import ConfluentConsumer, ConfluentProducer
        except ModuleNotFoundError as error:
            if error.name != "confluent_kafka":
                raise
            raise UserError(_CONFLUENT_MISSING) from None
        return ConfluentConsumer, ConfluentProducer
    from exporter.kafka.kafka_python import KafkaPythonConsumer, KafkaPythonProducer

    return KafkaPythonConsumer, KafkaPythonProducer


def open_consumer(settings: ConsumerSettings, client: str = DEFAULT_CLIENT) -> Consumer:
    """Connect a group consumer; raises :class:`BrokerUnavailable` after ``settings.bootstrap_timeout_s``."""
    consumer_class, _ = _client_classes(client)
    return consumer_class(settings)  # type: ignore[call-arg]


def open_producer(settings: ProducerSettings, client: str = DEFAULT_CLIENT) -> Producer:
    """Connect a producer; raises :class:`BrokerUnavailable` after ``settings.bootstrap_timeout_s``."""
    _, producer_class = _client_classes(client)
    return producer_class(settings)  # type: ignore[call-arg]
