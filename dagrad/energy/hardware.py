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


def affinity_cpus() -> set[int]:
    """The CPU numbers this process may run on (affinity mask), else every logical CPU."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def usable_cpus() -> int:
    """CPUs this process may run on (affinity mask), falling back to the logical CPU count."""
    return len(affinity_cpus())


def blas_description(config: str) -> str:
    """The BLAS torch computes with, from `torch.__config__.show()`: its BLAS_INFO name and, where the text
    gives one, its version line (MKL, OpenBLAS)."""
    name = next((part.split("=", 1)[1] for line in config.splitlines() for part in line.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "unknown")
    version = next((line.strip().lstrip("- ").split(" for ")[0] for line in config.splitlines()
                    if "Math Kernel Library Version" in line or "OpenBLAS" in line and "ersion" in line), "")
    return f"{name} ({version})" if version else name


def describe_compute() -> dict:
    """How the job computes on the CPU, for record headers: CPU model, cores, torch and its BLAS, threads,
    and the OpenMP wait policy in force (dagrad.utils.threads)."""
    import torch

    from dagrad.utils.threads import wait_policy

    try:
        config = torch.__config__.show()
    except Exception:  # noqa: BLE001 - a description must never break a run
        config = ""
    return {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(),
            "torch": torch.__version__, "blas": blas_description(config),
            "torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "omp_wait_policy": wait_policy()}


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
