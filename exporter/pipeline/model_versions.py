"""Which configured model version a record belongs to: one rule for every mode.

Records name a model and, sometimes, a version; KServe's logger names neither a version
nor anything like one, only the *deployment slot* it serves under (its ``--endpoint``:
``default``, or ``canary`` for a canary rollout). The single-process aggregator, scale-out's
fold (stage 1, and stage 2 for what it pairs) and the sidecar in edge mode map every record
to a configured ``(model, version)`` by this one rule, or they would count differently:

1. **An explicit version** (native ``model_version``, an OIP v2 response's
   ``model_version``, KServe's ``ce-modelversion`` extension) must be a configured version
   of the model.
2. **A deployment slot** names a version only where the configuration maps it (a model
   entry's ``slots``). When any version of a model maps slots, every slot of that model must
   be mapped: traffic from a slot nobody mapped is another deployment's, and is refused
   rather than mixed in.
3. **Otherwise** a record belongs to its model's only configured version.

A record that still names no configured version is refused as ``unknown_model``, with a
detail that says which rule failed and what to configure.

>>> identity = ModelIdentity.of([("hidden", "1", ())])
>>> identity.resolve("hidden", None, "default").key  # KServe, --endpoint default, no version
('hidden', '1')
>>> identity.resolve("hidden", "2", None).problem
"model 'hidden' names version '2', which is not configured (configured: '1'); add a models entry with version: '2'"
>>> canary = ModelIdentity.of([("iris", "1", ("default",)), ("iris", "2", ("canary",))])
>>> canary.resolve("iris", None, "canary").key, canary.resolve("iris", None, "default").key
(('iris', '2'), ('iris', '1'))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

ModelKey = tuple[str, str]  # (model, model_version)


def versions_by_model(keys: Iterable[ModelKey]) -> dict[str, list[str]]:
    """The configured versions of each model, in configuration order."""
    versions: dict[str, list[str]] = {}
    for name, version in keys:
        versions.setdefault(name, []).append(version)
    return versions


@dataclass(frozen=True)
class Resolved:
    """What the rule made of one (model, version, slot): a configured key, or why not."""

    key: ModelKey | None
    problem: str = ""  # set when ``key`` is None: the rule that failed and what to configure


@dataclass(frozen=True)
class ModelIdentity:
    """The configured versions of each model and the deployment slots each version serves."""

    versions: Mapping[str, tuple[str, ...]]
    slots: Mapping[tuple[str, str], str]  # (model, slot) → version

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str, Iterable[str]]]) -> ModelIdentity:
        """From ``(model, version, slots)`` per configured version.

        A slot mapped by two versions of one model is a configuration error (the config
        model refuses it at start); here it raises.
        """
        versions: dict[str, list[str]] = {}
        slots: dict[tuple[str, str], str] = {}
        for model, version, served in entries:
            versions.setdefault(model, []).append(version)
            for slot in served:
                other = slots.setdefault((model, slot), version)
                if other != version:
                    raise ValueError(f"model {model!r}: slot {slot!r} is mapped by versions {other!r} and {version!r}")
        return cls(
            MappingProxyType({m: tuple(v) for m, v in versions.items()}),
            MappingProxyType(slots),
        )

    @classmethod
    def of_keys(cls, keys: Iterable[ModelKey]) -> ModelIdentity:
        """Configured versions without any slot mapping."""
        return cls.of((model, version, ()) for model, version in keys)

    def maps_slots(self, model: str) -> bool:
        return any(m == model for m, _ in self.slots)

    def resolve(self, model: str, version: str | None, slot: str | None) -> Resolved:
        """The configured key a record names (see the module docstring for the rule)."""
        known = self.versions.get(model)
        if not known:
            return Resolved(None, f"model {model!r} is not configured; add a models entry named {model!r}")
        listed = ", ".join(repr(v) for v in known)
        if version is not None:
            if version in known:
                return Resolved((model, version))
            return Resolved(
                None,
                f"model {model!r} names version {version!r}, which is not configured (configured: {listed}); "
                f"add a models entry with version: {version!r}",
            )
        if slot is not None and self.maps_slots(model):
            mapped = self.slots.get((model, slot))
            if mapped is not None:
                return Resolved((model, mapped))
            served = ", ".join(f"{s!r} → {v!r}" for (m, s), v in self.slots.items() if m == model)
            return Resolved(
                None,
                f"model {model!r} names no version and its deployment slot {slot!r} is not mapped (mapped: {served}); "
                f"add {slot!r} to the slots of the version served there",
            )
        if len(known) == 1:
            return Resolved((model, known[0]))
        where = f" from deployment slot {slot!r}" if slot is not None else ""
        return Resolved(
            None,
            f"model {model!r} has {len(known)} configured versions ({listed}) and the records{where} name none; "
            "set slots on each version (e.g. slots: [canary]) or have the producer send its version",
        )
