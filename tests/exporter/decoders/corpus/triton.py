"""Triton's generated Open Inference Protocol classes, as an encoder independent of ours.

``tritonclient`` (PyPI, the test extra) ships ``tritonclient/grpc/service_pb2.py``, compiled by
protoc from Triton's ``grpc_service.proto`` — the ``inference`` package KServe's
``grpc_predict_v2.proto`` and Seldon Core 2's ``v2_dataplane.proto`` share field for field. Its
package ``__init__`` imports ``grpc`` (the ``[grpc]`` extra, which would pin protobuf 6 in this
venv); the generated modules themselves need only protobuf, so they are loaded here under a
bare stand-in for that package. Their descriptors live in protobuf's default pool; ours
(:mod:`exporter.decoders.oip_protobuf`) in a pool of their own, so both load side by side.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def _service_pb2() -> Any:
    name = "tritonclient.grpc"
    loaded = sys.modules.get(f"{name}.service_pb2")
    if loaded is not None:
        return loaded
    root = importlib.util.find_spec("tritonclient")
    if root is None or not root.submodule_search_locations:
        raise ImportError("tritonclient is not installed (it is in the test extra)")
    if name not in sys.modules:
        stand_in = types.ModuleType(name)
        stand_in.__path__ = [str(Path(next(iter(root.submodule_search_locations))) / "grpc")]
        sys.modules[name] = stand_in
    return importlib.import_module(f"{name}.service_pb2")


service_pb2 = _service_pb2()
ModelInferRequest = service_pb2.ModelInferRequest
ModelInferResponse = service_pb2.ModelInferResponse
