"""Pairs the two halves of one inference — request and response — that arrive apart.

KServe's logger posts the request and the response as separate events, and Seldon
writes model inputs and outputs to separate topics; both carry the same id. Halves wait
here until their partner comes, in a buffer bounded in size and in time. Nothing is
lost quietly: a half that waits longer than the TTL, is pushed out because the buffer
is full, or is replaced by a newer half under the same id is handed back as a
:class:`Leftover` (and counted), for the caller to emit or refuse.

The same half twice — a producer retrying without idempotence, a logger posting an event
again — is dropped and counted (``duplicate_requests`` / ``duplicate_responses``): a half
whose id and content (a digest the caller computes) match one still waiting, or one of a
pair completed or settled within the TTL. Those settled ids are remembered, bounded like
the buffer (``max_pending``, ``ttl_seconds``), so memory stays bounded too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, NamedTuple, TypeVar

Half = TypeVar("Half")

DEFAULT_MAX_PENDING = 10_000
DEFAULT_TTL_SECONDS = 60.0


class Side(Enum):
    REQUEST = "request"
    RESPONSE = "response"


class Departure(Enum):
    """Why a half left the buffer without its partner."""

    EXPIRED = "expired"
    EVICTED = "evicted"  # the buffer was full
    REPLACED = "replaced"  # a newer half of the same side came with the same id
    DRAINED = "drained"  # the caller emptied the buffer (shutdown)


@dataclass(frozen=True)
class Leftover(Generic[Half]):
    side: Side
    half: Half
    why: Departure


@dataclass(frozen=True)
class JoinStep(Generic[Half]):
    """What offering one half produced: a completed pair and/or halves that left unpaired."""

    pair: tuple[Half, Half] | None = None  # (request, response)
    leftovers: list[Leftover[Half]] = field(default_factory=list)
    duplicate: bool = False  # the half was a copy of one already taken: dropped


@dataclass
class _Waiting(Generic[Half]):
    side: Side
    half: Half
    since: float
    digest: bytes = b""


class Settled(NamedTuple):
    """An id whose halves were paired or settled alone: a copy arriving later is a duplicate."""

    key: Hashable
    since: float
    digests: dict[str, str]  # side → hex digest of the half taken


class Waiting(NamedTuple, Generic[Half]):
    """One half waiting for its partner, as a checkpoint keeps it."""

    key: Hashable
    side: Side
    half: Half
    since: float  # when it arrived: its TTL keeps running across a restart


COUNTERS = (
    "joined",
    "expired_requests",
    "expired_responses",
    "evicted_requests",
    "evicted_responses",
    "replaced_requests",
    "replaced_responses",
    "duplicate_requests",
    "duplicate_responses",
)


class HalfJoiner(Generic[Half]):
    """A bounded, TTL'd buffer of unpaired halves keyed by request id.

    >>> joiner = HalfJoiner[str](max_pending=10, ttl_seconds=5.0)
    >>> joiner.offer("id-1", Side.REQUEST, "req", now=0.0).pair
    >>> joiner.offer("id-1", Side.RESPONSE, "resp", now=1.0).pair
    ('req', 'resp')
    >>> joiner.offer("id-2", Side.REQUEST, "late", now=2.0).pair
    >>> [(left.half, left.why.value) for left in joiner.expire(now=8.0)], joiner.expired_requests
    ([('late', 'expired')], 1)
    """

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        self.max_pending = max_pending
        self.ttl_seconds = ttl_seconds
        self._waiting: OrderedDict[Hashable, _Waiting[Half]] = OrderedDict()
        # Ids settled within the TTL → (when, side → digest of the half taken): copies are duplicates.
        self._settled: OrderedDict[Hashable, tuple[float, dict[str, bytes]]] = OrderedDict()
        self.joined = 0
        self.expired_requests = 0
        self.expired_responses = 0
        self.evicted_requests = 0
        self.evicted_responses = 0
        self.replaced_requests = 0
        self.replaced_responses = 0
        self.duplicate_requests = 0
        self.duplicate_responses = 0

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def bound(self, max_pending: int | None = None, ttl_seconds: float | None = None) -> None:
        """Change the bounds (at start, from the configuration)."""
        if max_pending is not None:
            if max_pending < 1:
                raise ValueError("max_pending must be at least 1")
            self.max_pending = max_pending
        if ttl_seconds is not None:
            if not ttl_seconds > 0:
                raise ValueError("ttl_seconds must be positive")
            self.ttl_seconds = ttl_seconds

    def offer(self, key: Hashable, side: Side, half: Half, now: float, digest: bytes = b"") -> JoinStep[Half]:
        """Add one half; returns its pair if the partner was waiting, and what left meanwhile.

        With a ``digest`` (of the half's content), a copy of a half already taken is dropped
        (``JoinStep.duplicate``) instead of replacing it or pairing again.
        """
        leftovers = self.expire(now)
        if digest and self._is_copy(key, side, digest):
            self._count_duplicate(side)
            return JoinStep(None, leftovers, duplicate=True)
        waiting = self._waiting.pop(key, None)
        if waiting is not None and waiting.side is not side:
            self.joined += 1
            pair = (waiting.half, half) if side is Side.RESPONSE else (half, waiting.half)
            self.settle(key, waiting.side, waiting.digest, now)
            self.settle(key, side, digest, now)
            return JoinStep(pair, leftovers)
        if waiting is not None:
            leftovers.append(self._leaving(waiting, Departure.REPLACED))
        self._waiting[key] = _Waiting(side, half, now, digest)
        if len(self._waiting) > self.max_pending:
            _, oldest = self._waiting.popitem(last=False)
            leftovers.append(self._leaving(oldest, Departure.EVICTED))
        return JoinStep(None, leftovers)

    def take_alone(self, key: Hashable, side: Side, now: float, digest: bytes = b"") -> bool:
        """For a half settled on its own (a logger that logs one side only): False if it is a
        copy of one already taken (counted as a duplicate), else remember it and True. The
        caller expires the buffer first (:meth:`expire`), which also forgets old settled ids."""
        if digest and self._is_copy(key, side, digest):
            self._count_duplicate(side)
            return False
        self.settle(key, side, digest, now)
        return True

    def settle(self, key: Hashable, side: Side, digest: bytes, now: float) -> None:
        """Remember that ``key``'s ``side`` was taken (bounded by ``max_pending`` and the TTL)."""
        if not digest:
            return
        entry = self._settled.pop(key, None)
        digests = entry[1] if entry is not None else {}
        digests[side.value] = digest
        self._settled[key] = (now, digests)
        if len(self._settled) > self.max_pending:
            self._settled.popitem(last=False)

    def _is_copy(self, key: Hashable, side: Side, digest: bytes) -> bool:
        waiting = self._waiting.get(key)
        if waiting is not None and waiting.side is side and waiting.digest == digest:
            return True
        settled = self._settled.get(key)
        return settled is not None and settled[1].get(side.value) == digest

    def _count_duplicate(self, side: Side) -> None:
        if side is Side.REQUEST:
            self.duplicate_requests += 1
        else:
            self.duplicate_responses += 1

    def expire(self, now: float) -> list[Leftover[Half]]:
        """Halves that have waited longer than the TTL, oldest first."""
        leftovers: list[Leftover[Half]] = []
        deadline = now - self.ttl_seconds
        while self._settled:
            key, (since, _) = next(iter(self._settled.items()))
            if since > deadline:
                break
            del self._settled[key]
        # Arrival order is insertion order, so the expired ones are all at the front.
        while self._waiting:
            key, oldest = next(iter(self._waiting.items()))
            if oldest.since > deadline:
                break
            del self._waiting[key]
            leftovers.append(self._leaving(oldest, Departure.EXPIRED))
        return leftovers

    def drain(self) -> list[Leftover[Half]]:
        """Every waiting half, oldest first; the buffer is empty afterwards."""
        leftovers = [Leftover(w.side, w.half, Departure.DRAINED) for w in self._waiting.values()]
        self._waiting.clear()
        return leftovers

    # Checkpoint support: a half waiting when the state is saved came from a message the
    # saved offsets already cover, so it must come back with the state or never pair.
    def waiting(self) -> list[Waiting[Half]]:
        """Every waiting half, oldest first."""
        return [Waiting(key, w.side, w.half, w.since) for key, w in self._waiting.items()]

    def settled(self) -> list[Settled]:
        """Every id remembered as settled, oldest first (digests in hex)."""
        return [
            Settled(key, since, {side: digest.hex() for side, digest in digests.items()})
            for key, (since, digests) in self._settled.items()
        ]

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def restore(
        self,
        waiting: Iterable[Waiting[Half]],
        counts: Mapping[str, int],
        settled: Iterable[Settled] = (),
        digest: Callable[[Half], bytes] | None = None,
    ) -> None:
        """Replace the buffer, the settled ids and the counters with saved ones (arrival order
        kept); ``digest`` recomputes a waiting half's digest from its content."""
        self._waiting = OrderedDict(
            (w.key, _Waiting(w.side, w.half, w.since, digest(w.half) if digest is not None else b"")) for w in waiting
        )
        self._settled = OrderedDict(
            (s.key, (s.since, {side: bytes.fromhex(text) for side, text in s.digests.items()})) for s in settled
        )
        for name in COUNTERS:
            setattr(self, name, int(counts.get(name, 0)))

    def _leaving(self, waiting: _Waiting[Half], why: Departure) -> Leftover[Half]:
        request = waiting.side is Side.REQUEST
        if why is Departure.EXPIRED:
            self.expired_requests += request
            self.expired_responses += not request
        elif why is Departure.EVICTED:
            self.evicted_requests += request
            self.evicted_responses += not request
        elif why is Departure.REPLACED:
            self.replaced_requests += request
            self.replaced_responses += not request
        return Leftover(waiting.side, waiting.half, why)
