"""Scrapes under concurrent load while ingesting, and memory that stays flat over a long run.

Real parts: tansu, the ``model-health aggregator`` command, its ``/metrics``.

**Scrapes under load.** While a producer streams records (and labels) in and evaluation
swaps snapshots every 0.5 s, several scraper threads hit ``/metrics`` back to back. Every
scrape must be a complete, parseable exposition (status 200, the announced length, parsed by
prometheus_client's own parser, the process's families present) and the counters each
scraper sees never go down. Scrape latency percentiles are figures, never asserted.

**Memory.** The aggregator consumes live-stamped records and labels for the whole run,
with short windows (they turn over) and a short label-join TTL (the buffer reaches its
steady state), its RSS sampled once a second. After a warm-up of the longest window plus a
join TTL, RSS must stay flat: in the soak, growth from the first to the last fifth of the
measured samples below 32 MiB + 10 %; in the short run the growth is only a figure.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.harness import (
    PREDICTIONS_TOTAL,
    AggregatorProcess,
    SteadyProducer,
    percentile,
    poll_until,
    ready,
    rss_bytes,
    samples,
    write_config,
)

MIB = 1024 * 1024
SCRAPERS = 4


def _deployment(tmp_path, broker, make_topic, profile, **extra):
    topics = {"predictions": make_topic(3), "labels": make_topic(1), "deadletter": make_topic(1)}
    deployment = write_config(
        tmp_path,
        broker.bootstrap_servers,
        topics,
        {"name": "fraud", "version": "7", "reference": str(profile)},
        "kafka-python",
        **extra,
    )
    return deployment, topics


class Scraper(threading.Thread):
    """Scrapes ``/metrics`` back to back until stopped; checks each scrape whole and parseable."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.stop_event = stop
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.series = 0
        self.last_total = 0.0

    def run(self) -> None:
        while not self.stop_event.is_set():
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=30) as response:
                    body = response.read()
                    status, length = response.status, response.headers.get("Content-Length")
            except OSError as error:
                self.failures.append(f"request failed: {error}")
                continue
            self.latencies.append(time.perf_counter() - began)
            problem = self._check(body, status, length)
            if problem:
                self.failures.append(problem)

    def _check(self, body: bytes, status: int, length: str | None) -> str | None:
        if status != 200:
            return f"status {status}"
        if length is not None and int(length) != len(body):
            return f"announced {length} bytes, got {len(body)}"
        if not body.endswith(b"\n"):
            return "exposition does not end with a newline"
        try:
            families = {family.name: family for family in text_string_to_metric_families(body.decode())}
        except Exception as error:  # noqa: BLE001 - the parser's complaint is the finding
            return f"unparseable exposition: {error}"
        if "model_health_build_info" not in families:
            return "model_health_build_info missing"
        self.series = sum(len(family.samples) for family in families.values())
        predictions = families.get("model_health_predictions")
        total = (
            next((s.value for s in predictions.samples if s.name == "model_health_predictions_total"), 0.0)
            if predictions
            else 0.0
        )
        if total < self.last_total:
            return f"predictions_total went down: {self.last_total} -> {total}"
        self.last_total = total
        return None


def test_scrapes_under_concurrent_load_while_ingesting_are_whole(
    scale, broker, make_topic, fraud_profile, tmp_path, figures, cleanup
):
    deployment, topics = _deployment(
        tmp_path,
        broker,
        make_topic,
        fraud_profile,
        windows=[
            {"name": "5m", "bucket_seconds": 10, "buckets": 30},
            {"name": "1d", "bucket_seconds": 3600, "buckets": 24},
        ],
        evaluation={"interval_seconds": 0.5},
    )
    aggregator = AggregatorProcess(deployment).start()
    cleanup.append(aggregator.stop)
    port = deployment["port"]
    poll_until(lambda: ready(port) is True, 90, "the aggregator to be ready")
    seconds = scale.pick(10.0, scale.seconds)
    rate = 1_500.0
    producer = SteadyProducer(
        broker, topics["predictions"], int(rate * seconds), rate, per_message=50, labels_topic=topics["labels"]
    ).start()
    cleanup.append(producer.stop)
    stop = threading.Event()
    scrapers = [Scraper(port, stop) for _ in range(SCRAPERS)]
    for scraper in scrapers:
        scraper.start()
    cleanup.append(stop.set)
    started = time.monotonic()
    producer.join()
    consumed_during = aggregator.counted() or 0
    stop.set()
    for scraper in scrapers:
        scraper.join(60)
    elapsed = time.monotonic() - started
    poll_until(lambda: aggregator.counted() == producer.acknowledged, scale.pick(90, 300), "every record counted")
    latencies = [x for scraper in scrapers for x in scraper.latencies]
    failures = [f for scraper in scrapers for f in scraper.failures]
    figures.record(
        sent=producer.acknowledged,
        counted=aggregator.counted(),
        faults=None,
        lost=0,
        duplicated=0,
        scrapes=len(latencies),
        scrapers=SCRAPERS,
        failed_scrapes=len(failures),
        series=max(s.series for s in scrapers),
        counted_while_scraping=int(consumed_during),
        scrape_p50_ms=round(1000 * percentile(latencies, 50), 1),
        scrape_p95_ms=round(1000 * percentile(latencies, 95), 1),
        scrape_p99_ms=round(1000 * percentile(latencies, 99), 1),
        scrape_max_ms=round(1000 * max(latencies), 1),
        seconds=round(elapsed, 1),
    )
    assert not failures, failures[:5]
    assert len(latencies) >= SCRAPERS * 5
    assert consumed_during > 0, "the aggregator ingested while it was scraped"
    assert samples(port) is not None
    final = aggregator.metrics()
    assert final[PREDICTIONS_TOTAL] == producer.acknowledged


def test_memory_stays_flat_over_a_long_run(scale, broker, make_topic, fraud_profile, tmp_path, figures, cleanup):
    # Windows and the label join reach their steady state within two minutes.
    windows = [{"name": "1m", "bucket_seconds": 10, "buckets": 6}, {"name": "2m", "bucket_seconds": 20, "buckets": 6}]
    join_ttl = 60.0
    deployment, topics = _deployment(
        tmp_path,
        broker,
        make_topic,
        fraud_profile,
        windows=windows,
        labels={"join_ttl_seconds": join_ttl, "max_pending": 50_000},
        evaluation={"interval_seconds": 1.0},
        allowed_lateness_seconds=60,
    )
    aggregator = AggregatorProcess(deployment).start()
    cleanup.append(aggregator.stop)
    port = deployment["port"]
    poll_until(lambda: ready(port) is True, 90, "the aggregator to be ready")
    seconds = scale.pick(12.0, max(scale.seconds, 240.0))
    rate = 1_000.0
    producer = SteadyProducer(
        broker,
        topics["predictions"],
        int(rate * seconds),
        rate,
        per_message=50,
        live=True,
        labels_topic=topics["labels"],
    ).start()
    cleanup.append(producer.stop)
    started = time.monotonic()
    samples_rss: list[tuple[float, int]] = []
    while not producer.done:
        value = rss_bytes(aggregator.pid or -1)
        if value is not None:
            samples_rss.append((time.monotonic() - started, value))
        time.sleep(1.0)
    poll_until(lambda: aggregator.counted() == producer.acknowledged, scale.pick(90, 300), "every record counted")
    # The warm-up: the longest window plus a join TTL (in the short run, the first half).
    warm_up = scale.pick(seconds / 2, 120.0 + join_ttl)
    measured = [rss for at, rss in samples_rss if at >= warm_up]
    fifth = max(len(measured) // 5, 1)
    first, last = statistics.median(measured[:fifth]), statistics.median(measured[-fifth:])
    growth = last - first
    bound = 32 * MIB + 0.10 * first
    figures.record(
        sent=producer.acknowledged,
        counted=aggregator.counted(),
        faults=None,
        lost=0,
        duplicated=0,
        rss_after_warm_up_mib=round(first / MIB, 1),
        rss_end_mib=round(last / MIB, 1),
        growth_mib=round(growth / MIB, 1),
        growth_bound_mib=round(bound / MIB, 1) if scale.soak else None,
        rss_peak_mib=round(max(r for _, r in samples_rss) / MIB, 1),
        rss_samples=len(samples_rss),
        warm_up_s=round(warm_up),
        seconds=round(time.monotonic() - started, 1),
    )
    assert aggregator.counted() == producer.acknowledged
    assert len(measured) >= 3
    if scale.soak:
        assert growth < bound, f"RSS grew {growth / MIB:.1f} MiB after warm-up (bound {bound / MIB:.1f} MiB)"
