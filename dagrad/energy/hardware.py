"""A short description of the machine for run headers: CPU model, thread counts, GPU names."""

from __future__ import annotations

import os
import platform


def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's marketing name ("model name" in /proc/cpuinfo), else platform.processor()."""
    try:
        with open(cpuinfo_path) as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus() -> int:
    """CPUs this process may run on (affinity mask), falling back to the logical CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_gpu_names(device: str) -> list[str]:
    """CUDA device names via torch, only when the run uses CUDA (querying names initialises CUDA): the one
    GPU of `cuda:N`, every visible one for a bare 'cuda'."""
    if not device.startswith("cuda"):
        return []
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        if ":" in device:  # the job's own GPU
            return [torch.cuda.get_device_name(int(device.split(":", 1)[1]))]
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a description must never break metering
        return []


def describe_hardware(device: str, gpu_names: list[str] | None = None) -> dict:
    """Hardware facts recorded next to every energy figure (so numbers can be compared honestly)."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "platform": platform.platform(),
        "device": device,
        "gpus": list(gpu_names) if gpu_names is not None else torch_gpu_names(device),
    }
