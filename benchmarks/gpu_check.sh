#!/usr/bin/env bash
# One prepared run on a CUDA machine (from the checkout, its python3): the CUDA checks, then the figures.
#   benchmarks/gpu_check.sh quick   # ~2 min: CUDA tests (if pytest is there), a bf16 run, the engine loop
#   benchmarks/gpu_check.sh full    # + DomainBed comparison (3 x 100 steps), settings, demo with NVML
# Everything is printed and, when $OUT is set, written there.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 PYTHONWARNINGS=ignore
OUT=${OUT:-$(mktemp -d)}
mode=${1:-quick}
PY=${PYTHON:-python3}
log() { echo "=== $*"; }
log "machine"
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv 2>&1 | head -3
$PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name(0))"
if $PY -c "import pytest" 2>/dev/null; then
  log "CUDA tests (sync-free step loop, precision flags, evaluation, meter)"
  timeout 150 $PY -m pytest -q -p no:cacheprovider -m "slow or not slow" tests/test_engine_efficiency.py \
    tests/test_numerics.py tests/test_evaluation.py tests/energy/test_job_energy.py 2>&1 | tail -15
else
  log "no pytest here: the CUDA step loop checked directly"
  timeout 120 $PY - <<'PY'
import tempfile, torch
from pathlib import Path
from dagrad.run.engine import Trainer
from dagrad.run.epochs import StepSums
from dagrad.config.experiment import load_experiment
means, steps = StepSums.means, Trainer._train_steps
def read(self):
    torch.cuda.set_sync_debug_mode("default")
    try: return means(self)
    finally: torch.cuda.set_sync_debug_mode("error")
def strict(self, epoch):
    torch.cuda.set_sync_debug_mode("error")
    try: return steps(self, epoch)
    finally: torch.cuda.set_sync_debug_mode("default")
StepSums.means, Trainer._train_steps = read, strict
for algorithm in ("erm", "coral", "dann", "dann_grl"):
    for precision in ("torch_default", "bf16"):
        exp = load_experiment(["demo"], ["device=cuda", "epochs=2", "steps_per_epoch=5", f"algorithm.name={algorithm}",
                                         f"precision={precision}", "energy.count_flops=false"])
        path = Trainer(exp, Path(tempfile.mkdtemp()) / "r", progress=False).run()
        print(algorithm, precision, "no sync in the step loop; records", path)
PY
fi
log "a bf16 run with channels_last and cudnn.benchmark, metered by NVML"
timeout 90 $PY -m dagrad train -c demo device=cuda epochs=3 precision=bf16 channels_last=true deterministic=false \
  energy.backend=nvml energy.idle_baseline_s=2 --quiet --out "$OUT/bf16-run" 2>&1 | tail -3
$PY - "$OUT/bf16-run/records.jsonl" <<'PY'
import json, sys
lines = [json.loads(x) for x in open(sys.argv[1])]
h, s = lines[0], lines[-1]
print("numerics:", json.dumps(h["numerics"]["cuda"]), "| meter GPUs:", [g["name"] for g in h["meter"]["backends"]["nvml"]["gpus"]])
print("idle power:", {k: round(v["watts"] or 0, 1) for k, v in h["idle_power"]["components"].items()}, "W")
for r in lines[1:-1]:
    print(f"epoch {r['epoch']}: train {r['energy']['train']['seconds']:.2f} s {r['energy']['train']['joules']:.0f} J,"
          f" eval {r['energy']['eval']['seconds']:.2f} s, other {r['energy']['other']['seconds']:.2f} s")
print(f"run {s['run_energy']['seconds']:.1f} s {s['run_energy']['joules']:.0f} J, other at the end {s['other_energy']['seconds']:.2f} s")
PY
log "engine loop and evaluation vs DomainBed-style loops (digits CNN)"
timeout 150 $PY benchmarks/engine_overhead.py --device cuda --steps 50 --repeats 5 --sections train,eval,startup \
  --startup-repeats 2 2>&1 | tee "$OUT/engine_overhead.txt"
if [ "$mode" = full ]; then
  log "settings"
  timeout 300 $PY benchmarks/engine_overhead.py --device cuda --steps 50 --repeats 4 --sections settings 2>&1 \
    | tee "$OUT/settings.txt"
  log "whole dagrad train vs DomainBed-style script, PACS layout, ResNet-18"
  timeout 420 $PY benchmarks/domainbed_comparison.py --device cuda 2>&1 | tee "$OUT/domainbed_comparison.txt"
  log "demo on the GPU, NVML energy"
  timeout 420 $PY -m dagrad demo device=cuda energy.backend=nvml 2>&1 | tail -25 | tee "$OUT/demo.txt"
fi
log "done; outputs in $OUT"
