"""The broker watch against a real tansu that stops and starts again."""

from __future__ import annotations

import logging

from exporter.aggregator.readiness import BrokerWatch
from exporter.kafka.embedded import EmbeddedBroker, free_port


def test_an_outage_is_reported_and_logged_once_each_way(caplog):
    caplog.set_level(logging.INFO, logger="exporter.aggregator.readiness")
    now = [0.0]
    with EmbeddedBroker() as broker:
        watch = BrokerWatch(broker.bootstrap_servers, interval_s=2.0, clock=lambda: now[0])
        assert watch.state() == (True, "")
        broker.stop()
        assert watch.state() == (True, "")  # the last answer holds for the interval
        up, why = watch.state(fresh=True)
        assert not up and why.startswith("broker unreachable:") and "refused" in why
        now[0] = 5.0
        assert watch.state()[0] is False and not watch.up
        broker.start()  # the same port again
        now[0] = 9.5
        assert watch.state() == (True, "")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "stopped answering" in messages[0] and "not ready until it is back" in messages[0]
    assert messages[1].endswith("is back after 9.5 s; consuming resumes")


def test_a_port_nobody_listens_on_is_down_from_the_start():
    watch = BrokerWatch(f"127.0.0.1:{free_port()}", timeout_s=1.0)
    up, why = watch.state()
    assert not up and "broker unreachable" in why
