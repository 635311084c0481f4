"""The drift report page for a 100-feature model: its size, and its render time in Chromium.

Builds a synthetic reference (90 numeric + 10 categorical features, prediction, label) and a
drifted current set, renders ``drift --format html`` from a profile, loads the page in
Debian's headless Chromium (the tests' set-up) a few times and prints the page's own
``performance`` marks: ``drift-report:charts`` (drawing every chart) and the time from
navigation to charts drawn. Not a timed test: a report to read.

    .venv/bin/python benchmarks/drift_report_page.py [--rows N] [--loads N] [--screenshot PNG]
                                                     [--live-screenshot PNG]

``--screenshot`` instead writes the documentation's picture (docs/images/drift-report.png):
a small model with a couple of drifted features, one of them categorical.

``--live-screenshot`` runs the live demo (``model-health demo``'s loop: synthetic model →
sidecar → broker → aggregator, without Prometheus), waits until the aggregator's drift
report shows the features the traffic moved, and photographs that live page as the
aggregator serves it (docs/images/live-report.png, the README's picture).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.profile import build_profile  # noqa: E402
from exporter.demo.synthetic import synthetic_table  # noqa: E402
from exporter.profiles import save_profile  # noqa: E402
from exporter.report.html import render_html  # noqa: E402
from exporter.report.offline import build_offline_report  # noqa: E402
from tests.support.browser import browser_page  # noqa: E402


def make_page(root: Path, rows: int, numeric: int, categorical: int, drifted: int) -> str:
    shape = {"numeric": numeric, "categorical": categorical, "drifted": drifted}
    reference = synthetic_table(rows, seed=1, **shape)
    current = synthetic_table(rows // 2, seed=2, drift=True, **shape)
    profile = build_profile(
        reference, model="fraud", model_version="7", created_at=0.0, prediction="prediction", label="label"
    )
    save_profile(profile, root / "profile.parquet")
    pq.write_table(current, root / "current.parquet")
    return render_html(build_offline_report(root / "profile.parquet", root / "current.parquet"))


def measure(page_path: Path, loads: int) -> None:
    charts, ready = [], []
    for _ in range(loads):
        with browser_page() as (page, log):
            page.goto(page_path.as_uri())
            page.wait_for_selector("html[data-charts-ready]", timeout=30_000)
            charts.append(float(page.get_attribute("html", "data-charts-ms") or "nan"))
            ready.append(float(page.get_attribute("html", "data-ready-ms") or "nan"))
            drawn = page.get_attribute("html", "data-charts-ready")
            assert not log.console_errors and not log.page_errors, log
    print(f"charts drawn: {drawn}")
    print(
        f"drawing all charts (performance.measure drift-report:charts): median {statistics.median(charts):.0f} ms, "
        f"max {max(charts):.0f} ms over {loads} loads"
    )
    print(
        f"navigation start → charts drawn (performance.now()): median {statistics.median(ready):.0f} ms, "
        f"max {max(ready):.0f} ms"
    )


def screenshot(root: Path, out: Path) -> None:
    html = make_page(root, 20_000, numeric=6, categorical=3, drifted=3)
    page_path = root / "page.html"
    page_path.write_text(html, encoding="utf-8")
    with browser_page(width=1280, height=1000) as (page, log):
        page.goto(page_path.as_uri())
        page.wait_for_selector("html[data-charts-ready]")
        third = page.locator("article.feature[id^='feature-']").nth(2).bounding_box()
        height = int(third["y"] + third["height"] + 12) if third else 2400
        # A viewport as tall as the picture (the charts keep their width), so the pointer can
        # hover the first drifted feature's fourth bar and the picture shows the readout too.
        page.set_viewport_size({"width": 1280, "height": height})
        over = page.locator("article.feature[id^='feature-'] .u-over").first.bounding_box()
        if over:
            page.mouse.move(over["x"] + over["width"] * 3.5 / 5, over["y"] + over["height"] * 0.6)
        page.screenshot(path=str(out))
    print(f"wrote {out} (1280×{height})")


def live_screenshot(root: Path, out: Path) -> None:
    import io
    import json
    import threading
    import time
    import urllib.request

    from rich.console import Console

    from exporter.demo.live import MODEL, VERSION, DemoOptions, LiveDemo, report_path
    from exporter.kafka.embedded import free_port

    port = free_port()
    options = DemoOptions(
        rate=300.0,
        drift_after=20.0,
        bucket_seconds=5,
        window_seconds=30,
        port=port,
        duration=90.0,
        workdir=root / "demo",
        prometheus=False,
    )
    expected = set(options.shape.drifted_columns())
    demo = threading.Thread(target=lambda: LiveDemo(options, Console(file=io.StringIO())).run(headless=True))
    demo.start()
    api = f"http://127.0.0.1:{port}/api/v1/drift?model={MODEL}&version={VERSION}&window={options.window}"
    drifted: set[str] = set()
    deadline = time.monotonic() + 80
    while time.monotonic() < deadline and drifted != expected:
        time.sleep(1.0)
        try:
            with urllib.request.urlopen(api, timeout=5) as response:
                features = json.load(response)["features"]
            drifted = {name for name, feature in features.items() if feature["drift"]}
        except OSError:
            continue  # not up or not evaluated yet
    assert drifted == expected, f"the report shows {sorted(drifted)}, expected {sorted(expected)}"
    url = f"http://127.0.0.1:{port}{report_path(options)}"
    with browser_page(width=1280, height=1000) as (page, log):
        page.goto(url)
        page.wait_for_selector("html[data-charts-ready]")
        second = page.locator("article.feature[id^='feature-']").nth(1).bounding_box()
        height = int(second["y"] + second["height"] + 12) if second else 2000
        page.set_viewport_size({"width": 1280, "height": height})
        over = page.locator("article.feature[id^='feature-'] .u-over").first.bounding_box()
        if over:
            page.mouse.move(over["x"] + over["width"] * 0.55, over["y"] + over["height"] * 0.6)
        page.screenshot(path=str(out))
        assert not log.console_errors and not log.page_errors and log.requests == [url], log
    print(f"wrote {out} (1280×{height}) from {url} during the demo, drifted: {sorted(drifted)}")
    demo.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--live-screenshot", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.live_screenshot:
            live_screenshot(root, args.live_screenshot)
            return
        if args.screenshot:
            screenshot(root, args.screenshot)
            return
        html = make_page(root, args.rows, numeric=90, categorical=10, drifted=8)
        page_path = root / "page.html"
        page_path.write_text(html, encoding="utf-8")
        size = len(html.encode())
        print(f"100-feature page: {size:,} bytes ({size / 1e6:.2f} MB)")
        measure(page_path, args.loads)


if __name__ == "__main__":
    main()
