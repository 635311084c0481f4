"""``model-health node``: the GPU node agent, one per GPU node (a DaemonSet).

It samples every GPU of the node through NVML, attributes each compute process to its pod
and container from ``<proc_root>/<pid>/cgroup``, splits each GPU's energy and time among the
models its pods serve (each pod named by its model-health sidecar's config, read through
``<proc_root>/<pid>/root``: the agent needs the sidecars' UID or ``CAP_SYS_PTRACE``), and
serves ``/metrics``, ``/healthz`` and ``/readyz`` (ready once the first sample is taken; the
text says whether NVML answered).
A node without a driver or GPU keeps serving, with ``model_health_gpu_collector_up 0``.

Kubernetes needs: ``hostPID: true`` (NVML names host PIDs; with it, ``/proc`` shows them),
or the host's ``/proc`` mounted read-only and named as ``proc_root``; the NVIDIA container
runtime with ``NVIDIA_VISIBLE_DEVICES=all`` so NVML sees every GPU, without requesting
``nvidia.com/gpu`` (which would take a GPU away from the workloads).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.config import NodeConfig
from exporter.errors import UserError
from exporter.exposition import BuildInfoCollector
from exporter.gpu import start_gpu_collector
from exporter.httpd.server import HttpServer, health_app

log = logging.getLogger(__name__)


def serve(
    config: NodeConfig,
    stop: threading.Event | None = None,
    *,
    nvml: object | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Run the node agent until ``stop`` is set (SIGTERM/SIGINT set it from the CLI)."""
    stop = stop or threading.Event()
    registry = CollectorRegistry()
    registry.register(BuildInfoCollector(__version__))
    runtime = start_gpu_collector(config.gpu, registry, nvml=nvml, proc_root=config.proc_root)
    try:
        server = HttpServer(health_app(registry, runtime.ready), config.http.host, config.http.port).start()
    except OSError as exc:
        runtime.stop()
        raise UserError(
            f"http: cannot listen on {config.http.host}:{config.http.port}: {exc.strerror or exc}"
        ) from None
    except BaseException:
        runtime.stop()
        raise
    log.info(
        "node agent: gpu mode %s every %.3gs, pods from %s; serving /metrics on %s:%d",
        config.gpu.mode,
        config.gpu.interval_seconds,
        config.proc_root,
        config.http.host,
        server.port,
    )
    if on_ready is not None:
        on_ready(server.port)
    try:
        stop.wait()
    finally:
        log.info("node agent stopping")
        server.stop()
        runtime.stop()
