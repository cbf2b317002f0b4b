"""What Flower adds to a federated round on the digits: the same clients, steps and evaluation run three ways,
and the wall time of each round after the first (start-up excluded) and the memory per client compared.

- bare: dagrad's ClientSites called in a plain Python FedAvg loop (example-count weighted mean of the
  clients' weights), no Flower at all;
- inprocess: the ServerApp's rounds and the ClientApp through Flower's messages, delivered in this process
  (dagrad.federated.inprocess): Flower's records, serialisation and strategy, no runtime;
- simulation: Flower's simulation runtime (Ray workers, one CPU each), as `dagrad train` runs it.

Memory per client: the growth of this process's resident memory while the clients are built (bare,
inprocess), and the resident memory of each Ray worker over the clients it serves (simulation).

    python benchmarks/federated_overhead.py [--clients 5] [--rounds 4] [--local-steps 5] [--runtimes bare,inprocess,simulation] [--threads 1]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dagrad.config.experiment import load_experiment
from dagrad.federated import build
from dagrad.federated.local import ClientSite
from dagrad.federated.wire import aliases, with_aliases
from dagrad.run.evaluation import evaluate
from dagrad.run.progress import RunProgress
from dagrad.utils.seeding import seed_everything


class Clock(RunProgress):
    """Silent progress that notes when each round's record is written."""

    def __init__(self) -> None:
        super().__init__(lines=False, bars=False)
        self.times: list[float] = [time.perf_counter()]
        self.worker_rss: list[float] = []

    def epoch_done(self, record: dict) -> None:
        self.times.append(time.perf_counter())
        try:
            import psutil

            workers = [p for p in psutil.Process().children(recursive=True) if "ClientAppActor" in " ".join(p.cmdline())]
            self.worker_rss += [p.memory_info().rss / 2**20 for p in workers]
        except Exception:  # noqa: BLE001 - no psutil or a worker gone: no figure
            pass


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def bare(exp, folder: Path) -> tuple[list[float], float]:
    seed_everything(exp.seed)
    data = build.build_data(exp)
    seed_everything(exp.seed)
    model = build.build_model(exp, data, torch.device("cpu"))
    held_out = build.held_out_bundle(data).eval_loader()
    before = rss_mib()
    sites = [ClientSite(exp, k, folder) for k in range(exp.cfg.federated.clients)]
    per_client = (rss_mib() - before) / len(sites)
    alias = aliases(model.state_dict())
    times = [time.perf_counter()]
    for r in range(exp.cfg.epochs):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        results = [s.train(state, r) for s in sites]
        total = sum(res.examples for res in results)
        mean = {k: sum(res.state[k].double() * res.examples / total for res in results).to(state[k].dtype)
                for k in results[0].state}  # each tensor once: the aliases are filled in from what they alias
        model.load_state_dict(with_aliases(mean, alias))
        new = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for s in sites:
            s.evaluate(new)
        evaluate(model, held_out, torch.device("cpu"))
        times.append(time.perf_counter())
    return times, per_client


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--local-steps", type=int, default=5)
    p.add_argument("--runtimes", default="bare,inprocess,simulation")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process (a Ray worker's: one "
                   "per CPU it holds), so every runtime computes with the same threads per client")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    exp = load_experiment(["federated/digits"], [f"federated.clients={args.clients}", f"epochs={args.rounds}",
                                                 f"federated.local_steps={args.local_steps}",
                                                 "energy.backend=estimate"])
    for runtime in args.runtimes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "run"
            memory = "n/a"
            if runtime == "bare":
                times, per_client = bare(exp, folder)
                memory = f"{per_client:.1f} MiB per client (this process)"
            elif runtime == "inprocess":
                from dagrad.federated.inprocess import run_in_process

                clock, before = Clock(), rss_mib()
                run_in_process(exp, folder, progress=clock)
                times = clock.times
                memory = f"{(rss_mib() - before) / args.clients:.1f} MiB per client (this process, with Flower)"
            elif runtime == "simulation":
                from dagrad.federated.simulation import simulate

                clock = Clock()
                simulate(exp, folder, progress=clock)
                times = clock.times
                if clock.worker_rss:
                    memory = f"{max(clock.worker_rss):.0f} MiB per Ray worker at most (each serves several clients)"
            else:
                raise SystemExit(f"unknown runtime {runtime!r}; allowed: bare, inprocess, simulation")
        rounds = [b - a for a, b in zip(times[1:], times[2:])]  # after the first round: start-up excluded
        mean = statistics.mean(rounds) if rounds else float("nan")
        print(f"{runtime:>10}: {mean:.2f} s per round after the first (rounds {', '.join(f'{r:.2f}' for r in rounds)}); "
              f"{memory}", flush=True)


if __name__ == "__main__":
    main()
