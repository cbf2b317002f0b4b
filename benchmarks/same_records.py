"""Do two runs' records say the same thing, energy and timing aside? For refactors that must not change
what a run records (issue 20): train the same tiny configs on the commit before and after, then

    python benchmarks/same_records.py BEFORE_FOLDER AFTER_FOLDER

The runs issue 20 compares (full training, GradSamp, its skip control, CORAL and DANN with GradSamp, and SWAD
over a sampled epoch), each trained into FOLDER/<name> from each commit's tree:

    S="gradsamp.schedule_options.start=2 gradsamp.schedule_options.every=1"
    dagrad --threads 1 train -c demo epochs=3 steps_per_epoch=3 --out FOLDER/demo
    dagrad --threads 1 train -c demo epochs=3 steps_per_epoch=3 gradsamp.sampler=tensor $S --out FOLDER/gradsamp
    dagrad --threads 1 train -c demo epochs=3 steps_per_epoch=3 gradsamp.sampler=skip $S --out FOLDER/skip
    dagrad --threads 1 train -c demo -c algorithms/coral epochs=3 steps_per_epoch=3 gradsamp.sampler=tensor $S \
        --out FOLDER/coral
    dagrad --threads 1 train -c demo -c algorithms/dann epochs=3 steps_per_epoch=3 gradsamp.sampler=ema $S \
        --out FOLDER/dann
    dagrad --threads 1 train -c demo epochs=3 steps_per_epoch=3 averaging.name=swad gradsamp.sampler=tensor $S \
        --out FOLDER/swad

compares every record file found under BEFORE with the one at the same place under AFTER. Metrics, epoch
kinds, updates, sampler statistics, SWAD's state and the headers' configs must be equal; readings of
energy, seconds, the machine and its load are left out. Exit status 0 when all are equal, 1 otherwise
(each difference printed), 2 on bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: keys whose values are measurements of this machine or this moment, not of the run's computation
MEASURED = frozenset({
    "energy", "seconds", "idle_power", "meter", "hardware", "compute", "conditions", "versions", "loading",
    "train_energy", "eval_energy", "other_energy", "averaging_energy", "final_eval_energy", "run_energy",
    "setup_energy", "wall_seconds", "timing", "started", "finished", "created",
})


def without_measurements(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_measurements(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [without_measurements(v) for v in value]
    return value


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key in b else 'before'}")
            else:
                out += differences(a[key], b[key], f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def records(path: Path) -> list[dict]:
    return [without_measurements(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not all(Path(a).is_dir() for a in argv):
        print("usage: same_records.py BEFORE_FOLDER AFTER_FOLDER (two folders holding runs)", file=sys.stderr)
        return 2
    before, after = Path(argv[0]), Path(argv[1])
    found = sorted(before.rglob("records.jsonl"))
    if not found:
        print(f"no records.jsonl below {before}", file=sys.stderr)
        return 2
    failed = 0
    for path in found:
        twin = after / path.relative_to(before)
        if not twin.is_file():
            print(f"{twin}: missing")
            failed += 1
            continue
        diffs = differences(records(path), records(twin))
        print(f"{path.relative_to(before)}: {'same' if not diffs else f'{len(diffs)} differences'}")
        for line in diffs[:20]:
            print("   ", line)
        failed += bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
