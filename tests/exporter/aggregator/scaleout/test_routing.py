"""Summaries routing agrees with the Java client's default partitioner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

from exporter.aggregator.scaleout.routing import merge_group, pipeline_key, progress_group, summary_partition

# Kafka's own test vectors for Utils.murmur2 (clients/src/test/.../UtilsTest.java).
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "abc": 479470107,
}


@pytest.mark.parametrize(("key", "hashed"), JAVA_MURMUR2.items())
def test_partition_is_the_java_clients(key, hashed):
    for partitions in (1, 2, 3, 7, 12):
        assert summary_partition(key, partitions) == (hashed & 0x7FFFFFFF) % partitions


class _Cluster:
    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self):
        return {"t"}

    def partitions_for_topic(self, topic):
        return self.partitions

    def available_partitions_for_topic(self, topic):
        return self.partitions


@given(st.text(min_size=1, max_size=40), st.integers(1, 64))
def test_partition_is_kafka_pythons_for_the_same_key(key, partitions):
    # A producer keyed by model name with kafka-python's default partitioner lands there too.
    chosen = DefaultPartitioner().partition("t", key, key.encode(), None, None, _Cluster(partitions))
    assert summary_partition(key, partitions) == chosen


def test_names():
    assert pipeline_key("model-labels", 1) == "pipeline:model-labels:1"
    assert merge_group("mh") == "mh-merge" and progress_group("mh") == "mh-progress"
    with pytest.raises(ValueError):
        summary_partition("fraud", 0)
