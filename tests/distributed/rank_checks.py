"""Run as each of two ranks (RANK, WORLD_SIZE=2, MASTER_ADDR/PORT set) by test_collectives.py: exercises
dagrad.run.distributed's pieces on a gloo group and prints one JSON line of what each rank saw."""

from __future__ import annotations

import json
import sys

import torch
from torch import nn

from dagrad.gradsamp.ranks import settle_draw
from dagrad.run import distributed
from dagrad.run.folder import shared_run_folder
from dagrad.run.epochs import EpochKind, EpochOutcome
from dagrad.utils.errors import DagradError


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.opt = torch.optim.SGD(self.parameters(), lr=1.0)

    def optimizers(self):
        return {"sgd": self.opt}


def main() -> None:
    out = {}
    with distributed.session("cpu") as dist:
        rank = dist.rank
        torch.manual_seed(100 + rank)  # different starts on purpose
        model = Model()
        dist.prepare(model)  # rank 0's parameters everywhere, gradients averaged before each step
        out["start"] = [p.detach().tolist() for p in model.parameters()]
        x = torch.full((4, 3), float(rank + 1))
        model.opt.zero_grad()
        loss = model.a(x).sum() + (model.b(x).sum() if rank == 0 else 0)  # b: rank 0 only; c: no rank
        loss.backward()
        before = model.a.weight.detach().clone()
        model.opt.step()
        out["a_step"] = (before - model.a.weight.detach()).tolist()  # = averaged gradient (lr 1)
        out["b_grad"] = model.b.weight.grad.tolist()
        out["c_grad_is_none"] = model.c.weight.grad is None

        model.bn.running_mean.fill_(float(rank))
        dist.average_buffers(model)
        out["bn_mean"] = model.bn.running_mean.tolist()

        model.opt.state.clear()
        if rank == 1:  # as if this rank's device generator had drawn another theta_t, and rejected it
            with torch.no_grad():
                model.a.weight.add_(1.0)
            model.opt.state[model.a.weight]["momentum_buffer"] = torch.ones(2, 3)
        outcome = EpochOutcome(EpochKind.SAMPLED if rank == 0 else EpochKind.REJECTED, None if rank == 0 else "keep",
                               {"x": 1})
        settled = settle_draw(dist, outcome, model)
        out["settled"] = [str(settled.kind), settled.fallback, settled.sampler_stats["ranks_agreed"]]
        out["after"] = model.a.weight.detach().tolist()
        out["opt_state"] = len(model.opt.state)
        dist.check_same_model(model, "after the draw")

        try:
            with shared_run_folder(dist, sys.argv[1], resume=True, restart=False):
                out["run_folder"] = "entered"
        except DagradError as exc:  # rank 0's error, raised on every rank
            out["run_folder"] = f"{type(exc).__name__}: {exc}"
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
