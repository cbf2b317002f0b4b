"""A federated run in Flower's simulation runtime on this machine: the ServerApp in this process, each
client's ClientApp in a Ray worker with `federated.cpus_per_client` CPUs and no GPU (at most as many
clients at once as the machine has CPUs for), Ray's logging quiet, and Ray shut down afterwards, so a run
leaves no Ray processes behind."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from dagrad.config.experiment import Experiment
from dagrad.federated import build
from dagrad.federated.apps import client_app, server_app
from dagrad.federated.flower import quiet, require_flwr
from dagrad.federated.records import CLIENTS_FOLDER
from dagrad.records.files import RECORDS_NAME

#: Ray's shared-memory object store: the apps pass weights through Flower's own messages, so little is needed
OBJECT_STORE_BYTES = 128 * 1024 * 1024


def backend_config(exp: Experiment) -> dict:
    """Ray for this run: one worker per client that fits on the machine's CPUs, no GPUs, no dashboard."""
    fed = build.settings(exp)
    cpus = max(1, min(fed.clients, (os.cpu_count() or 1) // fed.cpus_per_client)) * fed.cpus_per_client
    return {"client_resources": {"num_cpus": fed.cpus_per_client, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False,
                          "logging_level": logging.ERROR, "log_to_driver": False,
                          "object_store_memory": OBJECT_STORE_BYTES}}


def simulate(exp: Experiment, out: str | Path, resume: bool = False, progress: Any = True) -> Path:
    """Run (or resume) `exp`'s rounds in the simulation runtime, writing records into `out`."""
    flwr = require_flwr(simulation=True)
    from flwr.simulation import run_simulation

    fed = build.settings(exp)
    folder = Path(out)
    threads = fed.cpus_per_client

    def source(context: Any) -> tuple[Experiment, Path]:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # a client's Ray worker: its own CPUs only
        return exp, folder / CLIENTS_FOLDER

    def server_source(context: Any) -> tuple[Experiment, Path]:
        return exp, folder

    quiet(logging.ERROR)
    with warnings.catch_warnings():
        # Ray's start and stop: its command-line library's deprecations, the log and process handles it
        # leaves to the garbage collector (its processes are gone once ray.shutdown returns)
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(ray|click)(\.|$)")
        warnings.filterwarnings("ignore", message=".*click.*deprecated", category=DeprecationWarning)
        before, seen = _children(), set()
        try:  # Ray stops its workers when the simulation ends, but they may outlive it a while: noted meanwhile
            run_simulation(server_app=server_app(server_source, resume=resume, progress=progress,
                                                 on_end=lambda: seen.update(_children())),
                           client_app=client_app(source), num_supernodes=fed.clients,
                           backend_config=backend_config(exp))
        finally:
            _shutdown_ray((seen | _children()) - before)
            gc.collect()  # Ray's process handles, closed here while their warnings are filtered
    path = folder / RECORDS_NAME
    del flwr
    return path


def _children() -> set[Any]:
    """This process's child processes (Ray's are among them while it runs); psutil comes with Ray."""
    try:
        import psutil
    except ImportError:
        return set()
    return set(psutil.Process().children(recursive=True))


def _shutdown_ray(started: set[Any], wait_s: float = 15.0) -> None:
    """Ray shut down, and the processes it started during the run gone: waited for, then ended by their id."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
    if not started:
        return
    import psutil
    _, alive = psutil.wait_procs(list(started), timeout=wait_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5.0)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
