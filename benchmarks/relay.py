"""Relay benchmark: how fast notifications are admitted (durably) and deliveries go out.

    python benchmarks/relay.py [--notifications 300] [--concurrency 4]

One relay runs in this process (``exporter.relay.service.serve``, state in a temporary
directory, SQLite with ``synchronous=FULL``) against a local target that verifies each
Standard Webhooks signature and answers 200. Each notification carries one firing alert for
a distinct model, so every one is admitted and delivered. Reported, side by side:

* admit: wall time of each ``POST /v1/alertmanager`` from one client (p50, p99) — it
  includes the committed transaction, i.e. an fsync, before the 200;
* duplicates: the same notifications posted again (nothing to write but the lookup);
* deliver: notifications per second from the first POST to the last delivery recorded;
* store: the admission transaction alone (``RelayStore.admit``, in process, no HTTP), new
  alerts and duplicates, to separate the relay's own cost from the HTTP round trip.

Figures depend on the disk's fsync latency far more than on CPU; compare runs on one machine.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.config import RelayConfig, load_config  # noqa: E402
from exporter.kafka.embedded import free_port  # noqa: E402
from exporter.relay.service import serve  # noqa: E402
from tests.exporter.relay.fake_target import FakeTarget, wait_until  # noqa: E402
from tests.exporter.relay.notifications import alert, notification  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    target = FakeTarget("generic", secret).start()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "token").write_text("t")
        (directory / "secret").write_text(secret)
        port = free_port()
        config_path = directory / "relay.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "target": {"url": f"{target.url}/hook", "secret_file": "secret", "concurrency": args.concurrency},
                    "auth": {"token_file": "token"},
                    "http": {"host": "127.0.0.1", "port": port},
                    "state": {"dir": "state"},
                }
            )
        )
        stop, ports = threading.Event(), []
        thread = threading.Thread(target=serve, args=(load_config(config_path, RelayConfig), stop, ports.append))
        thread.start()
        wait_until(lambda: bool(ports), 30, "the relay")
        payloads = [notification(alert(f"model-{i}", "1")) for i in range(args.notifications)]
        headers = {"Authorization": "Bearer t"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            admit: list[float] = []
            started = time.perf_counter()
            for payload in payloads:
                t0 = time.perf_counter()
                client.post("/v1/alertmanager", json=payload).raise_for_status()
                admit.append(time.perf_counter() - t0)
            wait_until(lambda: len(target.delivered()) >= len(payloads), 300, "every delivery")
            delivered_in = time.perf_counter() - started
            repeat: list[float] = []
            for payload in payloads:
                t0 = time.perf_counter()
                client.post("/v1/alertmanager", json=payload).raise_for_status()
                repeat.append(time.perf_counter() - t0)
        stop.set()
        thread.join()
    target.stop()
    assert all(r.verified for r in target.received) and len(target.received) == len(payloads)

    store_new, store_dup = _store_timings(payloads)

    def ms(values: list[float], q: float) -> str:
        return f"{statistics.quantiles(values, n=100)[int(q) - 1] * 1000:.2f} ms"

    print(f"notifications: {len(payloads)} (one new model each), target concurrency {args.concurrency}")
    print(f"admit (new alert, durable):  p50 {ms(admit, 50)}  p99 {ms(admit, 99)}")
    print(f"repeat (duplicate):          p50 {ms(repeat, 50)}  p99 {ms(repeat, 99)}")
    print(f"admit + deliver end to end:  {len(payloads) / delivered_in:.0f} notifications/s")
    print(f"store admit, new alert:      p50 {ms(store_new, 50)}  p99 {ms(store_new, 99)}  (commit + fsync)")
    print(f"store admit, duplicate:      p50 {ms(store_dup, 50)}  p99 {ms(store_dup, 99)}")


def _store_timings(payloads: list[dict]) -> tuple[list[float], list[float]]:
    from exporter.relay.events import plan
    from exporter.relay.payload import Notification
    from exporter.relay.store import RelayStore

    parsed = [Notification.model_validate(p) for p in payloads]
    planned = [plan(n, "ModelHealthRetrainRecommended", "model", "model_version").candidates for n in parsed]
    with tempfile.TemporaryDirectory() as tmp:
        store = RelayStore(Path(tmp))
        timings: tuple[list[float], list[float]] = ([], [])
        for times in timings:
            for notification_, candidates in zip(parsed, planned):
                t0 = time.perf_counter()
                store.admit(candidates, notification_, time.time(), 0.0)
                times.append(time.perf_counter() - t0)
        store.close()
    return timings


if __name__ == "__main__":
    main()
