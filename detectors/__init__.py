"""Pure drift and performance statistics: numpy in, numbers out.

No I/O, clocks, Kafka, Prometheus or NVML here; time is passed in by the caller.
"""
