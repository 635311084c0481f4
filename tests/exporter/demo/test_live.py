"""The live demo, headless and shortened: the whole loop through the sidecar, and drift reached.

One run of the scenario ``make demo`` plays, shrunk (drift after 8 s, a 10 s window,
400 predictions/s): the synthetic model logs KServe CloudEvents to the real sidecar, which
forwards to the broker; labels follow on their own topic; the aggregator finds drift on
exactly the drifted features; the sidecar's GPU collector has readings (the fake NVML here,
the real one on a GPU machine); and Prometheus, where installed, has loaded the generated
rules and scraped both jobs. A second run checks that an interrupt stops every process
the demo started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from alerts import render_rules
from exporter.cli import cli
from exporter.demo.live import NO_PROMETHEUS
from exporter.demo.prometheus import demo_alerts_config, rule_count

pytestmark = pytest.mark.slow

SHORT = ["--drift-after", "8", "--window-seconds", "10", "--rate", "400", "--port", "0"]
MODEL_HEALTH = str(Path(sys.executable).with_name("model-health"))


def test_headless_demo_reaches_drift_through_the_sidecar(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--headless", "--until-drift", "--duration", "120", *SHORT, "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["reached_drift"] is True
    assert summary["drifted"] == summary["expected_drifted"] == ["cat_0", "num_00", "num_01"]
    # The aggregator's live drift report (its JSON) shows the same drift, and the URL is listed.
    assert summary["report"]["drifted"] == summary["expected_drifted"]
    assert "/report/demo-credit?version=1&window=10s" in summary["urls"]["drift report"]
    # Everything the aggregator counted came through the sidecar; labels joined on the ids it logged.
    assert summary["served"] > 0 and summary["predictions"] > 0 and summary["labels_joined"] > 0
    assert summary["rejected"] == {"sidecar": 0, "aggregator": 0}
    assert summary["performance"]["accuracy"]["window"] is not None
    gpu = summary["gpu"]
    assert gpu["nvml"].startswith(("real NVML", "fake NVML replaying")), gpu
    assert gpu["utilization"] is not None and gpu["memory_total_bytes"] > 0
    if shutil.which("prometheus"):
        prometheus = summary["prometheus"]
        assert prometheus["rules_loaded"] == rule_count(render_rules(demo_alerts_config()))
        assert prometheus["targets"] == {"model-health-aggregator": "up", "model-health-sidecar": "up"}
        assert (tmp_path / "prometheus" / "rules.yaml").exists()
    else:
        assert summary["prometheus"] == {"skipped": NO_PROMETHEUS}
    assert (tmp_path / "demo.log").exists() and (tmp_path / "sidecar.yaml").exists()


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc")
def test_an_interrupt_stops_everything_the_demo_started(tmp_path: Path) -> None:
    # As a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MODEL_HEALTH_")}
    log = tmp_path / "out.txt"
    with log.open("wb") as output:
        demo = subprocess.Popen(
            [MODEL_HEALTH, "demo", "--headless", *SHORT, "--out", str(tmp_path / "demo")],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "t=" not in log.read_text(errors="replace"):  # the first progress line: all started
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        children = _children(demo.pid)
        assert children, "the broker (and Prometheus, where installed) run as child processes"
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=60) == 0, log.read_text(errors="replace")
        assert "stopping everything the demo started" in log.read_text(errors="replace")
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
