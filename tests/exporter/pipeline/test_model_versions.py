"""The one model-identity rule, case by case as the docs state it (docs/producers.md)."""

from __future__ import annotations

import pytest

from exporter.pipeline.model_versions import ModelIdentity

ONE = ModelIdentity.of([("hidden", "1", ())])
TWO = ModelIdentity.of([("churn", "1", ()), ("churn", "2", ())])
CANARY = ModelIdentity.of([("iris", "1", ("default",)), ("iris", "2", ("canary",))])


@pytest.mark.parametrize(
    ("identity", "record", "key"),
    [
        # An explicit version must be configured.
        (ONE, ("hidden", "1", None), ("hidden", "1")),
        (ONE, ("hidden", "1", "canary"), ("hidden", "1")),  # it beats any slot
        (TWO, ("churn", "2", None), ("churn", "2")),
        # A slot names a version only where the config maps it ...
        (CANARY, ("iris", None, "canary"), ("iris", "2")),
        (CANARY, ("iris", None, "default"), ("iris", "1")),
        # ... else a record without a version belongs to the model's only version.
        (ONE, ("hidden", None, "default"), ("hidden", "1")),  # KServe --endpoint default
        (ONE, ("hidden", None, None), ("hidden", "1")),
    ],
)
def test_records_that_name_a_configured_version(identity, record, key):
    assert identity.resolve(*record).key == key


@pytest.mark.parametrize(
    ("identity", "record", "says"),
    [
        (ONE, ("ghost", None, None), "model 'ghost' is not configured"),
        (ONE, ("hidden", "default", None), "names version 'default', which is not configured (configured: '1')"),
        (TWO, ("churn", None, None), "has 2 configured versions ('1', '2') and the records name none"),
        (TWO, ("churn", None, "canary"), "from deployment slot 'canary'"),
        (CANARY, ("iris", None, "blue"), "slot 'blue' is not mapped (mapped: 'default' → '1', 'canary' → '2')"),
        (CANARY, ("iris", "3", "canary"), "add a models entry with version: '3'"),
    ],
)
def test_records_that_name_none_are_refused_saying_which_rule_failed(identity, record, says):
    resolved = identity.resolve(*record)
    assert resolved.key is None and says in resolved.problem


def test_once_any_version_maps_slots_an_unmapped_slot_is_another_deployment():
    only_canary = ModelIdentity.of([("iris", "2", ("canary",))])
    assert only_canary.resolve("iris", None, "canary").key == ("iris", "2")
    assert only_canary.resolve("iris", None, "default").key is None  # not mixed into the canary
    assert only_canary.resolve("iris", None, None).key == ("iris", "2")  # no slot at all: the only version


def test_a_slot_mapped_twice_is_an_error():
    with pytest.raises(ValueError, match="slot 'canary' is mapped by versions '1' and '2'"):
        ModelIdentity.of([("iris", "1", ("canary",)), ("iris", "2", ("canary",))])
