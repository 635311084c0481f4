"""Catalogue entries as Prometheus families: the one builder every collector uses.

A collector subclasses :class:`CatalogueCollector` and lists the catalogue metrics it exposes
in ``METRICS``. That list is its ``describe()``: empty families built from the catalogue
alone, so registering it reads no snapshot, and a registry refuses a second collector that
would expose one of the same families (prometheus_client's duplicate-series check, which a
``describe()`` of ``[]`` gives up). At scrape time :meth:`CatalogueCollector.families` hands
out a :class:`Families` for those metrics only: each family is created once, on its first
sample; absent and NaN values are left out rather than exported as NaN; families are yielded
in catalogue order, and one without samples is not yielded at all.

:class:`BuildInfoCollector` is ``model_health_build_info``: every role registers one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from types import MappingProxyType
from typing import ClassVar, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.catalogue import CATALOGUE, by_name
from exporter.catalogue import Metric as CatalogueMetric

# Catalogue position of each metric: the order families are described and yielded in.
_POSITION = MappingProxyType({metric.name: index for index, metric in enumerate(CATALOGUE)})


class Histogram(Protocol):
    """What a histogram sample needs: cumulative counts per upper bound, the count and the sum."""

    @property
    def bounds(self) -> Sequence[float]: ...
    @property
    def counts(self) -> Sequence[int]: ...
    @property
    def count(self) -> int: ...
    @property
    def total(self) -> float: ...


SampleFamily = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily


def family(metric: CatalogueMetric) -> SampleFamily:
    """An empty prometheus_client family for a catalogue entry.

    Counters go by their family name (prometheus_client adds ``_total`` back to the sample);
    ``info`` metrics are gauges fixed at 1, the text format having no info type.

    >>> family(by_name("model_health_predictions_total")).name
    'model_health_predictions'
    """
    labels = list(metric.labels)
    if metric.kind == "counter":
        return CounterMetricFamily(metric.family, metric.help, labels=labels)
    if metric.kind == "histogram":
        return HistogramMetricFamily(metric.name, metric.help, labels=labels)
    return GaugeMetricFamily(metric.name, metric.help, labels=labels)


def in_catalogue_order(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` sorted as the catalogue lists them; an unknown name raises ``KeyError``."""
    return tuple(sorted(set(names), key=lambda name: _POSITION[by_name(name).name]))


class Families:
    """The families of one scrape, for the metrics a collector declared."""

    def __init__(self, declared: Iterable[str]) -> None:
        self._declared = frozenset(declared)
        self._families: dict[str, SampleFamily] = {}

    def _get(self, name: str) -> SampleFamily:
        found = self._families.get(name)
        if found is None:
            if name not in self._declared:
                # A collector exposing what it did not declare would slip past the registry's check.
                raise KeyError(f"{name} is not among the metrics this collector declares")
            found = self._families[name] = family(by_name(name))
        return found

    def add(self, name: str, labels: Sequence[str], value: float | int | bool | None) -> None:
        """One sample; an absent or NaN value is absent, not NaN."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        found = self._get(name)
        assert not isinstance(found, HistogramMetricFamily), f"{name} is a histogram"
        found.add_metric(list(labels), float(value))

    def histogram(self, name: str, labels: Sequence[str], state: Histogram) -> None:
        buckets = [(repr(float(b)), float(c)) for b, c in zip(state.bounds, state.counts)] + [("+Inf", state.count)]
        found = self._get(name)
        assert isinstance(found, HistogramMetricFamily), f"{name} is not a histogram"
        found.add_metric(list(labels), buckets, state.total)

    def __iter__(self) -> Iterator[Metric]:
        return iter([self._families[name] for name in in_catalogue_order(self._families)])


class CatalogueCollector(Collector):
    """A collector of catalogue metrics; subclasses list theirs in ``METRICS``."""

    METRICS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        in_catalogue_order(cls.METRICS)  # a name outside the catalogue fails at import, not at a scrape

    def describe(self) -> list[Metric]:
        # From the catalogue alone: registering must not trigger a collect (no snapshot may exist yet).
        return [family(by_name(name)) for name in in_catalogue_order(self.METRICS)]

    def families(self) -> Families:
        return Families(self.METRICS)


class BuildInfoCollector(CatalogueCollector):
    """``model_health_build_info{version}`` 1."""

    METRICS = ("model_health_build_info",)

    def __init__(self, version: str) -> None:
        self._version = version

    def collect(self) -> Iterator[Metric]:
        out = self.families()
        out.add("model_health_build_info", [self._version], 1)
        yield from out
