"""The one door to ``pynvml``: the real library, its error classes, constants and structs.

No other module of the project imports ``pynvml``. The sampler calls NVML through an object
that has pynvml's function names (``nvmlInit``, ``nvmlDeviceGetUtilizationRates``, …): the
``pynvml`` module itself (:func:`real_nvml`) or the recorded fake (``exporter.gpu.fake``),
which raises the same error classes and returns the same struct types re-exported here.

Importing ``pynvml`` needs no driver; ``nvmlInit`` is what fails on a machine without one
(``NVMLError_LibraryNotFound``), and the sampler turns that into ``collector_up 0``.
"""

from __future__ import annotations

from types import ModuleType

import pynvml

NVMLError = pynvml.NVMLError
NVMLError_NotFound = pynvml.NVMLError_NotFound
NVMLError_NotSupported = pynvml.NVMLError_NotSupported
NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
NVMLError_Uninitialized = pynvml.NVMLError_Uninitialized
NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost

# Return shapes, so the fake hands back the very ctypes structs pynvml does.
Memory = pynvml.c_nvmlMemory_t
MemoryV2 = pynvml.c_nvmlMemory_v2_t
Utilization = pynvml.c_nvmlUtilization_t
ProcessUtilizationSample = pynvml.c_nvmlProcessUtilizationSample_t
BAR1Memory = pynvml.c_nvmlBAR1Memory_t
DeviceAttributes = pynvml.c_nvmlDeviceAttributes
FriendlyObject = pynvml.nvmlFriendlyObject

MEMORY_V2 = pynvml.nvmlMemory_v2
TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
CLOCK_SM = pynvml.NVML_CLOCK_SM
CLOCK_MEM = pynvml.NVML_CLOCK_MEM
PCIE_TX_BYTES = pynvml.NVML_PCIE_UTIL_TX_BYTES
PCIE_RX_BYTES = pynvml.NVML_PCIE_UTIL_RX_BYTES
MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE
# gpuInstanceId / computeInstanceId of a process when the GPU is not in MIG mode.
VALUE_NOT_AVAILABLE_UINT = 0xFFFFFFFF  # pynvml's NVML_VALUE_NOT_AVAILABLE_uint

ERROR_UNINITIALIZED = pynvml.NVML_ERROR_UNINITIALIZED
ERROR_INVALID_ARGUMENT = pynvml.NVML_ERROR_INVALID_ARGUMENT
ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
ERROR_NO_PERMISSION = pynvml.NVML_ERROR_NO_PERMISSION
ERROR_NOT_FOUND = pynvml.NVML_ERROR_NOT_FOUND
ERROR_DRIVER_NOT_LOADED = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
ERROR_LIBRARY_NOT_FOUND = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
ERROR_FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
ERROR_GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
ERROR_NO_DATA = pynvml.NVML_ERROR_NO_DATA
ERROR_ARGUMENT_VERSION_MISMATCH = pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
ERROR_UNKNOWN = pynvml.NVML_ERROR_UNKNOWN

# Errors that mean "this reading does not exist here", not "NVML is broken": the series is
# left out and the collector stays up. Not Found is what per-process utilization answers
# when no process ran in the sampling window; Not Supported what a card without a sensor,
# or a MIG-enabled GPU asked for utilization, answers; No Permission what an unprivileged
# container gets for other containers' processes; the last three what an older driver
# answers for a newer call.
ABSENT_CODES: frozenset[int] = frozenset(
    {
        ERROR_NOT_SUPPORTED,
        ERROR_NOT_FOUND,
        ERROR_NO_PERMISSION,
        ERROR_NO_DATA,
        ERROR_FUNCTION_NOT_FOUND,
        ERROR_ARGUMENT_VERSION_MISMATCH,
    }
)


def real_nvml() -> ModuleType:
    """The real library: the ``pynvml`` module, whose functions the sampler calls by name."""
    return pynvml


def error(code: int) -> Exception:
    """pynvml's exception for ``code``: ``error(6)`` is an ``NVMLError_NotFound``."""
    return pynvml.NVMLError(code)


def is_nvml_error(exc: BaseException) -> bool:
    return isinstance(exc, pynvml.NVMLError)


def is_absent(exc: BaseException) -> bool:
    """True when ``exc`` says the value does not exist here, rather than that NVML failed."""
    return isinstance(exc, pynvml.NVMLError) and getattr(exc, "value", None) in ABSENT_CODES


def describe(exc: BaseException) -> str:
    """One line for the log: ``NVML Shared Library Not Found (NVML error 12)``."""
    if isinstance(exc, pynvml.NVMLError):
        return f"{exc} (NVML error {getattr(exc, 'value', '?')})"
    return f"{type(exc).__name__}: {exc}"


def text(value: object) -> str:
    """pynvml returns ``str`` from recent releases and ``bytes`` from older ones."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
