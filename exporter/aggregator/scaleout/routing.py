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

import numpy as np
from kafka.partitioner.default import murmur2

PIPELINE_KEY_PREFIX = "pipeline:"
JOIN_KEY_PREFIX = "join:"
PAIRED_KEY_PREFIX = "paired:"
# A request key's shard is taken from its high bits: the join's hash table homes keys by
# their low bits, which would then be the same for every key of a shard.
_SHARD_BITS = np.uint64(32)


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


def join_key(model: str, shard: int) -> str:
    """The key of one shard of a model's label join (``kafka.join_shards``): its rows are
    routed, merged and deduplicated under it.

    >>> join_key("fraud", 2)
    'join:2:fraud'
    """
    return f"{JOIN_KEY_PREFIX}{shard}:{model}"


def paired_key(model: str) -> str:
    """The key a join shard's partial of paired KServe/Seldon records travels under, to the
    model's owner (with the shard's partition, what the owner deduplicates it by).

    >>> paired_key("fraud")
    'paired:fraud'
    """
    return f"{PAIRED_KEY_PREFIX}{model}"


def join_shard_of(key: str) -> tuple[str, int]:
    """The model and shard a :func:`join_key` names; ValueError for any other key.

    >>> join_shard_of("join:2:fraud")
    ('fraud', 2)
    """
    shard, _, model = key.removeprefix(JOIN_KEY_PREFIX).partition(":")
    if not key.startswith(JOIN_KEY_PREFIX) or not shard.isdigit() or not model:
        raise ValueError(f"{key!r} is not a join shard key")
    return model, int(shard)


def join_shards_of(request_keys: np.ndarray, shards: int) -> np.ndarray:
    """The join shard of each request key (:mod:`exporter.pipeline.request_keys`), 0 … ``shards`` − 1."""
    return ((request_keys >> _SHARD_BITS) % np.uint64(shards)).astype(np.int64)


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
