"""The relay killed with SIGKILL at random moments with deliveries pending: one delivery per alert.

Real parts: the ``model-health relay`` command and its SQLite state; the retraining target
is the faithful fake of ``tests/exporter/relay/fake_target.py`` (it verifies every
Standard Webhooks signature), answering 503 now and then. An Alertmanager stand-in posts
one notification per model — retrying until it gets a 200, as Alertmanager does — and
now and then repeats an earlier one (its ``repeat_interval``), while the relay is killed at
random moments (seeded) and started again.

What must hold, the relay's documented guarantee: every alert Alertmanager got a 200 for
ends in **exactly one** delivery — one ``webhook-id`` accepted by the target per model, never
two — and nothing stays pending. A request the target accepted but the relay had not yet
recorded when it died is sent again with the *same* id (at least once, with a stable id);
the figures count those redeliveries, which a receiver drops by ``webhook-id``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from exporter.kafka.embedded import free_port
from tests.exporter.relay.conftest import TOKEN, scrape, write_config
from tests.exporter.relay.fake_target import FakeTarget
from tests.exporter.relay.notifications import alert, notification
from tests.exporter.relay.test_restart import RelayProcess
from tests.reliability.harness import poll_until


@dataclass
class AlertmanagerStandIn:
    """Posts one firing retrain alert per model, retrying each until a 200; repeats some."""

    url: str
    models: list[str]
    rng: object
    accepted: dict[str, str | None] = field(default_factory=dict)  # model → delivery id it was told (None: "duplicate")
    attempts: int = 0
    repeats: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AlertmanagerStandIn:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _post(self, model: str) -> dict | None:
        self.attempts += 1
        try:
            answer = httpx.post(
                f"{self.url}/v1/alertmanager",
                json=notification(alert(model, "1", fingerprint=f"fp-{model}")),
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def _run(self) -> None:
        for model in self.models:
            while not self._stop.is_set():
                result = self._post(model)
                if result is not None:
                    deliveries = result["deliveries"]
                    self.accepted[model] = deliveries[0]["id"] if deliveries else None
                    break
                self._stop.wait(0.2)  # Alertmanager retries a failed webhook
            if self.accepted and self.rng.random() < 0.3:  # a repeat of an earlier, still firing alert
                self.repeats += 1
                self._post(self.rng.choice(sorted(self.accepted)))
            self._stop.wait(self.rng.uniform(0.05, 0.3))


def test_kill_9_with_pending_deliveries_ends_in_exactly_one_delivery_per_alert(
    scale, tmp_path, secret, figures, cleanup
):
    rng = scale.rng("relay-kill")
    target = FakeTarget("generic", secret).start()
    cleanup.append(target.stop)
    port = free_port()
    config = write_config(
        tmp_path,
        secret,
        f"{target.url}/hooks/retrain",
        http={"port": port},
        target={"retry": {"max_attempts": 100_000, "base_backoff_seconds": 0.05, "max_backoff_seconds": 0.5}},
    )
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    cleanup.append(lambda: relay.process.poll() is None and relay.kill())
    alerts = scale.pick(30, int(scale.seconds * 3))
    manager = AlertmanagerStandIn(relay.url, [f"model-{i:04d}" for i in range(alerts)], rng).start()
    cleanup.append(manager.stop)
    started = time.monotonic()
    kills: list[float] = []
    pending_at_kill: list[int] = []
    while not manager.done:
        refusing = rng.random() < 0.6
        if refusing:
            target.always(503)  # the target has a bad spell: deliveries pile up, pending
        else:
            target.fail_next(rng.randint(0, 3))
        time.sleep(rng.uniform(0.3, 3.0))
        pending = scrape(relay.url).get(("model_health_relay_deliveries_pending", (("target", "generic"),)), -1)
        relay.kill()  # pending deliveries, attempts in flight, half-written answers: all cut
        kills.append(round(time.monotonic() - started, 1))
        pending_at_kill.append(int(pending))
        time.sleep(rng.uniform(0.0, 0.5))
        if refusing and rng.random() < 0.5:
            target.always(None)  # back before the relay is
        relay.start()
        target.always(None)
    poll_until(
        lambda: {r.json["model"] for r in target.delivered()} >= set(manager.accepted),
        scale.pick(120, 600),
        "a delivery for every accepted alert",
    )
    poll_until(
        lambda: scrape(relay.url).get(("model_health_relay_deliveries_pending", (("target", "generic"),)), 1) == 0,
        60,
        "nothing pending",
    )
    time.sleep(1.0)  # nothing more arrives
    ids_per_model: dict[str, set[str]] = defaultdict(set)
    requests_per_model: dict[str, int] = defaultdict(int)
    for request in target.delivered():
        ids_per_model[request.json["model"]].add(request.webhook_id)
        requests_per_model[request.json["model"]] += 1
    twice = {m: ids for m, ids in ids_per_model.items() if len(ids) > 1}
    redelivered = sum(count - 1 for count in requests_per_model.values())
    figures.record(
        sent=alerts,
        counted=len(ids_per_model),
        faults=len(kills) + sum(1 for r in target.received if r.answered == 503),
        lost=len(set(manager.accepted) - set(ids_per_model)),
        duplicated=len(twice),
        kills=len(kills),
        target_503s=sum(1 for r in target.received if r.answered == 503),
        posts=manager.attempts,
        repeats=manager.repeats,
        pending_at_kill=" ".join(map(str, pending_at_kill)),
        redelivered_same_id=redelivered,
        seconds=round(time.monotonic() - started, 1),
    )
    assert set(manager.accepted) == {f"model-{i:04d}" for i in range(alerts)}
    assert not twice, f"two different deliveries for one alert: {twice}"
    assert set(ids_per_model) == set(manager.accepted)
    for model, told in manager.accepted.items():
        if told is not None:  # the id the 200 named is the one delivered
            assert ids_per_model[model] == {told}, model
    assert all(r.verified for r in target.received)
    assert kills and max(pending_at_kill) > 0, "no kill caught a delivery pending"
