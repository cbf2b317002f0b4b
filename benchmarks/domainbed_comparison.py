"""A whole `dagrad train` against the same work done the way DomainBed's `scripts/train.py` does it.

Builds a PACS-layout tree (4 environments x 7 classes x `--per-class` JPEGs of `--source-size` px, 1,120
images by default) in a temporary folder, then runs, each in its own process, metered from outside
around the whole process (startup included):
- dagrad: `dagrad train -c datasets/pacs -c algorithms/erm` with a random-weight ResNet-18, test
  environment 0, batch 32 x 3 training environments, `--epochs` epochs of `--steps` steps, every split
  evaluated after each epoch;
- bare: a DomainBed-style script (below, `--bare`): torchvision ImageFolder per environment split 80/20,
  one InfiniteDataLoader per training environment and one FastDataLoader per split (batch 64), each with
  `--workers` workers, the same transforms (DomainBed's, as dagrad ships them), the same network
  (torchvision ResNet-18, fc removed, BatchNorm statistics frozen, a linear head), Adam with ERM's
  defaults, `loss.item()` every step, every split evaluated (accuracy) after each `--steps` steps,
  a results line written after each evaluation and the model saved at the end.
Printed: wall time, energy (NVML's counter on the GPU used, plus the CPU from RAPL or the labelled
CPU-time estimate of the child process), s/step and s/evaluation (medians) of both.

    python benchmarks/domainbed_comparison.py [--device cuda] [--steps 100] [--epochs 3] [--image-size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ENVS = ["art_painting", "cartoon", "photo", "sketch"]
CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
HERE = Path(__file__).resolve()


def make_tree(root: Path, per_class: int, size: int) -> int:
    """PACS/<env>/<class>/<k>.jpg: smooth random colour fields with noise (JPEG decoding costs as for photos)."""
    from PIL import Image

    rng = np.random.RandomState(0)
    n = 0
    for env in ENVS:
        for cls in CLASSES:
            folder = root / "PACS" / env / cls
            folder.mkdir(parents=True)
            for k in range(per_class):
                base = rng.randint(0, 256, (8, 8, 3)).astype(np.uint8)
                image = Image.fromarray(base).resize((size, size), Image.BILINEAR)
                noisy = np.asarray(image, dtype=np.int16) + rng.randint(-20, 21, (size, size, 3))
                Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{k:04d}.jpg", quality=90)
                n += 1
    return n


# ---------------------------------------------------------------- the DomainBed-style child
def bare(args: argparse.Namespace) -> None:
    """DomainBed's train.py loop, written plainly with torch/torchvision (see the module docstring)."""
    import torch
    import torch.nn.functional as F
    import torchvision
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset

    from dagrad.datasets.transforms import eval_transform, train_transform

    started = time.perf_counter()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False

    class Infinite:
        def __init__(self, sampler):
            self.sampler = sampler

        def __iter__(self):
            while True:
                yield from self.sampler

    def infinite_loader(dataset, batch_size):
        sampler = BatchSampler(RandomSampler(dataset, replacement=True), batch_size=batch_size, drop_last=True)
        return iter(DataLoader(dataset, num_workers=args.workers, batch_sampler=Infinite(sampler)))

    class FastLoader:
        def __init__(self, dataset, batch_size):
            sampler = BatchSampler(RandomSampler(dataset, replacement=False), batch_size=batch_size, drop_last=False)
            self.it = iter(DataLoader(dataset, num_workers=args.workers, batch_sampler=Infinite(sampler)))
            self.n = len(sampler)

        def __iter__(self):
            for _ in range(self.n):
                yield next(self.it)

    in_splits, out_splits = [], []
    for i, env in enumerate(ENVS):
        train = i != args.test_env
        folder = torchvision.datasets.ImageFolder(str(Path(args.root) / "PACS" / env))
        order = np.random.RandomState(i).permutation(len(folder))
        n_out = int(len(folder) * 0.2)
        for indices, split, augment in ((order[n_out:], in_splits, train), (order[:n_out], out_splits, False)):
            view = torchvision.datasets.ImageFolder(str(Path(args.root) / "PACS" / env),
                                                    transform=(train_transform if augment else eval_transform)(
                                                        args.image_size))
            split.append(Subset(view, indices.tolist()))
    train_loaders = [infinite_loader(s, args.batch) for i, s in enumerate(in_splits) if i != args.test_env]
    eval_loaders = [FastLoader(s, 64) for s in in_splits + out_splits]

    class Featurizer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = torchvision.models.resnet18(weights=None)
            self.n_outputs = self.network.fc.in_features
            self.network.fc = torch.nn.Identity()

        def forward(self, x):
            return self.network(x)

        def train(self, mode=True):  # DomainBed's ResNet: BatchNorm statistics frozen
            super().train(mode)
            for m in self.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
            return self

    network = torch.nn.Sequential(Featurizer(), torch.nn.Linear(512, len(CLASSES))).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=5e-5, weight_decay=0.0)
    batches = zip(*train_loaders)
    step_seconds, eval_seconds, first_step = [], [], None
    results = open(Path(args.out) / "results.jsonl", "w")
    for step in range(args.steps * args.epochs):
        t0 = time.perf_counter()
        minibatches = [(x.to(device), y.to(device)) for x, y in next(batches)]
        if first_step is None:
            first_step = t0 - started
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(network(all_x), all_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values = {"loss": loss.item()}
        step_seconds.append(time.perf_counter() - t0)
        if (step + 1) % args.steps == 0:
            t0 = time.perf_counter()
            network.eval()
            accuracies = []
            with torch.no_grad():
                for loader in eval_loaders:
                    correct = total = 0.0
                    for x, y in loader:
                        x, y = x.to(device), y.to(device)
                        correct += network(x).argmax(1).eq(y).float().sum().item()
                        total += len(x)
                    accuracies.append(correct / total)
            network.train()
            results.write(json.dumps({"step": step, "acc": accuracies, **values}) + "\n")
            results.flush()
            eval_seconds.append(time.perf_counter() - t0)
    torch.save(network.state_dict(), Path(args.out) / "model.pkl")
    results.close()
    Path(args.report).write_text(json.dumps({"step_seconds": step_seconds, "eval_seconds": eval_seconds,
                                             "first_step": first_step}))


# ---------------------------------------------------------------- the parent
def whole_process_meter(device: str):
    """A meter for a child process: the GPU it uses (NVML, read from here without touching CUDA) and the
    CPU (RAPL, else the CPU-time estimate, which counts reaped children)."""
    from dagrad.config.schema import EnergyConfig
    from dagrad.energy import build_meter, resolve_energy
    from dagrad.energy.meter import Meter
    from dagrad.energy.nvml import NvmlBackend

    cpu = build_meter(resolve_energy(EnergyConfig()), "cpu")
    backends = list(cpu.backends)
    if device.startswith("cuda"):
        backends.insert(0, NvmlBackend(device="cuda:0"))
    return Meter(backends, cpu.cpu_clock, selection=cpu.selection, hardware=cpu.hardware)


def become_subreaper() -> bool:
    """Linux: processes orphaned below us (a fork server and its workers outlive the process that started
    them by a moment) are re-parented to this process, so reaping them counts their CPU time too."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_descendants(deadline_s: float = 60.0) -> None:
    """Wait for every re-parented descendant to exit (their CPU time then counts as ours)."""
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def run_child(cmd: list[str], meter, log: Path) -> tuple[float, dict]:
    with open(log, "w") as fh, meter.window("process") as reading:
        code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        reap_descendants()
    if code.returncode != 0:
        sys.exit(f"{cmd[:4]} failed; log: {log}\n{log.read_text()[-3000:]}")
    return reading.seconds, reading.to_dict()


def describe_energy(reading: dict) -> str:
    parts = [f"{name} {c['joules']:.0f} J ({c['source']})" if c["joules"] is not None else f"{name} unreadable"
             for name, c in sorted(reading["components"].items())]
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch (between evaluations)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--source-size", type=int, default=227, help="side of the JPEGs written (PACS: 227)")
    parser.add_argument("--per-class", type=int, default=40, help="images per class and environment")
    parser.add_argument("--workers", type=int, default=8, help="data workers per loader (DomainBed: 8)")
    parser.add_argument("--test-env", type=int, default=0)
    parser.add_argument("--dagrad-args", nargs="*", default=[], help="extra key=value overrides for dagrad")
    parser.add_argument("--keep", type=Path, default=None, help="build the tree and runs here and keep them")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare(args)
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    warnings.filterwarnings("ignore", message=".*ESTIMATED.*")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        n = make_tree(work / "data", args.per_class, args.source_size) if not (work / "data").exists() else 0
        subreaper = become_subreaper()
        meter = whole_process_meter(args.device)
        name = torch.cuda.get_device_name(0) if args.device == "cuda" else meter.hardware.get("cpu_model", "CPU")
        cores = os.cpu_count()
        print(f"device: {name} ({args.device}; {cores} logical CPUs; torch {torch.__version__})"
              + ("" if subreaper else "; orphaned worker processes may escape the CPU figure"))
        print(f"data: {n or 'existing'} JPEGs in PACS layout, {args.image_size} px inputs, test env {args.test_env}; "
              f"ERM, ResNet-18 (random weights), batch {args.batch} x 3 envs, {args.epochs} x {args.steps} steps, "
              f"{args.epochs} evaluations of all 8 splits, {args.workers} workers per loader")
        dagrad_out = work / "dagrad"
        dagrad_cmd = [sys.executable, "-m", "dagrad", "train", "--quiet", "-c", "datasets/pacs", "-c",
                      "algorithms/erm", f"data.root={work / 'data'}", "network.name=resnet18",
                      "network.options.pretrained=null", f"data.test_envs=[{args.test_env}]",
                      f"data.batch_size={args.batch}", f"data.image_size={args.image_size}",
                      f"data.num_workers={args.workers}", f"steps_per_epoch={args.steps}", f"epochs={args.epochs}",
                      f"device={args.device}", *args.dagrad_args, "--out", str(dagrad_out)]
        bare_out = work / "bare"
        bare_out.mkdir(exist_ok=True)
        report = bare_out / "timing.json"
        bare_cmd = [sys.executable, str(HERE), "--bare", "--root", str(work / "data"), "--out", str(bare_out),
                    "--report", str(report), "--device", args.device, "--steps", str(args.steps),
                    "--epochs", str(args.epochs), "--batch", str(args.batch), "--image-size", str(args.image_size),
                    "--workers", str(args.workers), "--test-env", str(args.test_env)]
        rows = {}
        for label, cmd in (("bare (DomainBed-style)", bare_cmd), ("dagrad", dagrad_cmd)):
            wall, energy = run_child(cmd, meter, work / f"{label.split()[0]}.log")
            rows[label] = (wall, energy)
        meter.close()
        timing = json.loads(report.read_text())
        from dagrad.records.files import read_records, split_run

        _, epochs, _ = split_run(read_records(dagrad_out / "records.jsonl"))
        steps = timing["step_seconds"]
        per_step = {"bare (DomainBed-style)": statistics.median(sum(steps[e * args.steps:(e + 1) * args.steps])
                                                                / args.steps for e in range(args.epochs)),
                    "dagrad": statistics.median(r["energy"]["train"]["seconds"] / args.steps for r in epochs)}
        per_eval = {"bare (DomainBed-style)": statistics.median(timing["eval_seconds"]),
                    "dagrad": statistics.median(r["energy"]["eval"]["seconds"] for r in epochs)}
        print(f"{'':24s} {'wall s':>8s} {'s/step':>8s} {'s/eval':>8s}  energy of the whole process")
        for label, (wall, energy) in rows.items():
            print(f"{label:24s} {wall:8.1f} {per_step[label]:8.3f} {per_eval[label]:8.2f}  "
                  f"{energy['joules']:.0f} J: {describe_energy(energy)}")
        (bw, be), (dw, de) = rows["bare (DomainBed-style)"], rows["dagrad"]
        print(f"dagrad / bare: wall {dw / bw:.2f}x, energy {de['joules'] / be['joules']:.2f}x, "
              f"s/step {per_step['dagrad'] / per_step['bare (DomainBed-style)']:.2f}x, "
              f"s/eval {per_eval['dagrad'] / per_eval['bare (DomainBed-style)']:.2f}x")
        print("(s/step: an epoch's training time / its steps, median over epochs, for both. s/eval: median "
              "evaluation of all splits. wall and energy: the whole process, startup included.)")


if __name__ == "__main__":
    main()
