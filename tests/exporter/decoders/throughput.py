"""Decode throughput per wire format, 20 features per record (a measurement, not a test).

Run: ``python -m tests.exporter.decoders.throughput``. Records per second, best of three.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from exporter.decoders.detect import Joiners, WireMessage, decode_batch, decode_message
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
)

TOPIC = "model-predictions"
FEATURES = 20


def best_rate(records: int, run: Callable[[], object], repeats: int = 3, budget_seconds: float = 1.0) -> float:
    best = 0.0
    for _ in range(repeats):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget_seconds:
            run()
            done += records
        best = max(best, done / (time.perf_counter() - start))
    return best


def kserve_pairs(count: int) -> list[WireMessage]:
    messages = []
    for i in range(count):
        features = native_record(i, FEATURES)["features"]
        for kind, body in ((REQUEST_TYPE, {"instances": [features]}), (RESPONSE_TYPE, {"predictions": [0.93]})):
            headers = kserve_headers(f"id-{i}", kind)
            messages.append(WireMessage(json.dumps(body).encode(), "/", headers))
    return messages


def seldon_pairs(count: int) -> list[WireMessage]:
    row = [[float(j) for j in range(FEATURES)]]
    messages = []
    for i in range(count):
        key = f"id-{i}".encode()
        messages.append(WireMessage(seldon_request(row), "seldon.ns.model.m.inputs", key=key))
        messages.append(WireMessage(seldon_response([1]), "seldon.ns.model.m.outputs", key=key))
    return messages


def main() -> None:
    records = [native_record(i, FEATURES) for i in range(500)]
    one_record_messages = [WireMessage(json.dumps(r).encode(), TOPIC) for r in records]
    ndjson_message = [WireMessage(ndjson(records), TOPIC)]
    arrow_message = [WireMessage(ipc_stream(arrow_batch(500, FEATURES)), TOPIC)]
    kserve = kserve_pairs(500)
    seldon = seldon_pairs(500)

    def per_message(messages: list[WireMessage]) -> Callable[[], None]:
        def run() -> None:
            joiners = Joiners()
            for m in messages:
                decode_message(m.value, m.headers, m.topic, 0.0, joiners, key=m.key)

        return run

    def batched(messages: list[WireMessage]) -> Callable[[], None]:
        return lambda: decode_batch(messages, 0.0, Joiners())

    rows = [
        ("JSON, one record per message, decode_message each", 500, per_message(one_record_messages)),
        ("JSON, one record per message, decode_batch of 500", 500, batched(one_record_messages)),
        ("NDJSON, 500 records per message", 500, batched(ndjson_message)),
        ("Arrow IPC, 500 rows per message", 500, batched(arrow_message)),
        ("KServe binary CloudEvents, 1 instance, decode_message each", 500, per_message(kserve)),
        ("KServe binary CloudEvents, 1 instance, decode_batch of 1000 events", 500, batched(kserve)),
        ("Seldon protobuf, 1 row, decode_batch of 1000 messages", 500, batched(seldon)),
    ]
    for label, count, run in rows:
        print(f"{label:<70} {best_rate(count, run):>12,.0f} records/s")


if __name__ == "__main__":
    main()
