"""The sidecar killed with SIGKILL at random moments while a model server posts to it.

Real parts: tansu, the ``model-health sidecar`` command (HTTP ingest → bounded queue →
Kafka), the aggregator's own consuming code (in this process) counting the topic.

The clients do what a payload logger's retrying HTTP client does: every 5xx and every
connection error is retried (a short pause, the same body) until it is answered 2xx. What
"exact" means then:

- every record is answered 2xx in the end, and every one is in the topic — none lost. A 2xx
  from ``POST /v1/predictions`` means Kafka has the records (``queue.acknowledge:
  delivered``, the default): the sidecar answers only once the flush carrying them is
  acknowledged;
- a kill between Kafka's acknowledgement and the answer leaves records in the topic that the
  client did not see acknowledged, and its retry writes them again: the topic holds copies
  (``written_twice``). That is the at-least-once edge of any acknowledged hand-off. A sidecar
  still alive when such a retry comes answers it from its memory of confirmed request ids and
  sends nothing (``queue.delivered_ids``); after a kill that memory is gone, and the
  aggregator drops the copy by request id before counting it
  (``model_health_records_duplicate_total``);
- so the aggregator counts every record exactly once — 0 lost, 0 duplicated — and its
  duplicate counter holds exactly the copies in the topic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx

from exporter.kafka.embedded import free_port
from tests.exporter.aggregator.test_broker import SCRIPT
from tests.exporter.sidecar.test_broker import aggregator_for
from tests.reliability.harness import poll_until, records, request_ids_in_topic

QUEUE_MAX_RECORDS = 2_000
PER_POST = 10
CLIENTS = 4  # a payload logger's workers: several requests are in flight when a kill comes
RETRY_PAUSE_S = 0.25


@dataclass
class Poster:
    """One worker of a model server's payload logger: posts NDJSON bodies of records
    ``first … first+total-1`` at a steady pace, notes each answer."""

    port: int
    first: int
    total: int
    records_per_second: float
    accepted: list[str] = field(default_factory=list)  # request ids answered 2xx
    statuses: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    not_resent: int = 0  # records a retry brought that the sidecar knew were in Kafka already
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Poster:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _note(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1

    def _run(self) -> None:
        started = time.monotonic()
        pending: list[dict] = []
        n = 0
        with httpx.Client(timeout=5.0) as client:
            while n < self.total and not self._stop.is_set():
                if not pending:
                    pending = records(self.first + n, min(2_000, self.total - n), seed=11)
                batch, pending = pending[:PER_POST], pending[PER_POST:]
                due = started + (n + len(batch)) / self.records_per_second
                if (wait := due - time.monotonic()) > 0:
                    self._stop.wait(wait)
                now = time.time()
                for record in batch:
                    record.pop("_label")
                    record["timestamp"] = now
                body = "\n".join(json.dumps(r) for r in batch).encode()
                while not self._stop.is_set():  # a retrying client: the same body until a 2xx
                    try:
                        answer = client.post(
                            f"http://127.0.0.1:{self.port}/v1/predictions",
                            content=body,
                            headers={"Content-Type": "application/x-ndjson"},
                        )
                    except httpx.HTTPError as error:
                        self._note(type(error).__name__)
                    else:
                        self._note(str(answer.status_code))
                        if 200 <= answer.status_code < 300:
                            self.accepted.extend(record["request_id"] for record in batch)
                            self.not_resent += answer.json().get("duplicates", 0)
                            break
                        assert answer.status_code >= 500, answer.text  # only a 5xx is worth a retry
                    self.retries += 1
                    self._stop.wait(RETRY_PAUSE_S)
                n += len(batch)


def test_kill_9_with_clients_retrying_every_5xx_loses_nothing_and_counts_nothing_twice(
    scale, broker, make_topic, fraud_profile, tmp_path, figures, cleanup
):
    rng = scale.rng("sidecar-kill")
    topic = make_topic(2)
    port = free_port()
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        json.dumps(
            {
                "model": {"name": "fraud", "version": "7"},
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "predictions_topic": topic,
                    "deadletter_topic": topic + "-dead",
                    "batch_max_seconds": 0.5,
                },
                "queue": {"max_records": QUEUE_MAX_RECORDS},
                "gpu": {"mode": "off"},
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log = tmp_path / "sidecar.log"
    processes: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [str(SCRIPT), "sidecar", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        processes.append(process)

        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the sidecar exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                    and "kafka connected" in httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).text
                )
            except httpx.HTTPError:
                return False

        poll_until(serving, 90, "the sidecar to serve and reach Kafka")
        return process

    def kill_all() -> None:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    cleanup.append(kill_all)
    rate = 400.0
    seconds = scale.pick(12.0, scale.seconds)
    process = start()
    share = int(rate * seconds) // CLIENTS
    posters = [Poster(port, c * share, share, rate / CLIENTS).start() for c in range(CLIENTS)]
    cleanup.extend(poster.stop for poster in posters)
    started = time.monotonic()
    kills: list[float] = []
    queued_at_kill: list[int] = []
    while True:
        time.sleep(rng.uniform(0.5, 4.0))
        if all(poster.done for poster in posters):
            break
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            queued = next(
                int(float(line.rsplit(" ", 1)[1]))
                for line in text.splitlines()
                if line.startswith("model_health_ingest_queue_records")
            )
        except (httpx.HTTPError, StopIteration):
            queued = -1
        process.send_signal(signal.SIGKILL)  # whatever it holds in memory is gone
        process.wait()
        kills.append(round(time.monotonic() - started, 1))
        queued_at_kill.append(queued)
        time.sleep(rng.uniform(0.0, 1.0))  # the pod restarts; meanwhile posts fail
        process = start()
    for poster in posters:
        poster.stop()
    process.send_signal(signal.SIGTERM)  # the last one stops cleanly: it drains its buffer
    assert process.wait(timeout=60) == 0, log.read_text()[-2000:]
    accepted = {i for poster in posters for i in poster.accepted}
    statuses: dict[str, int] = {}
    for poster in posters:
        for what, count in poster.statuses.items():
            statuses[what] = statuses.get(what, 0) + count
    sent = {f"r{n}" for n in range(share * CLIENTS)}
    in_topic, ids = request_ids_in_topic(broker, topic, len(accepted))
    aggregator = aggregator_for(broker, topic, fraud_profile, tmp_path / "aggregator-state")
    try:
        aggregator.subscribe()
        counted = lambda: aggregator.counters.predictions[("fraud", "7")]  # noqa: E731
        deadline = time.monotonic() + 120
        while counted() + sum(aggregator.counters.duplicates.values()) < in_topic and time.monotonic() < deadline:
            aggregator.poll_once()
        for _ in range(3):  # and nothing more
            aggregator.poll_once()
        counted_records = counted()
        dropped = sum(aggregator.counters.duplicates.values())
    finally:
        aggregator.consumer.close()
        aggregator.producer.close()
    lost = sent - ids
    figures.record(
        sent=len(sent),
        counted=counted_records,
        faults=len(kills),
        lost=len(lost),
        duplicated=counted_records - len(ids),
        accepted_2xx=len(accepted),
        in_topic=in_topic,
        written_twice=in_topic - len(ids),
        dropped_by_aggregator=dropped,
        not_resent_by_sidecar=sum(poster.not_resent for poster in posters),
        retries=sum(poster.retries for poster in posters),
        queued_at_kill=" ".join(map(str, queued_at_kill)),
        answers=" ".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
        seconds=round(time.monotonic() - started, 1),
    )
    assert kills, "the sidecar was never killed"
    assert accepted == sent, "a retrying client gets every record answered 2xx in the end"
    assert not lost, f"{len(lost)} records answered 2xx are not in the topic"
    assert ids == sent
    assert counted_records == len(ids), "the aggregator counts every record once, copies or not"
    assert dropped == in_topic - len(ids), "every copy in the topic is counted as a duplicate"
