"""KServe payload-logger traffic for the scale-out tests: request and response CloudEvents
(binary mode, KafkaSink ``ce_`` headers) of the three model versions, unkeyed, plus the
incomplete and refused cases single mode counts — requests whose response never comes,
responses without a request, an unreadable response body, halves of an unconfigured model —
and labels for every other inference."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from exporter.demo.synthetic import synthetic_table
from tests.exporter.aggregator.scaleout.traffic import MODELS, SHAPE
from tests.exporter.decoders.messages import REQUEST_TYPE, RESPONSE_TYPE, kafka_headers, kserve_headers

Wire = tuple[bytes, tuple[tuple[str, bytes], ...]]  # value, headers


@dataclass(frozen=True)
class KServeTraffic:
    messages: list[Wire]  # request and response halves, in the order they are produced
    labels: list[bytes]
    pairs: int  # inferences with both halves readable


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _half(event_id: str, kind: str, model: str, version: str, at: float, body: dict) -> Wire:
    headers = kserve_headers(event_id, kind, service=model, namespace="prod", prefix="ce_", time=_time(at))
    headers["ce_modelversion"] = version
    return json.dumps(body).encode(), tuple(kafka_headers(headers))


def make_kserve_traffic(
    rows: int,
    base_time: float,
    seed: int = 3,
    tag: str = "a",
    extras: bool = True,
    spacing: float = 1.0,
    batch: int = 1,
) -> KServeTraffic:
    """``rows`` inferences per model version, ``spacing`` seconds apart; each request is followed
    (a few messages later) by its response, so on a round-robin topic the two halves
    land on different partitions. With ``batch`` > 1 each request carries that many instances
    (rows), whose records KServe's decoder names ``<id>/<row>``, and labels name them so."""
    halves: list[tuple[float, int, Wire]] = []
    labels: list[bytes] = []
    pairs = 0
    for index, (model, version) in enumerate(MODELS):
        table = synthetic_table(rows * batch, seed=seed + index, drift=index != 1, **SHAPE).to_pylist()
        for i in range(rows):
            group = table[i * batch : (i + 1) * batch]
            event_id = f"{tag}-{model}-{version}-{i}"
            at = base_time + i * spacing + index / 10 * spacing
            instances = [{k: v for k, v in row.items() if k not in ("prediction", "label") and v == v} for row in group]
            request = _half(event_id, REQUEST_TYPE, model, version, at, {"instances": instances})
            response = _half(
                event_id,
                RESPONSE_TYPE,
                model,
                version,
                at + (5 + i % 40) / 1000,
                {"predictions": [row["prediction"] for row in group]},
            )
            halves.append((at, 0, request))
            halves.append((at + 1.5 * spacing, 1, response))  # answered while the next requests come in
            pairs += 1
            if i % 2 == 0:
                for row_index, row in enumerate(group):
                    labels.append(
                        json.dumps(
                            {
                                "model": model,
                                "request_id": event_id if batch == 1 else f"{event_id}/{row_index}",
                                "label": row["label"],
                                "timestamp": base_time + (rows + i) * spacing,
                            }
                        ).encode()
                    )
    if extras:
        model, version = MODELS[0]
        at = base_time + 2
        halves.append(
            (at, 0, _half(f"{tag}-lonely-request", REQUEST_TYPE, model, version, at, {"instances": [{"num_00": 1.0}]}))
        )
        halves.append(
            (at, 1, _half(f"{tag}-lonely-response", RESPONSE_TYPE, model, version, at, {"predictions": [0.5]}))
        )
        # A response whose body cannot be read: refused on arrival; its request still gives a record.
        halves.append(
            (at + 1, 0, _half(f"{tag}-bad-body", REQUEST_TYPE, model, version, at, {"instances": [{"num_00": 2.0}]}))
        )
        halves.append((at + 1, 1, _half(f"{tag}-bad-body", RESPONSE_TYPE, model, version, at, {"nothing": 1})))
        halves.append((at + 2, 0, _half(f"{tag}-ghost", REQUEST_TYPE, "ghost", "1", at, {"instances": [{"x": 1.0}]})))
        halves.append((at + 2, 1, _half(f"{tag}-ghost", RESPONSE_TYPE, "ghost", "1", at, {"predictions": [1]})))
    halves.sort(key=lambda h: (h[0], h[1]))
    return KServeTraffic([wire for *_, wire in halves], labels, pairs)
