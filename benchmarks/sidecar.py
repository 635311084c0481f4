"""Sidecar benchmark: HTTP ingest rate into a real broker, and /metrics scrape time with GPUs.

    python benchmarks/sidecar.py [--requests N] [--clients C] [--batch B] [--format ndjson|arrow]
                                 [--acknowledge delivered,queued] [--json PATH]

Set-up: one ``exporter.kafka.embedded.EmbeddedBroker`` (tansu, in memory, loopback) with a fresh
3-partition topic per scenario; the sidecar runs in its own process (this script with
``--serve``), built as ``model-health sidecar`` builds it but with the fake NVML replaying the
recorded H200 capture (``exporter.gpu.fake.load_fake``) so its GPU collector samples every
second. Its config: ``queue.max_records`` 10,000, ``kafka.batch_max_records`` 500,
``kafka.batch_max_seconds`` 0.2, ``kafka.format`` from ``--format``, client kafka-python,
``queue.acknowledge`` each of ``--acknowledge`` in turn (default both, side by side):
``delivered`` answers once Kafka has the records, ``queued`` once they are in the buffer.

Load: ``--clients`` threads in this process, each with its own keep-alive
``http.client.HTTPConnection`` (unless the scenario says otherwise), posting its share of
``--requests`` requests back to back; a 503 (queue full) is retried after 10 ms and counted.
Records have 20 features (15 numeric, 5 categorical), like the ingest benchmark's.

Scenarios:

* ``native batch``   ``POST /v1/predictions``, NDJSON bodies of ``--batch`` records;
* ``native single``  the same endpoint, one JSON record per request;
* ``native single (no keep-alive)``  as above with ``Connection: close`` on every request
  (what the stdlib server did before keep-alive: one TCP connection per request);
* ``kserve``         ``POST /`` binary-mode CloudEvents as KServe's logger sends them: per
  inference a request event (V1 ``instances``, one row of 20 values) then its response event,
  each client pairing its own ids; one inference = two requests = one record.

Per scenario and acknowledgement: HTTP requests/s (first request sent → last answer read),
the median and p99 time to an answer, records/s over the same span, and records/s end to end (→ the sidecar's queue gauge back at 0, i.e. every record
acknowledged by the broker). Every scenario checks that the sidecar counted exactly the
records sent and refused none.

Scrape: after the scenarios, the median of 50 ``GET /metrics`` (keep-alive) with the GPU
collector sampling, and the number of series in the answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES_NUMERIC, FEATURES_CATEGORICAL = 15, 5
PARTITIONS = 3
SCENARIOS = ("native batch", "native single", "native single (no keep-alive)", "kserve")
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"


# ------------------------------------------------------------------ the sidecar process


def serve(config_path: Path) -> None:
    """Run the sidecar with the fake NVML until SIGTERM; print its port once it serves."""
    import logging

    from exporter.config import SidecarConfig, load_config
    from exporter.gpu.fake import load_fake
    from exporter.sidecar import Sidecar

    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sidecar = Sidecar(load_config(config_path, SidecarConfig), nvml=load_fake(realtime=True)).start()
    print(f"READY {sidecar.port}", flush=True)
    while not stop.wait(0.5):
        pass
    sidecar.stop()


# ------------------------------------------------------------------ requests


def record(i: int, now: float) -> dict[str, Any]:
    features: dict[str, Any] = {f"x{j}": (i % 97) * 0.5 + j for j in range(FEATURES_NUMERIC)}
    features.update({f"c{j}": f"v{(i + j) % 7}" for j in range(FEATURES_CATEGORICAL)})
    return {
        "model": "fraud",
        "model_version": "7",
        "request_id": f"r{i}",
        "timestamp": now,
        "features": features,
        "prediction": (i % 100) / 100,
        "latency_ms": 12.5,
    }


def native_requests(count: int, batch: int) -> list[tuple[str, bytes, dict[str, str]]]:
    now = time.time()
    headers = {"Content-Type": "application/x-ndjson" if batch > 1 else "application/json"}
    out = []
    for r in range(count):
        lines = [json.dumps(record(r * batch + i, now)) for i in range(batch)]
        out.append(("/v1/predictions", "\n".join(lines).encode(), headers))
    return out


def kserve_requests(inferences: int) -> list[tuple[str, bytes, dict[str, str]]]:
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = []
    for i in range(inferences):
        event_id = f"{uuid.uuid4()}"
        row = [(i % 97) * 0.5 + j for j in range(FEATURES_NUMERIC + FEATURES_CATEGORICAL)]
        for kind, body in ((REQUEST_TYPE, {"instances": [row]}), (RESPONSE_TYPE, {"predictions": [i % 2]})):
            out.append(
                (
                    "/",
                    json.dumps(body).encode(),
                    {
                        "Content-Type": "application/json",
                        "ce-specversion": "1.0",
                        "ce-id": event_id,
                        "ce-source": "http://localhost:9081/",
                        "ce-type": kind,
                        "ce-time": moment,
                        "ce-inferenceservicename": "fraud",
                        "ce-namespace": "prod",
                        "ce-component": "predictor",
                        "ce-endpoint": "default",
                    },
                )
            )
    return out


def drive(
    port: int, requests: list[tuple[str, bytes, dict[str, str]]], clients: int, keep_alive: bool, pairs: bool = False
) -> dict[str, Any]:
    """Post ``requests`` from ``clients`` threads; returns timings and answer counts."""
    # KServe: a request event and its response stay with one client, in order.
    unit = 2 if pairs else 1
    units = [requests[i : i + unit] for i in range(0, len(requests), unit)]
    shares = [[r for u in units[c::clients] for r in u] for c in range(clients)]
    retries = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        barrier.wait()
        for path, body, headers in shares[index]:
            while True:
                sent = dict(headers) if keep_alive else {**headers, "Connection": "close"}
                try:
                    asked = time.perf_counter()
                    connection.request("POST", path, body, sent)
                    response = connection.getresponse()
                    response.read()
                except (ConnectionError, http.client.HTTPException) as error:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    failures.append(repr(error))
                    continue
                if not keep_alive:
                    connection.close()
                if response.status == 503:
                    retries[index] += 1
                    time.sleep(0.01)
                    continue
                if response.status != 200:
                    failures.append(f"{response.status}")
                latencies[index].append(time.perf_counter() - asked)
                break
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    answered = sorted(t for share in latencies for t in share)
    return {
        "seconds": time.perf_counter() - started,
        "started": started,
        "retries": sum(retries),
        "failures": failures[:5],
        "failed": len(failures),
        "latency_p50_ms": answered[len(answered) // 2] * 1000 if answered else float("nan"),
        "latency_p99_ms": answered[int(len(answered) * 0.99) - 1] * 1000 if answered else float("nan"),
    }


# ------------------------------------------------------------------ metrics


def scrape(port: int, connection: http.client.HTTPConnection | None = None) -> tuple[dict[str, float], float]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    took = time.perf_counter() - started
    if own:
        connection.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out, took


def counted(port: int) -> tuple[float, float, float]:
    """(predictions counted, records queued, records refused) as the sidecar reports them."""
    samples, _ = scrape(port)
    predictions = sum(v for k, v in samples.items() if k.startswith("model_health_predictions_total{"))
    # Refusals for a full queue are retried by the clients (counted as 503 retries); any other is a loss.
    refused = sum(
        v
        for k, v in samples.items()
        if k.startswith("model_health_records_rejected_total{") and 'reason="queue_full"' not in k
    )
    return predictions, samples.get("model_health_ingest_queue_records", -1.0), refused


def start_sidecar(broker: Any, topic: str, fmt: str, acknowledge: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    from exporter.kafka.embedded import free_port

    config = workdir / f"{topic}.yaml"
    config.write_text(
        json.dumps(
            {
                "model": {"name": "fraud", "version": "7", "namespace": "prod"},
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "predictions_topic": topic,
                    "format": fmt,
                    "batch_max_records": 500,
                    "batch_max_seconds": 0.2,
                },
                "gpu": {"mode": "sidecar", "interval_seconds": 1},
                "http": {"host": "127.0.0.1", "port": free_port()},
                "queue": {"max_records": 10_000, "acknowledge": acknowledge},
            }
        )
    )
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(config)],
        stdout=subprocess.PIPE,
        stderr=open(workdir / f"{topic}.log", "wb"),
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("READY"):
        process.kill()
        raise RuntimeError(f"the sidecar did not start: {(workdir / f'{topic}.log').read_text()[-2000:]}")
    return process, int(line.split()[1])


def stop_sidecar(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_scenario(broker: Any, name: str, acknowledge: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    topic = f"sidecar-bench-{uuid.uuid4().hex[:8]}"
    broker.create_topics([topic], partitions=PARTITIONS)
    if name == "native batch":
        requests, records, pairs = native_requests(args.requests, args.batch), args.requests * args.batch, False
    elif name == "kserve":
        inferences = args.requests // 2
        requests, records, pairs = kserve_requests(inferences), inferences, True
    else:
        requests, records, pairs = native_requests(args.requests, 1), args.requests, False
    process, port = start_sidecar(broker, topic, args.format, acknowledge, workdir)
    try:
        run = drive(port, requests, args.clients, keep_alive="no keep-alive" not in name, pairs=pairs)
        http_done = time.perf_counter()
        deadline = time.monotonic() + 120
        while True:
            predictions, queued, refused = counted(port)
            if (predictions >= records and queued == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        forwarded = time.perf_counter()
        result = {
            "scenario": name,
            "acknowledge": acknowledge,
            "requests": len(requests),
            "records": records,
            "clients": args.clients,
            "latency_p50_ms": run["latency_p50_ms"],
            "latency_p99_ms": run["latency_p99_ms"],
            "http_seconds": http_done - run["started"],
            "requests_per_s": len(requests) / (http_done - run["started"]),
            "records_per_s_http": records / (http_done - run["started"]),
            "records_per_s_end_to_end": records / (forwarded - run["started"]),
            "retries_503": run["retries"],
            "failed": run["failed"],
            "failures": run["failures"],
            "counted": predictions,
            "refused": refused,
            "exact": predictions == records and refused == 0 and queued == 0,
        }
        if name == "kserve" and acknowledge == args.acknowledge.split(",")[0]:
            result["scrape"] = measure_scrape(port)
        return result
    finally:
        stop_sidecar(process)


def measure_scrape(port: int, rounds: int = 50) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    deadline = time.monotonic() + 30
    while scrape(port, connection)[0].get("model_health_gpu_collector_up") != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    timings, series = [], 0
    for _ in range(rounds):
        samples, took = scrape(port, connection)
        timings.append(took)
        series = len(samples)
    connection.close()
    gpu_series = sum(1 for k in samples if k.startswith("model_health_gpu_"))
    return {
        "median_ms": statistics.median(timings) * 1000,
        "p95_ms": sorted(timings)[int(rounds * 0.95) - 1] * 1000,
        "series": series,
        "gpu_series": gpu_series,
        "gpu_up": samples.get("model_health_gpu_collector_up"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4_000, help="HTTP requests per scenario (default 4000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--batch", type=int, default=100, help="records per native batch request (default 100)")
    parser.add_argument("--format", choices=("ndjson", "arrow"), default="ndjson", help="kafka.format (default ndjson)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--acknowledge",
        default="delivered,queued",
        help="queue.acknowledge values to run each scenario with (default delivered,queued)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from exporter.kafka.embedded import EmbeddedBroker

    console = Console() if sys.stdout.isatty() else Console(width=160)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "format": args.format,
        "date": datetime.now(UTC).date().isoformat(),
        "runs": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmp,
        EmbeddedBroker() as broker,
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
        ) as progress,
    ):
        modes = [m.strip() for m in args.acknowledge.split(",") if m.strip()]
        task = progress.add_task("starting", total=len(scenarios) * len(modes))
        for name in scenarios:
            for mode in modes:
                progress.update(
                    task,
                    description=f"{name}, acknowledge {mode}: {args.requests:,} requests from {args.clients} clients",
                )
                results["runs"].append(run_scenario(broker, name, mode, args, Path(tmp)))
                progress.advance(task)

    table = Table(
        title=f"Sidecar HTTP ingest → tansu ({args.format}, {args.clients} clients, {os.cpu_count()} CPUs, "
        f"20 features per record)"
    )
    for column in (
        "scenario",
        "acknowledge",
        "requests",
        "records",
        "requests/s",
        "answer p50",
        "answer p99",
        "records/s (HTTP)",
        "records/s (to Kafka)",
        "503 retries",
        "exact",
    ):
        table.add_column(column, justify="left" if column in ("scenario", "acknowledge") else "right")
    for run in results["runs"]:
        table.add_row(
            run["scenario"],
            run["acknowledge"],
            f"{run['requests']:,}",
            f"{run['records']:,}",
            f"{run['requests_per_s']:,.0f}",
            f"{run['latency_p50_ms']:.1f} ms",
            f"{run['latency_p99_ms']:.1f} ms",
            f"{run['records_per_s_http']:,.0f}",
            f"{run['records_per_s_end_to_end']:,.0f}",
            f"{run['retries_503']:,}",
            "yes"
            if run["exact"]
            else f"[red]no ({run['counted']:.0f} counted, {run['refused']:.0f} refused, {run['failed']} failed)",
        )
    console.print(table)
    for run in results["runs"]:
        if "scrape" in run:
            scrape_figures = run["scrape"]
            extra = Table(title="GET /metrics with the GPU collector sampling (fake NVML, H200 capture)")
            for column in ("median", "p95", "series", "GPU series", "collector up"):
                extra.add_column(column, justify="right")
            extra.add_row(
                f"{scrape_figures['median_ms']:.2f} ms",
                f"{scrape_figures['p95_ms']:.2f} ms",
                str(scrape_figures["series"]),
                str(scrape_figures["gpu_series"]),
                str(scrape_figures["gpu_up"]),
            )
            console.print(extra)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(run["exact"] for run in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
