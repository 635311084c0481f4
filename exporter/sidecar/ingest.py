"""HTTP ingest: the sidecar's two POST endpoints, from request to queued records.

``POST /`` takes what KServe's payload logger sends (its ``logger.url``): CloudEvents in
binary mode (``ce-`` headers, a JSON body), structured mode
(``application/cloudevents+json``) or batched mode (``application/cloudevents-batch+json``),
of types ``org.kubeflow.serving.inference.request|response``, with V1 or Open Inference
Protocol v2 bodies. Request and response events are paired by ``ce-id`` in a bounded,
TTL'd buffer (:class:`~exporter.decoders.kserve.KServeJoiner`); a pair becomes one
record per instance. ``POST /v1/predictions`` takes native JSON records: one object, an
array, or NDJSON.

Decoding is the aggregator's own (:mod:`exporter.decoders`); this module adds the HTTP
rules. Checked in this order, each refusal counted in
``model_health_ingest_requests_rejected_total{reason}``:

======  ==========================  ==========================================================
status  reason                      when
======  ==========================  ==========================================================
405     ``method``                  not POST
415     ``unsupported_media_type``  a content type the endpoint does not take
413     ``too_large``               ``Content-Length`` over ``http.max_body_bytes`` (before
                                    reading), or a chunked body that grows past it
503     ``queue_full``              the buffer to Kafka is full (``Retry-After: 1``)
503     ``kafka_unavailable``       ``queue.acknowledge: delivered`` and the forwarder is not
                                    connected to Kafka (``Retry-After: 1``)
400     ``bad_body``                a body that ended early or broken chunked encoding
400     the decoder's reason        any record or event refused: invalid JSON, a CloudEvent
                                    without ``ce-id``, a missing ``model`` …; everything else
                                    in the body is still taken
503     ``delivery_timeout``        ``delivered``: Kafka had not taken the records within
                                    ``queue.acknowledge_timeout_seconds``; none were sent
                                    (they are withdrawn), so a retry cannot duplicate them
503     ``produce_failed``          ``delivered``: Kafka refused the batch carrying them
200     —                           all taken; ``records`` says how many records the request
                                    queued (for a KServe event: the rows its pair completed,
                                    which are gathered and queued as one table per batch)
======  ==========================  ==========================================================

When a 2xx is sent is ``queue.acknowledge``'s choice. ``delivered`` (the default, in
``records`` mode) answers only once the forwarder has flushed the request's records to
Kafka: the request's tables carry a :class:`~exporter.sidecar.queue.Receipt` that the
forwarder settles. A KServe response that completes a pair waits for the batch of pairs it
joined (the forwarder gathers them each turn); the request half that waits for its partner
is answered at once, as it holds nothing Kafka could take yet. ``queued`` answers as soon
as the records are in the in-memory queue.

Refused records are also counted one by one in
``model_health_records_rejected_total{topic,reason}`` and written to the dead-letter topic
(best effort: not when the buffer is full). Every answer is a small JSON object.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exporter.config import SidecarConfig
from exporter.decoders.kserve import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    KServeJoiner,
    decode_kserve_into,
)
from exporter.decoders.native_json import decode_native_json_into
from exporter.decoders.sink import DecodeSink
from exporter.httpd.body import BodyError, check_length, read_body
from exporter.pipeline.dedup import RecentRequestIds
from exporter.records import Decoded, Reason, Rejected
from exporter.sidecar.queue import Outcome, Outgoing, Receipt, RecordQueue
from exporter.sidecar.serving import ServingStats

KSERVE_PATH = "/"
NATIVE_PATH = "/v1/predictions"
# Media types of JSON records, one document or one per line; an absent type is taken as JSON.
NATIVE_TYPES = frozenset(
    {
        "",
        "application/json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    }
)
MAX_ERRORS_SHOWN = 10
# Refusals that come from pairing with some other event, not from the request at hand.
_NOT_THIS_REQUEST = frozenset({Reason.UNMATCHED_RESPONSE})
# How long a request whose records are already on the wire waits on past its timeout: the
# producer's flush gives up after 30 s and the batch is then settled as dropped.
IN_FLIGHT_WAIT_SECONDS = 45.0

StartResponse = Callable[..., Any]


class Refusal(Exception):
    """A request answered with a 4xx or 503; ``reason`` is its counter label."""

    def __init__(self, status: str, reason: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers


def _media_type(environ: dict[str, Any]) -> str:
    return str(environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media in ("", "application/json", "text/json") or media.endswith("+json")


def cloudevent_headers(environ: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The request's ``ce-`` headers and content type, as the KServe decoder takes them.

    The HTTP server decoded header bytes as ISO-8859-1; encoding back gives the bytes sent.
    """
    headers: list[tuple[str, bytes]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_CE_"):
            name = "ce-" + key[8:].lower().replace("_", "-")
            headers.append((name, str(value).encode("latin-1", "replace")))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        headers.append(("content-type", str(content_type).encode("latin-1", "replace")))
    return headers


class Ingest:
    """The POST routes, their shared KServe join buffer, and the way into the queue."""

    def __init__(
        self,
        config: SidecarConfig,
        queue: RecordQueue,
        stats: ServingStats,
        clock: Callable[[], float],
        kafka_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        self.queue = queue
        self.stats = stats
        self.clock = clock
        self.kafka_ready = kafka_ready
        # Answers wait for Kafka: the records mode's promise (summaries are published per bucket).
        self.waits_for_delivery = config.queue.acknowledge == "delivered" and config.kafka.mode == "records"
        self.acknowledge_timeout_s = config.queue.acknowledge_timeout_seconds
        self.topic = (
            config.kafka.summaries_topic if config.kafka.mode == "summaries" else config.kafka.predictions_topic
        )
        self.max_body_bytes = config.http.max_body_bytes
        self.joiner = KServeJoiner(
            config.kserve.join_max_pending,
            config.kserve.join_ttl_seconds,
            default_version=config.model.version,
            modes={config.model.name: config.kserve.logger_mode},
        )
        # Request ids Kafka confirmed: a client retrying after a 5xx although its records
        # arrived (the answer was lost) gets 2xx, and nothing is sent twice.
        self.delivered = (
            RecentRequestIds(config.queue.delivered_ids)
            if self.waits_for_delivery and config.queue.delivered_ids
            else None
        )
        self._delivered_lock = threading.Lock()
        # Rows of completed pairs gather here and become one table per batch: building an
        # Arrow table per inference would cost as much again as decoding it.
        self._pairs = DecodeSink()
        self.pair_batch_rows = config.kafka.batch_max_records
        # Settled with the pair batch now gathering; every request that completed a pair in it waits on it.
        self._pair_receipt = Receipt(shared=True)
        # The join buffer and the pair rows are shared; the KServe decode step runs under this lock.
        self._join_lock = threading.Lock()

    def routes(self) -> dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]]:
        return {KSERVE_PATH: self.kserve, NATIVE_PATH: self.native}

    # ------------------------------------------------------------------ endpoints

    def kserve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self._serve(environ, start_response, self._check_kserve, self._decode_kserve)

    def native(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self._serve(environ, start_response, self._check_native, self._decode_native)

    def _serve(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        check: Callable[[dict[str, Any]], None],
        decode: Callable[[bytes, dict[str, Any], float], tuple[Decoded, int, Receipt | None]],
    ) -> Iterable[bytes]:
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise Refusal("405 Method Not Allowed", "method", "use POST", (("Allow", "POST"),))
            check(environ)
            try:
                check_length(environ, self.max_body_bytes)
            except BodyError as error:
                raise Refusal(error.status, error.reason, error.message) from None
            if self.queue.full():
                raise self._queue_full()
            if self.waits_for_delivery and not self.kafka_ready():
                raise Refusal(
                    "503 Service Unavailable",
                    "kafka_unavailable",
                    "not connected to Kafka; records are taken only once Kafka can have them; retry later",
                    (("Retry-After", "1"),),
                )
            try:
                body = read_body(environ, self.max_body_bytes)
            except BodyError as error:
                raise Refusal(error.status, error.reason, error.message) from None
            if not body.strip():
                raise Refusal("400 Bad Request", "bad_body", "empty body")
            decoded, gathered, pairs = decode(body, environ, self.clock())
            return self._accept(decoded, gathered, pairs, start_response)
        except Refusal as refusal:
            self.stats.request_refused(refusal.reason)
            return _json(
                start_response, refusal.status, {"error": refusal.message, "reason": refusal.reason}, refusal.headers
            )

    def _queue_full(self) -> Refusal:
        return Refusal(
            "503 Service Unavailable",
            "queue_full",
            f"{self.queue.held} records are waiting for Kafka (queue.max_records {self.queue.max_records}); retry later",
            (("Retry-After", "1"),),
        )

    # ------------------------------------------------------------------ content types

    def _check_kserve(self, environ: dict[str, Any]) -> None:
        media = _media_type(environ)
        if media in (STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE):
            return
        if any(key.startswith("HTTP_CE_") for key in environ):
            if _is_json_media(media):
                return
            raise Refusal(
                "415 Unsupported Media Type",
                "unsupported_media_type",
                f"binary-mode CloudEvent with data of type {media!r}; only JSON bodies can be monitored",
            )
        raise Refusal(
            "415 Unsupported Media Type",
            "unsupported_media_type",
            f"{KSERVE_PATH} takes KServe payload-logger CloudEvents: binary mode (ce- headers) or "
            f"{STRUCTURED_CONTENT_TYPE}; native JSON records go to {NATIVE_PATH}"
            + (f" (got {media})" if media else ""),
        )

    def _check_native(self, environ: dict[str, Any]) -> None:
        media = _media_type(environ)
        if media not in NATIVE_TYPES:
            raise Refusal(
                "415 Unsupported Media Type",
                "unsupported_media_type",
                f"{NATIVE_PATH} takes application/json or application/x-ndjson, not {media}",
            )

    # ------------------------------------------------------------------ decoding

    def _decode_kserve(self, body: bytes, environ: dict[str, Any], now: float) -> tuple[Decoded, int, Receipt | None]:
        """This request's refusals, how many rows its event completed (gathered for a batch), and
        the receipt of that batch when the answer waits for it."""
        headers = tuple(cloudevent_headers(environ))
        pairs = self._pairs
        with self._join_lock:
            # Partners overdue by now are someone else's business: settle them first, so
            # their refusals are not answered to this request.
            self.joiner.expire_into(pairs, now)
            background = len(pairs.rejected)
            rows_before = pairs.pending_rows
            with pairs.guard(Reason.INVALID_CLOUDEVENT, body, headers):
                decode_kserve_into(pairs, body, headers, now, self.joiner)
            gathered = pairs.pending_rows - rows_before
            rejected, pairs.rejected = pairs.rejected, []
            duplicates, pairs.duplicates = pairs.duplicates, 0  # this event was a copy of one taken
            batch_full = pairs.pending_rows >= self.pair_batch_rows
            receipt = self._pair_receipt if gathered and self.waits_for_delivery else None
            self._publish_unpaired()
        self._forward(Decoded(rejected=rejected[:background]), own_request=False)
        if batch_full:
            self.flush_pairs()
        elif receipt is not None:
            self.queue.wake()  # the forwarder gathers the pairs on its next turn
        return Decoded(rejected=rejected[background:], duplicates=duplicates), gathered, receipt

    def flush_pairs(self) -> None:
        """Queue the rows of the pairs completed so far, as one table per model."""
        with self._join_lock:
            if not self._pairs.pending_rows and not self._pairs.rejected:
                return
            decoded = self._pairs.finish()
            receipt, self._pair_receipt = self._pair_receipt, Receipt(shared=True)
        self._forward(decoded, own_request=False, force=True, receipt=receipt if self.waits_for_delivery else None)

    def _decode_native(self, body: bytes, environ: dict[str, Any], now: float) -> tuple[Decoded, int, Receipt | None]:
        headers = (("content-type", str(environ.get("CONTENT_TYPE") or "").encode("latin-1", "replace")),)
        sink = DecodeSink()
        with sink.guard(Reason.INVALID_JSON, body, headers):
            decode_native_json_into(sink, body, headers, now)
        decoded = sink.finish()
        for table in decoded.labels:
            # The sidecar forwards predictions; labels travel on the labels topic.
            decoded.rejected.append(
                Rejected(
                    Reason.BAD_LABEL, f"{table.num_rows} label records: send labels to the labels topic", body, headers
                )
            )
        decoded.labels = []
        if self.delivered is not None and decoded.predictions:
            with self._delivered_lock:
                decoded.predictions = [
                    self.delivered.drop_seen(_model_of(table), self.topic, table) for table in decoded.predictions
                ]
                decoded.duplicates += sum(self.delivered.take_dropped().values())
        return decoded, 0, None

    # ------------------------------------------------------------------ handing on

    def _accept(
        self, decoded: Decoded, gathered: int, pairs: Receipt | None, start_response: StartResponse
    ) -> Iterable[bytes]:
        receipt = Receipt() if self.waits_for_delivery else None
        tables = self._forward(decoded, own_request=True, receipt=receipt)
        records = sum(table.num_rows for table in tables) + gathered
        if receipt is not None and tables:
            self._await(receipt, tables)
            for table in tables:  # served traffic once it is sure not to come again
                self.stats.observe(table)
            if self.delivered is not None:
                with self._delivered_lock:
                    for table in tables:
                        self.delivered.remember(_model_of(table), table)
        if pairs is not None:
            self._await(pairs, [])
        own = [r for r in decoded.rejected if r.reason not in _NOT_THIS_REQUEST]
        errors = [{"reason": r.reason.value, "detail": r.detail} for r in decoded.rejected[:MAX_ERRORS_SHOWN]]
        answer = {
            "records": records,
            "rejected": len(decoded.rejected),
            "duplicates": decoded.duplicates,
            "errors": errors,
        }
        if own:
            self.stats.request_refused(own[0].reason.value)
            return _json(start_response, "400 Bad Request", answer)
        return _json(start_response, "200 OK", answer)

    def _forward(
        self, decoded: Decoded, *, own_request: bool, force: bool = False, receipt: Receipt | None = None
    ) -> list[pa.Table]:
        """Count, stamp and queue ``decoded``; returns the tables queued.

        Raises :class:`Refusal` (503) when this request's records do not fit; records that
        come from the join buffer on their own (``own_request`` False) are dropped and
        counted instead, unless ``force`` queues them regardless. With a ``receipt`` the
        tables are settled on it; a request's own tables then count as served traffic only
        once delivered (the caller observes them), as a refused client sends them again.
        """
        tables = [self._stamped(table) for table in decoded.predictions if table.num_rows]
        for rejected in decoded.rejected:
            self.stats.records_refused(self.topic, rejected.reason.value)
        self.stats.records_duplicate(self.topic, decoded.duplicates)
        records = sum(table.num_rows for table in tables)
        if receipt is not None:
            receipt.expect(len(tables))
        if tables and not self.queue.offer([Outgoing(table=table, receipt=receipt) for table in tables], force=force):
            # Not served-traffic yet: a client that gets the 503 sends these again.
            self.stats.records_refused(self.topic, "queue_full", records)
            if own_request:
                raise self._queue_full()
            return []
        if receipt is None or not own_request:
            for table in tables:
                self.stats.observe(table)
        if decoded.rejected:
            # Best effort: a full buffer keeps room for records, not for dead letters.
            self.queue.offer([Outgoing(dead_letter=rejected) for rejected in decoded.rejected])
        return tables

    def _await(self, receipt: Receipt, tables: list[pa.Table]) -> None:
        """Wait until Kafka has ``receipt``'s tables; raises :class:`Refusal` (503) when it does not."""
        outcome = receipt.wait(self.acknowledge_timeout_s)
        if outcome is Outcome.PENDING and receipt.withdraw():
            records = sum(table.num_rows for table in tables)
            self.stats.records_refused(self.topic, "delivery_timeout", records)
            raise Refusal(
                "503 Service Unavailable",
                "delivery_timeout",
                f"Kafka did not take the records within {self.acknowledge_timeout_s:g} s; none were sent; retry",
                (("Retry-After", "1"),),
            )
        if outcome is Outcome.PENDING:  # on the wire: the flush settles it either way
            outcome = receipt.wait(IN_FLIGHT_WAIT_SECONDS)
        if outcome is Outcome.DROPPED:
            raise Refusal(
                "503 Service Unavailable", "produce_failed", "Kafka refused the records; retry", (("Retry-After", "1"),)
            )
        if outcome is not Outcome.DELIVERED:
            raise Refusal(
                "503 Service Unavailable",
                "delivery_timeout",
                "Kafka has not confirmed the records; they may still arrive",
                (("Retry-After", "1"),),
            )

    def _stamped(self, table: pa.Table) -> pa.Table:
        """Fill in the identity this sidecar knows where the records left it out."""
        model = self.config.model
        version = table.column("model_version")
        if version.null_count:
            ours = pc.fill_null(pc.equal(table.column("model"), model.name), False)
            filled = pc.if_else(pc.and_(pc.is_null(version), ours), pa.scalar(model.version), version)
            table = _replace(table, "model_version", filled)
        namespace = table.column("model_namespace")
        if model.namespace is not None and namespace.null_count:
            table = _replace(table, "model_namespace", pc.fill_null(namespace, model.namespace))
        return table

    # ------------------------------------------------------------------ the join buffer over time

    def expire(self, now: float) -> None:
        """Settle halves whose partner is overdue and queue the pairs gathered so far
        (the forwarder calls this every tick)."""
        with self._join_lock:
            self.joiner.expire_into(self._pairs, now)
            self._publish_unpaired()
        self.flush_pairs()

    def drain(self, now: float) -> None:
        """Settle every waiting half (at shutdown): requests go out without a prediction."""
        with self._join_lock:
            self.joiner.drain_into(self._pairs, now)
        self.flush_pairs()

    def _publish_unpaired(self) -> None:
        halves = self.joiner.halves
        self.stats.set_unpaired(
            {
                ("request", "expired"): halves.expired_requests,
                ("response", "expired"): halves.expired_responses,
                ("request", "evicted"): halves.evicted_requests,
                ("response", "evicted"): halves.evicted_responses,
                ("request", "replaced"): halves.replaced_requests,
                ("response", "replaced"): halves.replaced_responses,
            }
        )


def _model_of(table: pa.Table) -> str:
    """The model of a decoded table (the decoders build one table per model)."""
    return str(table.column("model")[0].as_py()) if table.num_rows else ""


def _replace(table: pa.Table, name: str, column: Any) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), column)


def _json(
    start_response: StartResponse, status: str, payload: dict[str, Any], extra: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    data = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *extra]
    start_response(status, headers)
    return [data]


def count_other_refusals(
    app: Callable[..., Iterable[bytes]], stats: ServingStats, ingest_paths: Iterable[str]
) -> Callable[..., Iterable[bytes]]:
    """Wrap the server's app so 404s and 405s outside the ingest routes are counted too."""
    own = frozenset(ingest_paths)
    reasons = {"404": "not_found", "405": "method"}

    def counted(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in own:
            return app(environ, start_response)

        def watching(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            reason = reasons.get(status[:3])
            if reason is not None:
                stats.request_refused(reason)
            return (
                start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)
            )

        return app(environ, watching)

    return counted
