"""Does a busy machine change the energy verdict? The demo's three settings, quiet and beside busy loops.

For one trial seed (or `--seeds N`, each seed's settings side by side, figures their means), trains the
demo's full training, GradSamp (tensor) and its skip control, each in a
fresh `dagrad train` process, first on the machine as it is ("quiet"), then beside `--busy` busy-loop
processes that this script starts itself ("busy"; each loop ends by itself after `--busy-limit` seconds
and is stopped by its PID as soon as the busy runs finish). For each setting it prints the estimated
training energy busy / quiet, the other processes' CPU share each run recorded, and GradSamp's (and the
control's) training-energy saving next to its saving in updates.

`--wait-policy both` repeats everything with OpenMP threads spinning (ACTIVE) and waiting (PASSIVE, dagrad's
default), each set before torch starts in the training process. Targets (issue 27): busy / quiet within
0.8-1.25; energy saving within 5 points of the update saving, quiet and busy. Run it on an otherwise quiet
machine; `--epochs 2 --steps 3` checks that the script works in a few seconds.

    .venv/bin/python benchmarks/contention.py
    .venv/bin/python benchmarks/contention.py --wait-policy both --threads 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagrad.analysis.contention import other_cpu_pct
from dagrad.analysis.runs import read_run

SETTINGS = (("full", "none"), ("gradsamp", "tensor"), ("control", "skip"))
BUSY_LOOP = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


def train(out: Path, sampler: str, args: argparse.Namespace, policy: str | None, seed: int) -> Path:
    """One demo setting in its own process (so OMP_WAIT_POLICY is read when its torch starts)."""
    env = dict(os.environ)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    else:
        env.pop("OMP_WAIT_POLICY", None)  # dagrad's default
    overrides = [f"gradsamp.sampler={sampler}", f"trial_seed={seed}"]
    overrides += [f"epochs={args.epochs}"] if args.epochs is not None else []
    overrides += [f"steps_per_epoch={args.steps}"] if args.steps is not None else []
    cmd = [sys.executable, "-m", "dagrad", "--threads", str(args.threads), "train", "-c", "demo", *overrides,
           "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"contention: `{' '.join(cmd)}` failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return out / "records.jsonl"


def figures(records: Path) -> dict:
    """Training energy (J, summed over epochs), its sources, updates, wall seconds and contention of a run."""
    run = read_run(records.parent)
    trains = [(e.get("energy") or {}).get("train") or {} for e in run.epochs]
    joules = [t.get("joules") for t in trains]
    return {"train_J": None if any(j is None for j in joules) else sum(joules),
            "sources": sorted({s for t in trains for s in t.get("sources", [])}),
            "updates": (run.summary or {}).get("updates", run.epochs[-1]["updates"] if run.epochs else 0),
            "seconds": sum(float(t.get("seconds") or 0.0) for t in trains),
            "other_cpu_pct": other_cpu_pct(run.epochs)}


def mean_figures(runs: list[dict]) -> dict:
    """The figures of several trial seeds' runs of one setting: means (energy unknown if any run's is)."""
    joules = [r["train_J"] for r in runs]
    shares = [r["other_cpu_pct"] for r in runs if r["other_cpu_pct"] is not None and r["other_cpu_pct"] == r["other_cpu_pct"]]
    return {"train_J": None if any(j is None for j in joules) else sum(joules) / len(joules),
            "sources": sorted({s for r in runs for s in r["sources"]}),
            "updates": sum(r["updates"] for r in runs) / len(runs),
            "seconds": sum(r["seconds"] for r in runs) / len(runs),
            "other_cpu_pct": sum(shares) / len(shares) if shares else None}


def start_busy(n: int, limit: float) -> list[subprocess.Popen]:
    """`n` busy-loop processes, each ending by itself after `limit` seconds at the latest."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(limit=limit)]) for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    """Stop the busy loops this script started, by their PIDs."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def measure(root: Path, args: argparse.Namespace, policy: str | None) -> dict[str, dict[str, dict]]:
    """{condition: {setting: figures}} for quiet, then busy."""
    out: dict[str, dict[str, dict]] = {}
    for condition in ("quiet", "busy"):
        procs = start_busy(args.busy, args.busy_limit) if condition == "busy" else []
        try:
            if procs:
                time.sleep(1.0)  # the loops are spinning before the first run starts
            runs: dict[str, list[dict]] = {label: [] for label, _ in SETTINGS}
            for seed in range(args.seed, args.seed + args.seeds):  # a seed's settings side by side in time
                for label, sampler in SETTINGS:
                    runs[label].append(figures(train(root / condition / f"{label}-seed{seed}", sampler, args,
                                                     policy, seed)))
            out[condition] = {label: mean_figures(found) for label, found in runs.items()}
        finally:
            stop_busy(procs)
    return out


def pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.0f} %"


def report(name: str, results: dict[str, dict[str, dict]]) -> None:
    print(f"\n## OpenMP wait policy: {name}")
    print(f"{'setting':10} {'quiet J':>9} {'busy J':>9} {'busy/quiet':>10} {'quiet s':>8} {'busy s':>8} "
          f"{'other CPU quiet':>15} {'other CPU busy':>14}")
    for label, _ in SETTINGS:
        q, b = results["quiet"][label], results["busy"][label]
        ratio = b["train_J"] / q["train_J"] if q["train_J"] and b["train_J"] is not None else float("nan")
        print(f"{label:10} {q['train_J']:9.1f} {b['train_J']:9.1f} {ratio:10.2f} {q['seconds']:8.1f} "
              f"{b['seconds']:8.1f} {pct(q['other_cpu_pct']):>15} {pct(b['other_cpu_pct']):>14}")
    for condition in ("quiet", "busy"):
        full = results[condition]["full"]
        for label in ("gradsamp", "control"):
            arm = results[condition][label]
            energy = 100 * (1 - arm["train_J"] / full["train_J"]) if full["train_J"] else float("nan")
            updates = 100 * (1 - arm["updates"] / full["updates"]) if full["updates"] else float("nan")
            print(f"{condition:5} {label:8}: training-energy saving {energy:5.1f} %, update saving {updates:5.1f} % "
                  f"(difference {energy - updates:+.1f} points)")
    sources = sorted({s for c in results.values() for f in c.values() for s in f["sources"]})
    print(f"energy sources: {', '.join(sources)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="(first) trial seed (default 0)")
    ap.add_argument("--seeds", type=int, default=1, help="trial seeds, each run side by side; figures are "
                    "their means (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training process (default 1)")
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes beside the busy runs (default 2)")
    ap.add_argument("--busy-limit", type=float, default=3600.0,
                    help="seconds after which a busy loop ends by itself, should this script die (default 3600)")
    ap.add_argument("--epochs", type=int, help="override the demo's epochs (a quick check of the script)")
    ap.add_argument("--steps", type=int, help="override the demo's steps per epoch (a quick check)")
    ap.add_argument("--wait-policy", choices=("default", "PASSIVE", "ACTIVE", "both"), default="default",
                    help="OpenMP wait policy of the training processes (default: dagrad's, PASSIVE unless "
                         "OMP_WAIT_POLICY is set; both: ACTIVE then PASSIVE)")
    ap.add_argument("--out", type=Path, help="keep the runs in this folder (default: a temporary one)")
    args = ap.parse_args()
    policies = {"default": [None], "PASSIVE": ["PASSIVE"], "ACTIVE": ["ACTIVE"], "both": ["ACTIVE", "PASSIVE"]}
    seeds = f"trial seeds {args.seed}-{args.seed + args.seeds - 1} (means)" if args.seeds > 1 else f"trial seed {args.seed}"
    print(f"demo settings, {seeds}, {args.threads} thread(s), busy = beside {args.busy} busy loops; "
          f"{os.cpu_count()} logical CPUs")
    with tempfile.TemporaryDirectory(prefix="dagrad-contention-") as tmp:
        root = args.out or Path(tmp)
        for policy in policies[args.wait_policy]:
            name = policy or f"dagrad default ({os.environ.get('OMP_WAIT_POLICY') or 'PASSIVE'})"
            report(name, measure(root / (policy or "default"), args, policy or os.environ.get("OMP_WAIT_POLICY")))


if __name__ == "__main__":
    main()
