"""Trained times from an MLflow model registry, looked up over its REST API.

What "trained" means here: a registered model version that names its source run
(``run_id``) was trained when that run ended (``runs/get`` → ``info.end_time``); a
version without a run, whose run is still running, or whose run this server does not
know (another tracking server, deleted for good) falls back to when the version was
registered (``model-versions/get`` → ``creation_timestamp``). Both are epoch
milliseconds; exported as seconds in ``model_health_model_trained_timestamp_seconds``.

Lookups are plain HTTP GETs (the ``mlflow`` client is a heavy import the exporter does
not need), with the MLflow clients' own credentials from the environment:
``MLFLOW_TRACKING_TOKEN`` (bearer) or ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` (basic). :class:`TrainedTimes` refreshes every configured
model version on a schedule — never in a scrape — and publishes an immutable mapping.
A failed lookup is logged once per distinct reason and changes nothing: the version keeps
the registry's last answer, or, until the registry has answered, the trained time in its
reference profile.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)

ModelKey = tuple[str, str]
API_PREFIX = "/api/2.0/mlflow/"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # a run with many params and tags is still far below this


class RegistryError(Exception):
    """A lookup that gave no trained time, and why (the text is what gets logged)."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code

    @property
    def not_found(self) -> bool:
        return self.error_code == "RESOURCE_DOES_NOT_EXIST" or self.status == 404


@dataclass(frozen=True)
class TrainedTime:
    seconds: float
    source: str  # where it came from, for the log


class MlflowRegistry:
    """REST lookups against one MLflow tracking server."""

    def __init__(self, tracking_uri: str, timeout_s: float = 10.0, headers: Mapping[str, str] | None = None) -> None:
        self.base = tracking_uri.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"Accept": "application/json", **(headers or {})}

    @classmethod
    def with_credentials(cls, tracking_uri: str, timeout_s: float, environ: Mapping[str, str]) -> MlflowRegistry:
        """A registry client using the MLflow clients' credential variables from ``environ``."""
        headers: dict[str, str] = {}
        token = environ.get("MLFLOW_TRACKING_TOKEN")
        user, password = environ.get("MLFLOW_TRACKING_USERNAME"), environ.get("MLFLOW_TRACKING_PASSWORD")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user and password:
            pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {pair}"
        return cls(tracking_uri, timeout_s, headers)

    def trained_time(self, name: str, version: str) -> TrainedTime:
        """When registered model ``name`` version ``version`` was trained; raises :class:`RegistryError`."""
        model_version = self._get("model-versions/get", name=name, version=version).get("model_version")
        if not isinstance(model_version, dict):
            raise RegistryError(f"model-versions/get for {name!r} version {version!r}: no model_version in the answer")
        run_id = model_version.get("run_id")
        fallback = "version registered"
        if isinstance(run_id, str) and run_id:
            try:
                info = self._get("runs/get", run_id=run_id).get("run", {}).get("info", {})
            except RegistryError as error:
                if not error.not_found:
                    raise  # the server is in trouble: a fallback now would flap back later
                fallback = f"version registered; its run {run_id} is unknown to this server"
            else:
                end = _millis(info.get("end_time"))
                if end is not None:
                    return TrainedTime(end / 1000.0, f"end of run {run_id}")
                fallback = f"version registered; its run {run_id} has not ended"
        created = _millis(model_version.get("creation_timestamp"))
        if created is None:
            raise RegistryError(f"model-versions/get for {name!r} version {version!r}: no creation_timestamp")
        return TrainedTime(created / 1000.0, fallback)

    def _get(self, method: str, **params: str) -> dict[str, Any]:
        url = f"{self.base}{API_PREFIX}{method}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=self._headers, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            raise _http_error(method, error) from None
        except urllib.error.URLError as error:
            raise RegistryError(f"cannot reach MLflow at {self.base}: {error.reason}") from None
        except (OSError, ValueError) as error:  # timeouts, resets, a malformed URL
            raise RegistryError(f"cannot reach MLflow at {self.base}: {error}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise RegistryError(
                f"{method}: the answer from {self.base} is not JSON (is this an MLflow server?)"
            ) from None
        if not isinstance(document, dict):
            raise RegistryError(f"{method}: the answer from {self.base} is not a JSON object")
        return document


def _http_error(method: str, error: urllib.error.HTTPError) -> RegistryError:
    code = message = None
    try:
        document = json.loads(error.read(MAX_RESPONSE_BYTES))
        code, message = document.get("error_code"), document.get("message")
    except (ValueError, AttributeError, OSError):
        pass
    detail = f"{code}: {message}" if code else (error.reason or "no detail")
    return RegistryError(f"{method}: HTTP {error.code} {detail}", status=error.code, error_code=code)


def _millis(value: object) -> float | None:
    # The REST API writes int64 fields as JSON numbers, some gateways as strings.
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


class TrainedTimes:
    """Every configured model version's trained time from the registry, refreshed by a scheduler.

    :meth:`current` hands out the last published mapping (immutable; a scrape or an
    evaluation reads it without waiting); :meth:`refresh` does the lookups and publishes.
    """

    def __init__(self, registry: MlflowRegistry, models: Iterable[ModelKey], name_map: Mapping[str, str]) -> None:
        self.registry = registry
        self.models = list(models)
        self.name_map = dict(name_map)
        self._times: Mapping[ModelKey, float] = MappingProxyType({})
        self._problems: dict[ModelKey, str] = {}

    def current(self) -> Mapping[ModelKey, float]:
        return self._times

    def registered_name(self, model: str) -> str:
        return self.name_map.get(model, model)

    def refresh(self) -> None:
        """Look every model version up once; never raises (failures are logged once per reason)."""
        times = dict(self._times)
        failures: dict[str, list[ModelKey]] = {}
        for key in self.models:
            try:
                found = self.registry.trained_time(self.registered_name(key[0]), key[1])
            except RegistryError as error:
                problem = str(error)
                if self._problems.get(key) != problem:
                    failures.setdefault(problem, []).append(key)
                self._problems[key] = problem
                continue
            except Exception as error:  # noqa: BLE001 - a lookup must never stop the scheduler
                problem = f"unexpected {type(error).__name__}: {error}"
                if self._problems.get(key) != problem:
                    failures.setdefault(problem, []).append(key)
                self._problems[key] = problem
                continue
            if self._problems.pop(key, None) is not None or times.get(key) != found.seconds:
                log.info(
                    "mlflow: %s v%s (registered as %r) trained at %.3f (%s)",
                    key[0],
                    key[1],
                    self.registered_name(key[0]),
                    found.seconds,
                    found.source,
                )
            times[key] = found.seconds
        self._times = MappingProxyType(times)
        # One line per distinct reason: a server that is down is one line, not one per model.
        for problem, keys in failures.items():
            known = sum(1 for k in keys if k in times)
            fallback = (
                "keeping the registry's last answer"
                if known == len(keys)
                else "using the profile's trained time"
                if known == 0
                else "keeping the registry's last answer where there is one, else the profile's trained time"
            )
            log.warning(
                "mlflow: no trained time for %s: %s; %s", ", ".join(f"{m} v{v}" for m, v in keys), problem, fallback
            )
