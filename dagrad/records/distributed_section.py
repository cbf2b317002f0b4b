"""The header's `distributed` section: how a run on several processes (dagrad.run.distributed) was spread
and metered. Every rank gives its host, device and meter through one gather of the job's collectives; rank 0
writes the section, one process writes none."""

from __future__ import annotations

import socket
from typing import Any, Optional

import torch

from dagrad.energy.ranks import metered_parts
from dagrad.run.distributed import Distributed


def distributed_section(dist: Distributed, meter: Any, device: torch.device) -> Optional[dict]:
    """The header's account of the job's processes: world size, backend, each rank's host, device and meter
    backends, how many GPUs and nodes the meters cover; None in one process. Every rank must call it."""
    if not dist.active:
        return None
    described = meter.describe()
    everyone = dist.gather_objects({"host": socket.gethostname(), "device": str(device),
                                    "meter": described.get("selected", []),
                                    "estimated": described.get("estimated", False)})
    selections = [{"selected": e["meter"], "estimated": e["estimated"]} for e in everyone]
    return {"world_size": dist.world, "backend": dist.backend, "ranks": everyone,
            "energy": metered_parts(selections, [e["host"] for e in everyone]),
            "checked_every_epoch": dist.check_every_epoch}
