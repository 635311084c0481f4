"""Where a summary goes: the partition of ``model-health-summaries`` that owns a key.

Every producer of summaries for a model (stage 1 of each aggregator replica, a sidecar in
edge mode) must put them on the same partition, or two replicas would each own part of
the model. Clients disagree on the default partitioner (kafka-python and the Java client
hash keys with murmur2, librdkafka with CRC32 unless told otherwise), so summaries are sent
to an explicit partition computed here: the Java client's rule, ``toPositive(murmur2(key))
% partitions``, which is also where any Java or kafka-python producer keyed by the model
name would put them.

The partition count of the summaries topic is part of the routing: changing it moves
models to other partitions, whose logs lack their history. Create the topic once with at
least as many partitions as replicas you plan to run.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

PIPELINE_KEY_PREFIX = "pipeline:"


def summary_partition(key: str, partitions: int) -> int:
    """The summaries partition that owns ``key`` (a model name or a pipeline key).

    >>> summary_partition("fraud", 6), summary_partition("fraud", 1)
    (4, 0)
    """
    if partitions < 1:
        raise ValueError("the summaries topic needs at least one partition")
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def pipeline_key(topic: str, partition: int) -> str:
    """The key of a source partition's pipeline counters (records consumed and refused).

    >>> pipeline_key("model-predictions", 3)
    'pipeline:model-predictions:3'
    """
    return f"{PIPELINE_KEY_PREFIX}{topic}:{partition}"


def merge_group(group_id: str) -> str:
    """Consumer group of stage 2 (merging summaries); stage 1 uses ``group_id`` itself."""
    return f"{group_id}-merge"


def progress_group(group_id: str) -> str:
    """The member-less group whose committed offsets record stage 1's flushes in flight."""
    return f"{group_id}-progress"


def snapshot_group(group_id: str) -> str:
    """The member-less group whose committed offsets point at each summaries partition's newest
    shared state snapshot (the offset it covers)."""
    return f"{group_id}-snapshots"
