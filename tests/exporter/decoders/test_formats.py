"""The wire-format table: one row per format, and the places that read it agree with it."""

from __future__ import annotations

from typing import get_args

from exporter.config import AggregatorKafkaConfig
from exporter.decoders.fixed_format import format_refusal
from exporter.decoders.formats import BY_FORMAT, CONFIGURABLE, FORMATS, SNIFFS
from exporter.decoders.wire_formats import WireFormat


def test_one_row_per_wire_format():
    assert [spec.wire_format for spec in FORMATS] == list(WireFormat)


def test_kafka_format_offers_auto_and_the_configurable_rows():
    choices = get_args(AggregatorKafkaConfig.model_fields["format"].annotation)
    assert choices == ("auto", *CONFIGURABLE) == ("auto", "json", "ndjson", "arrow", "kserve", "seldon")


def test_detection_order_is_total_and_unknown_is_only_the_fallback():
    orders = [spec.detection.order for spec in FORMATS if spec.detection is not None]
    assert len(set(orders)) == len(orders)
    assert [wire_format for _, wire_format in SNIFFS] == [
        WireFormat.SELDON,
        WireFormat.KSERVE,
        WireFormat.ARROW,
        WireFormat.JSON,
    ]


def test_a_fixed_format_refusal_reads_the_row_of_each_side():
    refusal = format_refusal(WireFormat.SELDON, WireFormat.ARROW, b"\xff\xff\xff\xff")
    assert refusal is not None
    assert refusal.reason is BY_FORMAT[WireFormat.SELDON].refusal
    assert refusal.detail.endswith(BY_FORMAT[WireFormat.ARROW].description)
