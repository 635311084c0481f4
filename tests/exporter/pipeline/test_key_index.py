"""The label join's hash table against a dict, through any sequence of batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.pipeline.key_index import KeyIndex, repeated

# Few distinct low bits: keys that share home slots and probe past each other and past gone slots.
keys = st.integers(2, 40).map(lambda k: k * 1024 + 2) | st.integers(2, 2**64 - 1)
batches = st.lists(
    st.tuples(st.sampled_from(["insert", "remove", "take"]), st.lists(keys, max_size=300, unique=True)),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(batches)
def test_the_index_answers_as_a_dict(operations):
    index, reference = KeyIndex(), {}
    for step, (operation, batch) in enumerate(operations):
        if operation == "insert":
            new = [k for k in batch if k not in reference]
            values = [step * 1000 + i for i in range(len(new))]
            index.insert(np.array(new, np.uint64), np.array(values, np.int64))
            reference.update(zip(new, values))
        elif operation == "remove":
            present = [k for k in batch if k in reference]
            assert index.remove(np.array(present, np.uint64)).tolist() == [reference.pop(k) for k in present]
        else:  # as the label join takes a partner: find the slots once, read and remove there
            present = [k for k in batch if k in reference]
            slots = index.slots_of(np.array(present, np.uint64))
            assert index.values[slots].tolist() == [reference[k] for k in present]
            assert index.remove_at(slots).tolist() == [reference.pop(k) for k in present]
        probe = np.array(batch + list(reference)[:50], np.uint64)
        assert index.get(probe).tolist() == [reference.get(k, -1) for k in probe.tolist()]
        assert len(index) == len(reference)


def test_gone_slots_are_reclaimed():
    """Adding and removing forever keeps the table bounded: rebuilt without its gone slots."""
    index, rng = KeyIndex(), np.random.default_rng(1)
    for _ in range(200):
        batch = rng.integers(2, 2**63, 500, dtype=np.uint64)
        index.insert(batch, np.arange(500))
        index.remove(batch)
    assert len(index) == 0 and index.keys.size <= 8192


@settings(max_examples=200, deadline=None)
@given(st.lists(keys, max_size=200))
def test_repeated_finds_any_repeat(batch):
    assert repeated(np.array(batch, np.uint64)) == (len(set(batch)) != len(batch))
