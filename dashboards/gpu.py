"""GPUs: utilization, memory, power, temperature, clocks, memory per pod (NVML), and each model's
share of the GPUs' energy and time."""

from __future__ import annotations

from typing import Any

from dashboards.common import dashboard, layout, query_variable, row, stat, table, timeseries
from dashboards.queries import per_gpu_rate
from exporter.config import DashboardsConfig

KEY = "gpu"
GPU = 'instance=~"$instance", gpu_uuid=~"$gpu_uuid"'
LEGEND = "{{instance}} GPU {{gpu}}"


def build(config: DashboardsConfig) -> dict[str, Any]:
    variables = [
        query_variable("instance", "Instance", "model_health_gpu_info", "instance", multi=True),
        query_variable("gpu_uuid", "GPU", 'model_health_gpu_info{instance=~"$instance"}', "gpu_uuid", multi=True),
    ]
    overview = [
        stat("GPUs", f"count(max by (gpu_uuid) (model_health_gpu_info{{{GPU}}}))", width=4),
        stat(
            "Mean utilization",
            f"avg(model_health_gpu_utilization_ratio{{{GPU}}})",
            unit="percentunit",
            width=5,
            thresholds=(("green", 0), ("red", config.gpu_utilization)),
        ),
        stat(
            "Memory in use",
            f"sum(model_health_gpu_memory_used_bytes{{{GPU}}}) / sum(model_health_gpu_memory_total_bytes{{{GPU}}})",
            unit="percentunit",
            width=5,
            thresholds=(("green", 0), ("orange", 0.9)),
        ),
        stat("Power", f"sum(model_health_gpu_power_watts{{{GPU}}})", unit="watt", width=5),
        stat(
            "Collectors failing",
            'count(model_health_gpu_collector_up{instance=~"$instance"} == 0) or vector(0)',
            width=5,
            thresholds=(("green", 0), ("red", 1)),
            description="Targets whose last NVML sample failed (model_health_gpu_collector_up = 0).",
        ),
    ]
    usage = [
        timeseries(
            "Utilization",
            [(f"model_health_gpu_utilization_ratio{{{GPU}}}", LEGEND)],
            unit="percentunit",
            threshold=config.gpu_utilization,
            description="Share of time the GPU was busy; red: saturated.",
        ),
        timeseries(
            "Memory bandwidth utilization",
            [(f"model_health_gpu_memory_utilization_ratio{{{GPU}}}", LEGEND)],
            unit="percentunit",
            description="Share of time GPU memory was being read or written.",
        ),
    ]
    memory = [
        timeseries(
            "Memory used",
            [
                (f"model_health_gpu_memory_used_bytes{{{GPU}}}", f"{LEGEND} used"),
                (f"model_health_gpu_memory_reserved_bytes{{{GPU}}}", f"{LEGEND} reserved"),
                (f"model_health_gpu_memory_total_bytes{{{GPU}}}", f"{LEGEND} total"),
            ],
            unit="bytes",
        ),
        timeseries(
            "Memory by pod",
            [
                (
                    f'sum by (pod_uid) (model_health_gpu_process_memory_used_bytes{{{GPU}, pod_uid!=""}})',
                    "pod {{pod_uid}}",
                ),
                (
                    f'sum(model_health_gpu_process_memory_used_bytes{{{GPU}, pod_uid=""}})',
                    "not in a pod",
                ),
            ],
            unit="bytes",
            stacked=True,
            description="GPU memory of each process, summed per pod UID.",
        ),
    ]
    power = [
        timeseries(
            "Power",
            [
                (f"model_health_gpu_power_watts{{{GPU}}}", f"{LEGEND} draw"),
                (f"rate(model_health_gpu_energy_joules_total{{{GPU}}}[$__rate_interval])", f"{LEGEND} mean (energy)"),
            ],
            unit="watt",
            width=8,
        ),
        timeseries(
            "Temperature", [(f"model_health_gpu_temperature_celsius{{{GPU}}}", LEGEND)], unit="celsius", width=8
        ),
        timeseries("SM clock", [(f"model_health_gpu_sm_clock_hertz{{{GPU}}}", LEGEND)], unit="hertz", width=8),
    ]
    processes = table(
        "Processes",
        [
            (
                "Memory",
                f"max by (instance, gpu_uuid, pod_uid, container_id, pid) (model_health_gpu_process_memory_used_bytes{{{GPU}}})",
            )
        ],
        join_on=("instance", "gpu_uuid", "pod_uid", "container_id", "pid"),
        width=14,
        sort_by="Memory",
        overrides=[
            {"matcher": {"id": "byName", "options": "Memory"}, "properties": [{"id": "unit", "value": "bytes"}]}
        ],
    )
    inventory = table(
        "GPUs",
        [("Info", f"max by (instance, gpu, gpu_uuid, gpu_model, driver_version) (model_health_gpu_info{{{GPU}}})")],
        join_on=("instance", "gpu", "gpu_uuid", "gpu_model", "driver_version"),
        width=10,
    )
    by_model = "model, model_version"
    model_energy = per_gpu_rate("model_health_model_gpu_energy_joules_total", GPU, by_model)
    cost = [
        timeseries(
            "Power by model",
            [
                (model_energy, "{{model}} v{{model_version}}"),
                (
                    f"{per_gpu_rate('model_health_gpu_energy_joules_total', GPU, '')}\n"
                    f"- (sum({model_energy}) or vector(0))",
                    "not attributed",
                ),
            ],
            unit="watt",
            stacked=True,
            description=(
                "Each model's share of the GPUs' energy per second: its pods' share of each GPU (the whole GPU "
                "where a pod holds it alone, else by per-process SM utilization; MIG by instance), times the "
                "energy counter. Not attributed: idle GPUs and pods serving no monitored model."
            ),
        ),
        timeseries(
            "GPU time by model",
            [(per_gpu_rate("model_health_model_gpu_seconds_total", GPU, by_model), "{{model}} v{{model_version}}")],
            stacked=True,
            description="GPUs' worth of time each model holds (1 = one whole GPU), the basis of its GPU-hour cost.",
        ),
    ]
    panels = layout(
        [
            [row("GPUs")],
            overview,
            usage,
            memory,
            power,
            [row("Cost by model")],
            cost,
            [row("Inventory")],
            [processes, inventory],
        ]
    )
    return dashboard(
        config,
        KEY,
        "GPU",
        "NVML GPU utilization, memory, power, per-pod memory and each model's energy and GPU time, from the "
        "sidecars and node agents.",
        panels,
        variables,
    )
