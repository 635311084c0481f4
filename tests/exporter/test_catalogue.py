"""The metric catalogue against the contract's table (docs/contract.md) and Prometheus naming conventions."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from exporter import catalogue
from exporter.catalogue import (
    CATALOGUE,
    COMPONENTS,
    Metric,
    additions,
    additions_markdown,
    all_series_names,
    by_name,
    for_owner,
    markdown_table,
    names,
    series_names,
)

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# The contract's type column → catalogue kind; "gauge 1" is an info metric, "gauge 0/1" a boolean gauge.
CONTRACT_KINDS = {
    "gauge": "gauge",
    "gauge 0/1": "gauge",
    "gauge 1": "info",
    "counter": "counter",
    "histogram": "histogram",
}
# Unit words that must never appear: the catalogue exposes base units only.
NON_BASE_UNITS = (
    "milliseconds",
    "ms",
    "microseconds",
    "minutes",
    "hours",
    "percent",
    "kilobytes",
    "megabytes",
    "gigabytes",
    "mib",
    "gib",
    "kelvin",
    "fahrenheit",
    "megahertz",
    "mhz",
    "milliwatts",
)


def contract_rows() -> list[tuple[str, str, tuple[str, ...], bool]]:
    """(name, type, labels, open-ended) for every metric named in the contract's metric table.

    The contract is part of the repository: a missing file or section fails, it never skips.
    """
    assert CONTRACT.is_file(), f"{CONTRACT} is missing: the metric contract lives there"
    text = CONTRACT.read_text(encoding="utf-8")
    assert "\n## Metrics\n" in text, f"{CONTRACT} has no '## Metrics' section"
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`model_health_"):
            continue
        labels_cell = cells[2]
        open_ended = "…" in labels_cell
        labels = tuple(
            label.strip() for label in labels_cell.replace("…", "").split(",") if label.strip() not in ("", "—")
        )
        for name in re.findall(r"`([a-z0-9_]+)`", cells[0]):
            rows.append((name, cells[1], labels, open_ended))
    return rows


def _rows_to_check() -> list[tuple[str, str, tuple[str, ...], bool] | None]:
    # Collected before any test runs: a missing contract becomes one failing case, not a skip.
    try:
        return contract_rows() or [None]
    except AssertionError:
        return [None]


def test_contract_table_parses() -> None:
    rows = contract_rows()
    # A broken parser would make every comparison below vacuous.
    assert len(rows) >= 40
    assert ("model_health_feature_psi", "gauge", ("model", "model_version", "feature", "window"), False) in rows
    assert {row[1] for row in rows} == set(CONTRACT_KINDS)


@pytest.mark.parametrize("row", _rows_to_check(), ids=lambda row: row[0] if row else "contract-missing")
def test_contract_metric_present_with_type_and_labels(row: tuple[str, str, tuple[str, ...], bool] | None) -> None:
    assert row is not None, f"no metric rows could be read from {CONTRACT}"
    name, contract_type, labels, open_ended = row
    assert name in names(), f"{name} is in docs/contract.md but not in the catalogue"
    metric = by_name(name)
    assert metric.kind == CONTRACT_KINDS[contract_type]
    if open_ended:
        assert metric.labels[: len(labels)] == labels
    else:
        assert metric.labels == labels


def test_catalogue_beyond_design_is_documented() -> None:
    # Catalogue minus the contract is exactly the project's additions: nothing slips in unmarked,
    # and nothing the contract names is marked as the project's.
    design_names = {row[0] for row in contract_rows()}
    assert names() - design_names == {metric.name for metric in additions()}
    for metric in additions():
        assert metric.note.strip().endswith("."), f"{metric.name}: a project addition says why, in a sentence"


def test_additions_are_listed_with_their_notes() -> None:
    listing = additions_markdown()
    assert len(listing.splitlines()) == len(additions()) >= 25
    for metric in additions():
        assert f"- `{metric.name}` ({metric.kind};" in listing and metric.note in listing


def test_a_project_addition_without_a_note_is_refused() -> None:
    with pytest.raises(ValueError, match="note"):
        Metric("model_health_x", "gauge", (), "x.", "", frozenset({"aggregator"}), added="project")
    with pytest.raises(ValueError, match="added"):
        Metric("model_health_x", "gauge", (), "x.", "", frozenset({"aggregator"}), added="later")  # type: ignore[arg-type]


def test_the_markdown_table_can_carry_the_notes() -> None:
    plain, noted = markdown_table().splitlines(), markdown_table(notes=True).splitlines()
    assert len(plain) == len(noted) == len(CATALOGUE) + 2
    for metric, line in zip(CATALOGUE, noted[2:]):
        assert line.startswith(f"| `{metric.name}` |") and line.endswith(f" {metric.note or '—'} |")


def test_documented_label_choices() -> None:
    assert by_name("model_health_model_info").labels == ("model", "model_version", "model_namespace", "task")
    assert by_name("model_health_gpu_process_memory_used_bytes").labels == (
        "gpu_uuid",
        "pid",
        "pod_uid",
        "container_id",
    )
    # Same labels as the statistic it bounds, so PromQL can subtract one from the other.
    assert by_name("model_health_feature_ks_error_bound").labels == by_name("model_health_feature_ks_statistic").labels


def test_names_unique() -> None:
    all_names = [metric.name for metric in CATALOGUE]
    assert len(all_names) == len(set(all_names))
    assert names() == frozenset(all_names)


@pytest.mark.parametrize("metric", CATALOGUE, ids=lambda m: m.name)
def test_naming_conventions(metric: Metric) -> None:
    assert metric.name.startswith("model_health_")
    assert SNAKE.match(metric.name)
    assert all(SNAKE.match(label) for label in metric.labels)
    assert not set(metric.labels) & {"namespace", "pod"}
    assert not any(label.startswith("__") for label in metric.labels)
    assert metric.help.strip() and metric.help.endswith(".")
    words = metric.name.split("_")
    assert not set(words) & set(NON_BASE_UNITS), f"{metric.name} uses a non-base unit"
    assert (metric.kind == "counter") == metric.name.endswith("_total")
    assert (metric.kind == "info") == metric.name.endswith("_info")
    stem = metric.name.removesuffix("_total")
    if metric.unit:
        assert stem.endswith(f"_{metric.unit}"), f"{metric.name}: unit {metric.unit} is not its last word"
    else:
        unit_words = catalogue.UNITS - {""}
        assert stem.split("_")[-1] not in unit_words, f"{metric.name} ends in a unit but declares none"
    if stem.endswith("_timestamp_seconds") or metric.kind == "histogram":
        assert metric.unit == "seconds"


def test_metric_is_frozen_and_validated() -> None:
    metric = by_name("model_health_feature_psi")
    with pytest.raises(FrozenInstanceError):
        metric.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="base unit"):
        Metric("model_health_x_milliseconds", "gauge", (), "x.", "milliseconds", frozenset({"aggregator"}))
    with pytest.raises(ValueError, match="owner"):
        Metric("model_health_x", "gauge", (), "x.", "", frozenset({"kubelet"}))
    with pytest.raises(ValueError, match="kind"):
        Metric("model_health_x", "summary", (), "x.", "", frozenset({"aggregator"}))  # type: ignore[arg-type]


def test_by_name_unknown_names_the_metric() -> None:
    with pytest.raises(KeyError, match="model_health_nope"):
        by_name("model_health_nope")


def test_for_owner() -> None:
    every = set()
    for component in COMPONENTS:
        owned = for_owner(component)
        assert all(component in metric.owner for metric in owned)
        assert "model_health_build_info" in {metric.name for metric in owned}
        every |= {metric.name for metric in owned}
    assert every == names()
    assert [m.name for m in for_owner("aggregator")] == [m.name for m in CATALOGUE if "aggregator" in m.owner]
    assert "model_health_gpu_power_watts" in {m.name for m in for_owner("node")}
    assert "model_health_feature_psi" not in {m.name for m in for_owner("sidecar")}
    with pytest.raises(ValueError, match="unknown component"):
        for_owner("kubelet")


def test_series_names() -> None:
    assert series_names(by_name("model_health_feature_psi")) == ("model_health_feature_psi",)
    assert series_names(by_name("model_health_gpu_energy_joules_total")) == (
        "model_health_gpu_energy_joules_total",
        "model_health_gpu_energy_joules_created",
    )
    assert series_names(by_name("model_health_request_duration_seconds")) == (
        "model_health_request_duration_seconds_bucket",
        "model_health_request_duration_seconds_sum",
        "model_health_request_duration_seconds_count",
        "model_health_request_duration_seconds_created",
    )
    assert series_names(by_name("model_health_build_info")) == ("model_health_build_info",)
    assert "model_health_labels_joined_total" in all_series_names()


def _exposed_names(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_series_names_match_prometheus_client() -> None:
    # What a real scrape shows must be what series_names promises, for each kind.
    registry = CollectorRegistry()
    counter_metric = by_name("model_health_predictions_total")
    hist_metric = by_name("model_health_evaluation_duration_seconds")
    counter = Counter(counter_metric.name, counter_metric.help, counter_metric.labels, registry=registry)
    counter.labels(model="m", model_version="1").inc()
    Histogram(hist_metric.name, hist_metric.help, hist_metric.labels, registry=registry).observe(0.1)
    exposed = _exposed_names(registry)
    assert exposed == set(series_names(counter_metric)) | set(series_names(hist_metric))


def test_every_metric_builds_a_prometheus_family() -> None:
    # Unit, name and type combinations prometheus_client would reject fail here, not in a collector.
    class Everything:
        def collect(self):  # noqa: ANN202 - prometheus_client's collector protocol
            for metric in CATALOGUE:
                if metric.kind == "counter":
                    family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels, unit=metric.unit)
                    family.add_metric(["x"] * len(metric.labels), 1.0)
                elif metric.kind == "histogram":
                    continue
                else:
                    family = GaugeMetricFamily(metric.name, metric.help, labels=metric.labels, unit=metric.unit)
                    family.add_metric(["x"] * len(metric.labels), 1.0)
                yield family

    registry = CollectorRegistry()
    registry.register(Everything())
    exposed = _exposed_names(registry)
    assert exposed <= all_series_names()
    assert {m.name for m in CATALOGUE if m.kind != "histogram"} <= exposed
