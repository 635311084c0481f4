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
  does not fit its request gives feature rows with status ``bad_response``;
* a response the model server answered with an error (KServe's ``statuscode`` extension,
  when the logger logs every response) gives the request's feature rows with status
  ``http_<code>``: one serving error, and no prediction.

**Logger modes.** KServe's logger may log requests only (``logger.mode: request``, common
when responses are large) or responses only. Waiting for a partner that never comes would
hold every event for the TTL and then count it as a ``no_response`` error, so each model
has a mode (:data:`LOGGER_MODES`): ``all`` pairs; ``request`` / ``response`` emit each event
at once, with a null status (no serving error either way) for a request and ``ok`` for a
response; ``auto`` (the default) pairs, and *learns* ``request`` (or ``response``) when an
event of a model leaves the buffer unpaired (its TTL passed or, for KServe, whose two sides
share a topic, the buffer was full) while the other side has never been seen for that model.
That event is emitted as in the learned mode, and so is every later one, until the other
side shows up. What has been seen and learned is part of the joiner's state, so it is
checkpointed, and a stage-2 replay learns the same.

**Copies.** A half that repeats one already taken — same id, same content — is dropped
(:class:`~exporter.decoders.joiner.HalfJoiner`) and counted as a duplicate
(``Decoded.duplicates``, ``model_health_records_duplicate_total``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping
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

# A model's payload-logger mode (KServe's ``logger.mode``, plus ``auto``).
LOGGER_MODES = ("auto", "all", "request", "response")
_ONE_SIDE = {"request": Side.REQUEST, "response": Side.RESPONSE}

ModelId = tuple["str | None", str]  # (namespace, model)
# Models whose sides are tracked (auto mode) at most: halves of unconfigured models pass here
# too in single mode, and a producer inventing names must not grow the state without end.
MAX_MODELS_TRACKED = 10_000


@dataclass(frozen=True)
class InferenceHalf:
    """One logged request or response, already decoded; ``features``/``predictions`` are
    None when that half's body could not be read (it was refused on arrival)."""

    key: Hashable
    request_id: str
    model: str
    model_namespace: str | None
    model_version: str | None  # an explicit version only: what the producer says it served
    deployment_slot: str | None  # where it was served (KServe's endpoint), not a version
    time: float | None
    features: list[dict[str, object]] | None
    predictions: list[Prediction] | None
    payload: bytes
    headers: Headers
    status: str | None = None  # a response the server answered with an error: ``http_<code>``
    # Per prediction row, a multiclass probability vector where the response logged one.
    probabilities: list[tuple[float, ...] | None] | None = None


def half_digest(half: InferenceHalf) -> bytes:
    """What makes two halves copies of one another: their bytes, headers included."""
    digest = hashlib.blake2b(half.payload, digest_size=12)
    for name, value in half.headers:
        digest.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0" + value)
    return digest.digest()


class InferenceJoiner:
    """Pairs request and response halves (bounded, TTL'd) and writes the resulting rows."""

    SIDES_SHARE_A_TOPIC = True  # both halves travel on one topic (KServe); Seldon's do not

    def __init__(
        self,
        max_pending: int = DEFAULT_MAX_PENDING,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        default_version: str | None = None,
        modes: Mapping[str, str] | None = None,
    ) -> None:
        self.halves: HalfJoiner[InferenceHalf] = HalfJoiner(max_pending, ttl_seconds)
        # A sidecar knows the version of the model beside it: it stands in for a missing one.
        self.default_version = default_version
        self.modes: dict[str, str] = dict(modes or {})  # model → configured logger mode (else auto)
        self.seen: dict[ModelId, set[Side]] = {}  # sides each model has shown
        self.learned: dict[ModelId, Side] = {}  # auto: the only side a model logs

    def configure(self, modes: Mapping[str, str]) -> None:
        """Set the configured logger mode of each model (``auto`` for models not named)."""
        for model, mode in modes.items():
            if mode not in LOGGER_MODES:
                raise ValueError(f"model {model!r}: logger mode {mode!r} is not one of {', '.join(LOGGER_MODES)}")
        self.modes = dict(modes)

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

    @property
    def duplicates(self) -> int:
        return self.halves.duplicate_requests + self.halves.duplicate_responses

    def mode_of(self, half: InferenceHalf) -> str:
        """The mode ``half``'s model is handled in now: configured, else learned, else ``all``."""
        configured = self.modes.get(half.model, "auto")
        if configured != "auto":
            return configured
        learned = self.learned.get((half.model_namespace, half.model))
        return learned.value if learned is not None else "all"

    def add_into(self, sink: DecodeSink, side: Side, half: InferenceHalf, now: float) -> None:
        """Offer one half; rows of a completed pair, and of halves that left unpaired, go to ``sink``."""
        model = (half.model_namespace, half.model)
        if model in self.seen or len(self.seen) < MAX_MODELS_TRACKED:
            self.seen.setdefault(model, set()).add(side)
        if self.learned.get(model) not in (None, side):
            del self.learned[model]  # auto learned one side, and the other has shown up after all
        mode = self.mode_of(half)
        digest = half_digest(half)
        if mode in _ONE_SIDE:
            self._leftovers(sink, self.halves.expire(now), now)
            if _ONE_SIDE[mode] is not side:
                detail = f"model {half.model!r} is configured with logger_mode {mode!r}: a {side.value} is not expected"
                sink.reject(RecordError(Reason.UNMATCHED_RESPONSE, detail), half.payload, half.headers)
            elif self.halves.take_alone(half.key, side, now, digest):
                self._emit_alone(sink, side, half, now)
            else:
                sink.duplicates += 1
            return
        self._settle(sink, self.halves.offer(half.key, side, half, now, digest), now)

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
        if step.duplicate:
            sink.duplicates += 1
        if step.pair is not None:
            request, response = step.pair
            emit_rows(sink, request, response, now, self.default_version)

    def _leftovers(self, sink: DecodeSink, leftovers: list[Leftover[InferenceHalf]], now: float) -> None:
        for left in leftovers:
            half = left.half
            model = (half.model_namespace, half.model)
            alone = self._logs_one_side(model, left.side, left.why)
            if alone:
                self.halves.settle(half.key, left.side, half_digest(half), now)
                self._emit_alone(sink, left.side, half, now)
            elif left.side is Side.REQUEST:
                emit_rows(sink, half, None, now, self.default_version)
            elif half.predictions is not None:  # an unreadable one was refused on arrival
                detail = f"no request with id {half.request_id!r} ({_departure_text(left.why)})"
                sink.reject(RecordError(Reason.UNMATCHED_RESPONSE, detail), half.payload, half.headers)

    def _logs_one_side(self, model: ModelId, side: Side, why: Departure) -> bool:
        """Whether an unpaired ``side`` of ``model`` is simply all its logger sends (auto mode:
        the other side was never seen). A half that waited its whole TTL is evidence enough to
        learn it; so is one pushed out of a full buffer when both sides share a topic (KServe:
        a full buffer without one response is no logger of responses), but not when they are
        on two topics (Seldon: one topic may be read far ahead of the other while catching
        up); one drained at shutdown had no time."""
        if self.modes.get(model[1], "auto") != "auto" or why is Departure.REPLACED:
            return False  # ``all``: a missing partner is a real gap
        if self.learned.get(model) is side:
            return True
        evidence = why is Departure.EXPIRED or (why is Departure.EVICTED and self.SIDES_SHARE_A_TOPIC)
        if not evidence or self.seen.get(model, set()) != {side}:
            return False
        self.learned[model] = side
        return True

    def _emit_alone(self, sink: DecodeSink, side: Side, half: InferenceHalf, now: float) -> None:
        if side is Side.REQUEST:
            emit_rows(sink, half, None, now, self.default_version, unanswered_status=None)
        else:
            emit_rows(sink, None, half, now, self.default_version)

    # Checkpoint support (:mod:`exporter.decoders.join_state`).
    def export_models(self) -> dict[str, dict[str, object]]:
        """What each model has shown and (auto) learned, for a checkpoint."""
        out: dict[str, dict[str, object]] = {}
        for namespace, model in {**self.seen, **self.learned}:
            sides = self.seen.get((namespace, model), set())
            learned = self.learned.get((namespace, model))
            out[f"{namespace or ''}\x1f{model}"] = {
                "namespace": namespace,
                "model": model,
                "seen": sorted(side.value for side in sides),
                "learned": learned.value if learned is not None else None,
            }
        return out

    def import_models(self, saved: Mapping[str, Mapping[str, object]]) -> None:
        self.seen, self.learned = {}, {}
        for entry in saved.values():
            namespace, model = entry.get("namespace"), str(entry["model"])
            key = (str(namespace) if namespace is not None else None, model)
            self.seen[key] = {Side(str(value)) for value in entry.get("seen", [])}  # type: ignore[attr-defined]
            learned = entry.get("learned")
            if learned is not None:
                self.learned[key] = Side(str(learned))


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
    *,
    unanswered_status: str | None = STATUS_NO_RESPONSE,
) -> None:
    """Prediction rows for one inference, from whichever halves are usable.

    The version is the one the halves carry, else ``default_version``; the deployment slot
    travels in its own column. A request without its response gets ``unanswered_status``
    (``no_response``, a serving error; None where the logger logs requests only).
    """
    halves = [half for half in (request, response) if half is not None]
    if not halves:
        return
    features = request.features if request is not None else None
    predictions = response.predictions if response is not None else None
    if response is None:
        status = unanswered_status
    elif response.status is not None and response.status != STATUS_OK:
        status, predictions = response.status, None  # the server answered with an error
    elif predictions is None:
        status = STATUS_BAD_RESPONSE
    elif features is not None and len(features) != len(predictions):
        detail = f"{len(predictions)} predictions for {len(features)} instances"
        sink.reject(RecordError(Reason.SHAPE_MISMATCH, detail), response.payload, response.headers)
        predictions, status = None, STATUS_BAD_RESPONSE
    else:
        status = STATUS_OK
    answered_error = response is not None and response.status not in (None, STATUS_OK)
    if features is None and predictions is None and not answered_error:
        return
    rows = len(features) if features is not None else len(predictions) if predictions is not None else 1
    identity = halves[0]
    model_version = _first_text([h.model_version for h in halves] + [default_version])
    slot = _first_text([h.deployment_slot for h in halves])
    timestamp = next((h.time for h in halves if h.time is not None), now)
    latency_ms = None
    if request is not None and response is not None and request.time is not None and response.time is not None:
        if response.time >= request.time:
            latency_ms = (response.time - request.time) * 1000.0
    out = sink.predictions_for(identity.model)
    source = (identity.payload, identity.headers)
    vectors = response.probabilities if response is not None and predictions is not None else None
    for row in range(rows):
        score, klass = predictions[row] if predictions is not None else (None, None)
        out.append(
            probabilities=vectors[row] if vectors is not None and row < len(vectors) else None,
            model_version=model_version,
            deployment_slot=slot,
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
