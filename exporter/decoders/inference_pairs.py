"""Request/response halves of logged inferences, and the joiner that turns pairs into rows.

Used by the KServe and Seldon decoders, whose logs split one inference in two. A pair
becomes one prediction row per batch row: features from the request, score and class
from the response, latency from the two halves' times. What a monitoring user needs
when a pair is incomplete:

* a request whose response never came (TTL, full buffer) still shows its features:
  rows with null predictions and status ``no_response``, counted in
  ``expired_requests`` / ``evicted_requests``;
* a response whose request never came is refused as ``unmatched_response``;
* an unreadable half is refused when it arrives, and its partner is still emitted —
  an image request too wide to monitor still gives prediction rows; a response that
  does not fit its request gives feature rows with status ``bad_response``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from exporter.decoders.field_values import Prediction
from exporter.decoders.joiner import (
    DEFAULT_MAX_PENDING,
    DEFAULT_TTL_SECONDS,
    Departure,
    HalfJoiner,
    JoinStep,
    Leftover,
    Side,
)
from exporter.decoders.message_headers import Headers
from exporter.decoders.record_error import RecordError
from exporter.decoders.sink import DecodeSink
from exporter.records import Decoded, Reason

STATUS_OK = "ok"
STATUS_NO_RESPONSE = "no_response"
STATUS_BAD_RESPONSE = "bad_response"


@dataclass(frozen=True)
class InferenceHalf:
    """One logged request or response, already decoded; ``features``/``predictions`` are
    None when that half's body could not be read (it was refused on arrival)."""

    key: Hashable
    request_id: str
    model: str
    model_namespace: str | None
    model_version: str | None
    fallback_version: str | None  # a deployment slot (KServe's endpoint) when no version is known
    time: float | None
    features: list[dict[str, object]] | None
    predictions: list[Prediction] | None
    payload: bytes
    headers: Headers


class InferenceJoiner:
    """Pairs request and response halves (bounded, TTL'd) and writes the resulting rows."""

    def __init__(
        self,
        max_pending: int = DEFAULT_MAX_PENDING,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        default_version: str | None = None,
    ) -> None:
        self.halves: HalfJoiner[InferenceHalf] = HalfJoiner(max_pending, ttl_seconds)
        # A sidecar knows the version of the model beside it; that beats a deployment slot.
        self.default_version = default_version

    @property
    def pending(self) -> int:
        return self.halves.pending

    @property
    def joined(self) -> int:
        return self.halves.joined

    @property
    def expired_requests(self) -> int:
        return self.halves.expired_requests

    @property
    def expired_responses(self) -> int:
        return self.halves.expired_responses

    @property
    def evicted_requests(self) -> int:
        return self.halves.evicted_requests

    @property
    def evicted_responses(self) -> int:
        return self.halves.evicted_responses

    def add_into(self, sink: DecodeSink, side: Side, half: InferenceHalf, now: float) -> None:
        """Offer one half; rows of a completed pair, and of halves that left unpaired, go to ``sink``."""
        self._settle(sink, self.halves.offer(half.key, side, half, now), now)

    def expire_into(self, sink: DecodeSink, now: float) -> None:
        """Emit or refuse the halves whose partner is overdue (call this now and then)."""
        self._leftovers(sink, self.halves.expire(now), now)

    def expire_each_into(self, sink_for: Callable[[Side, InferenceHalf], DecodeSink], now: float) -> None:
        """As :meth:`expire_into`, each leftover into the sink ``sink_for`` picks for it."""
        for left in self.halves.expire(now):
            self._leftovers(sink_for(left.side, left.half), [left], now)

    def drain_into(self, sink: DecodeSink, now: float) -> None:
        """Emit or refuse every waiting half (at shutdown)."""
        self._leftovers(sink, self.halves.drain(), now)

    def expire(self, now: float) -> Decoded:
        sink = DecodeSink()
        self.expire_into(sink, now)
        return sink.finish()

    def drain(self, now: float) -> Decoded:
        sink = DecodeSink()
        self.drain_into(sink, now)
        return sink.finish()

    def _settle(self, sink: DecodeSink, step: JoinStep[InferenceHalf], now: float) -> None:
        self._leftovers(sink, step.leftovers, now)
        if step.pair is not None:
            request, response = step.pair
            emit_rows(sink, request, response, now, self.default_version)

    def _leftovers(self, sink: DecodeSink, leftovers: list[Leftover[InferenceHalf]], now: float) -> None:
        for left in leftovers:
            if left.side is Side.REQUEST:
                emit_rows(sink, left.half, None, now, self.default_version)
            elif left.half.predictions is not None:  # an unreadable one was refused on arrival
                detail = f"no request with id {left.half.request_id!r} ({_departure_text(left.why)})"
                sink.reject(RecordError(Reason.UNMATCHED_RESPONSE, detail), left.half.payload, left.half.headers)


def _departure_text(why: Departure) -> str:
    return {
        Departure.EXPIRED: "waited past the TTL",
        Departure.EVICTED: "pushed out of a full join buffer",
        Departure.REPLACED: "replaced by a newer response with the same id",
        Departure.DRAINED: "still waiting at shutdown",
    }[why]


def emit_rows(
    sink: DecodeSink,
    request: InferenceHalf | None,
    response: InferenceHalf | None,
    now: float,
    default_version: str | None = None,
) -> None:
    """Prediction rows for one inference, from whichever halves are usable.

    The version is the one the halves carry, else ``default_version``, else the slot.
    """
    halves = [half for half in (request, response) if half is not None]
    if not halves:
        return
    features = request.features if request is not None else None
    predictions = response.predictions if response is not None else None
    if response is None:
        status = STATUS_NO_RESPONSE
    elif predictions is None:
        status = STATUS_BAD_RESPONSE
    elif features is not None and len(features) != len(predictions):
        detail = f"{len(predictions)} predictions for {len(features)} instances"
        sink.reject(RecordError(Reason.SHAPE_MISMATCH, detail), response.payload, response.headers)
        predictions, status = None, STATUS_BAD_RESPONSE
    else:
        status = STATUS_OK
    if features is None and predictions is None:
        return
    rows = len(features) if features is not None else len(predictions or ())
    identity = halves[0]
    model_version = _first_text(
        [h.model_version for h in halves] + [default_version] + [h.fallback_version for h in halves]
    )
    timestamp = next((h.time for h in halves if h.time is not None), now)
    latency_ms = None
    if request is not None and response is not None and request.time is not None and response.time is not None:
        if response.time >= request.time:
            latency_ms = (response.time - request.time) * 1000.0
    out = sink.predictions_for(identity.model)
    source = (identity.payload, identity.headers)
    for row in range(rows):
        score, klass = predictions[row] if predictions is not None else (None, None)
        out.append(
            model_version=model_version,
            model_namespace=identity.model_namespace,
            request_id=identity.request_id if rows == 1 else f"{identity.request_id}/{row}",
            timestamp=timestamp,
            prediction_score=score,
            prediction_class=klass,
            latency_ms=latency_ms,
            status=status,
            features=features[row] if features is not None else {},
            source=source,
        )


def _first_text(values: list[str | None]) -> str | None:
    return next((v for v in values if v), None)
