"""The one fold: decoded tables → per-model partial summaries, in every mode.

:class:`Folder` takes what the decoders made of a batch (a single-mode poll, a scale-out
source range, the records scale-out's stage 2 makes by pairing KServe/Seldon halves, or a
sidecar's records in edge mode) and folds it into :class:`~exporter.pipeline.partial.ModelPartial` s:

1. prediction rows are grouped by ``(model, model_version, deployment_slot)`` and mapped to a
   configured version by the one model-identity rule (:mod:`exporter.pipeline.model_versions`);
   rows of no configured version are refused as ``unknown_model``, the detail saying which
   rule failed; with a :class:`~exporter.pipeline.dedup.RecentRequestIds`, rows whose request
   id the model has already seen are dropped as duplicates before anything is counted;
2. each group is folded into slot buckets (:func:`~exporter.pipeline.buckets.prediction_buckets`);
   rows whose numeric features hold text are refused as ``bad_feature_value``;
3. the serving counters are counted (:mod:`exporter.pipeline.serving`), and the rows the
   label join needs are kept when the model has a task, each with its request key
   (:mod:`exporter.pipeline.request_keys`: hashed here, where the records are folded, so the
   model's owner never hashes them);
4. label rows of configured models are folded into every version's label distribution and
   kept for the join, keyed likewise; labels of other models are refused.

Refusals go to the caller's ``reject`` (counted and dead-lettered there). Lateness and the
label join are the model owner's (:mod:`exporter.pipeline.owner`), because they depend on
what the owner has already seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from detectors.profile import ReferenceProfile
from exporter.pipeline.buckets import add_into, label_buckets, prediction_buckets
from exporter.pipeline.dedup import RecentRequestIds
from exporter.pipeline.model_versions import ModelIdentity, ModelKey, versions_by_model
from exporter.pipeline.partial import (
    LABEL_ROLE,
    PREDICTION_ROLE,
    ModelPartial,
    VersionPartial,
    concat,
    join_rows,
    label_rows,
)
from exporter.pipeline.serving import error_count, latency_seconds
from exporter.pipeline.snapshot import HistogramState
from exporter.records import Reason, Rejected, ipc_bytes

JOIN_COLUMNS = ["request_id", "timestamp", "prediction_score", "prediction_class"]

# topic, refused items, rows each (None: one each) → counted and dead-lettered by the caller.
Reject = Callable[[str, Iterable[Rejected], "int | None"], None]
Partials = dict[str, ModelPartial]  # model → its partial


class Folder:
    """Folds prediction and label tables into the partials of the models they name."""

    def __init__(
        self,
        profiles: Mapping[ModelKey, ReferenceProfile],
        slot_seconds: int,
        latency_bounds: tuple[float, ...],
        identity: ModelIdentity | None = None,
    ) -> None:
        self.profiles = profiles
        self.slot_seconds = slot_seconds
        self.latency_bounds = latency_bounds
        self.versions = versions_by_model(profiles)
        # The configured versions and the deployment slots they serve (none mapped by default).
        self.identity = identity if identity is not None else ModelIdentity.of_keys(profiles)

    def version_partial(self, partials: Partials, key: ModelKey) -> VersionPartial:
        model = partials.setdefault(key[0], ModelPartial(key[0], self.slot_seconds))
        part = model.versions.get(key[1])
        if part is None:
            part = model.versions[key[1]] = VersionPartial(self.profiles[key].metadata.created_at)
        return part

    def fold_predictions(
        self, partials: Partials, topic: str, table: pa.Table, reject: Reject, dedup: RecentRequestIds | None = None
    ) -> int:
        """Fold one prediction table; returns the rows of configured models it held (less
        the duplicates ``dedup`` dropped, which it counts by topic)."""
        rows = 0
        for (model, version, slot), part in by_identity(table):
            resolved = self.identity.resolve(model, version, slot)
            key = resolved.key
            if key is None:
                detail = f"{part.num_rows} records: {resolved.problem}"
                reject(topic, [Rejected(Reason.UNKNOWN_MODEL, detail, ipc_bytes(part))], part.num_rows)
                continue
            if dedup is not None:
                part = dedup.keep_first(model, topic, part)
                if part.num_rows == 0:
                    continue
            rows += part.num_rows
            target = self.version_partial(partials, key)
            folded = prediction_buckets(self.profiles[key], part, self.slot_seconds)
            for problem in folded.problems:
                refused = part.take(pa.array(problem.rows))
                detail = f"{problem.detail} ({problem.rows.size} rows)"
                reject(topic, [Rejected(problem.reason, detail, ipc_bytes(refused))], int(problem.rows.size))
            for start, bucket in folded.buckets.items():
                add_into(target.predictions, start, bucket)
            _keep_newest(target, PREDICTION_ROLE, folded.newest)
            target.errors += error_count(part)
            latency = latency_seconds(part)
            if latency.size:
                target.latency = (target.latency or HistogramState.empty(self.latency_bounds)).observe_many(latency)
            if self.profiles[key].metadata.task is not None:
                keyed = (
                    part.filter(pc.is_valid(part.column("request_id")))
                    if part.column("request_id").null_count
                    else part
                )
                if keyed.num_rows:
                    versions = pa.repeat(pa.scalar(key[1], pa.string()), keyed.num_rows)
                    join = keyed.select(JOIN_COLUMNS).add_column(0, "model_version", versions)
                    target.join = concat(target.join, join_rows(key[0], join))
        return rows

    def fold_labels(self, partials: Partials, topic: str, table: pa.Table, reject: Reject) -> int:
        """Fold one label table; returns the rows kept."""
        rows = 0
        known = [m for m in table.column("model").unique().to_pylist() if m in self.versions]
        is_known = pc.is_in(table.column("model"), pa.array(known, pa.string()))
        strays = table.filter(pc.invert(is_known))
        if strays.num_rows:
            detail = f"{strays.num_rows} labels for models that are not configured"
            reject(topic, [Rejected(Reason.UNKNOWN_MODEL, detail, ipc_bytes(strays))], strays.num_rows)
        for model in known:
            part = table.filter(pc.equal(table.column("model"), model)) if len(known) > 1 or strays.num_rows else table
            for version in self.versions[model]:
                folded = label_buckets(self.profiles[(model, version)], part, self.slot_seconds)
                target = self.version_partial(partials, (model, version))
                for start, bucket in folded.buckets.items():
                    add_into(target.labels, start, bucket)
                _keep_newest(target, LABEL_ROLE, folded.newest)
            partials[model].labels = concat(partials[model].labels, label_rows(model, part))
            rows += part.num_rows
        return rows


def _keep_newest(part: VersionPartial, role: str, newest: Mapping[int, float]) -> None:
    for start, time in newest.items():
        key = (role, start)
        known = part.newest.get(key)
        if known is None or time > known:
            part.newest[key] = time


Identity = tuple[str, "str | None", "str | None"]  # model, explicit version, deployment slot


def by_identity(table: pa.Table) -> list[tuple[Identity, pa.Table]]:
    """The table's rows grouped by what they say of their identity: (model, model_version,
    deployment_slot); one group (the usual case) is the whole table, found with a min/max per
    column instead of a hash group-by."""
    if "deployment_slot" not in table.column_names:  # a table from before the slot column
        return [((model, version, None), part) for (model, version), part in by_model_version(table)]
    single = _single_group(table)
    if single is not None:
        slot = _single_text(table.column("deployment_slot"))
        if slot is not _MIXED:
            return [((*single, slot), table)]  # type: ignore[list-item]
    columns = ["model", "model_version", "deployment_slot"]
    groups = table.group_by(columns, use_threads=False).aggregate([])
    out: list[tuple[Identity, pa.Table]] = []
    for model, version, slot in zip(*(groups.column(c).to_pylist() for c in columns)):
        mask = pc.equal(table.column("model"), model)
        for name, value in (("model_version", version), ("deployment_slot", slot)):
            same = pc.is_null(table.column(name)) if value is None else pc.equal(table.column(name), value)
            mask = pc.and_(mask, same)
        out.append(((model, version, slot), table.filter(pc.fill_null(mask, False))))
    return out


_MIXED = object()


def _single_text(column: pa.ChunkedArray) -> object:
    """The one value of a text column (None when all null), or ``_MIXED``."""
    if column.null_count == len(column):
        return None
    if column.null_count:
        return _MIXED
    bounds = pc.min_max(column)
    return bounds["min"].as_py() if bounds["min"] == bounds["max"] else _MIXED


def by_model_version(table: pa.Table) -> list[tuple[tuple[str, str | None], pa.Table]]:
    """The table's rows grouped by (model, model_version); one group (the usual case) is the
    whole table, found with a min/max per column instead of a hash group-by."""
    single = _single_group(table)
    if single is not None:
        return [(single, table)]
    groups = table.group_by(["model", "model_version"], use_threads=False).aggregate([])
    out = []
    for model, version in zip(groups.column("model").to_pylist(), groups.column("model_version").to_pylist()):
        mask = pc.equal(table.column("model"), model)
        same_version = (
            pc.is_null(table.column("model_version"))
            if version is None
            else pc.equal(table.column("model_version"), version)
        )
        out.append(((model, version), table.filter(pc.fill_null(pc.and_(mask, same_version), False))))
    return out


def _single_group(table: pa.Table) -> tuple[str, str | None] | None:
    """``(model, version)`` when every row has the same model and the same version (or none)."""
    model, version = table.column("model"), table.column("model_version")
    if table.num_rows == 0 or model.null_count:
        return None
    bounds = pc.min_max(model)
    if bounds["min"] != bounds["max"]:
        return None
    if version.null_count == len(version):
        return bounds["min"].as_py(), None
    if version.null_count:
        return None
    version_bounds = pc.min_max(version)
    if version_bounds["min"] != version_bounds["max"]:
        return None
    return bounds["min"].as_py(), version_bounds["min"].as_py()
