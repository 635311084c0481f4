"""The serving counters every mode keeps from prediction records: one rule for errors and latency.

- An **error** is a record whose ``status`` is present and not ``"ok"`` (a missing status is
  not counted either way).
- **Latency** is ``latency_ms`` in seconds; missing, non-finite and negative values are left
  out of the histogram (a clock step or a broken logger must not bend the percentiles).

The aggregator (both modes) and the sidecar count with these functions, so
``model_health_prediction_errors_total`` and ``model_health_request_duration_seconds`` mean
the same whichever component exports them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def error_count(table: pa.Table) -> int:
    """Records with a status that is present and not ``ok``.

    >>> error_count(pa.table({"status": ["ok", "error", None, "timeout"]}))
    2
    """
    return int(pc.sum(pc.not_equal(table.column("status"), "ok")).as_py() or 0)


def latency_seconds(table: pa.Table) -> np.ndarray:
    """The records' latencies in seconds, finite and non-negative ones only.

    >>> latency_seconds(pa.table({"latency_ms": [12.5, None, -3.0, float("nan"), 1000.0]})).tolist()
    [0.0125, 1.0]
    """
    seconds = table.column("latency_ms").to_numpy(zero_copy_only=False).astype(np.float64) / 1000.0
    return seconds[np.isfinite(seconds) & (seconds >= 0)]
