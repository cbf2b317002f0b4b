"""How long indexing a DomainNet-sized folder tree takes, first (directory listings) and cached.

Builds 6 environments x 345 classes x 290 empty .jpg files (600,300 files) in a temporary directory,
ages the directories' mtimes past the cache's racy window (as a dataset unpacked earlier would be),
then times dagrad's DomainBed-layout index twice: with an empty cache and from the cache.
Targets: first index < 30 s, cached index < 3 s.

    .venv/bin/python benchmarks/index_scale.py [--files-per-class 290] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dagrad.config.schema import DataConfig
from dagrad.datasets.folders import domainbed

ENVS = ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]


def make_tree(root: Path, classes: int, per_class: int) -> int:
    n = 0
    for env in ENVS:
        for c in range(classes):
            d = root / "domain_net" / env / f"class_{c:03d}"
            d.mkdir(parents=True)
            for k in range(per_class):
                os.close(os.open(d / f"{env}_{c:03d}_{k:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
                n += 1
    then = time.time() - 3600
    for path, _, _ in os.walk(root):
        os.utime(path, (then, then))
    return n


def timed_build(cfg: DataConfig) -> tuple[float, int, bool, float]:
    """Seconds to build the suite, images, whether the index came from the cache, MiB the index holds."""
    start = time.perf_counter()
    suite = domainbed(cfg)
    seconds = time.perf_counter() - start
    held = sum(len(e.files.blob) + e.files.offsets.nbytes + e.files.dir_of.nbytes + e.labels.nbytes
               for e in suite.environments)
    return seconds, sum(len(e) for e in suite.environments), suite.notes["index_from_cache"], held / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=345)
    parser.add_argument("--files-per-class", type=int, default=290)
    parser.add_argument("--keep", type=Path, default=None, help="build the tree here and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="dagrad-index-bench-"))
    os.environ["DAGRAD_CACHE_DIR"] = str(base / "index-cache")
    try:
        start = time.perf_counter()
        n = make_tree(base, args.classes, args.files_per_class)
        print(f"created {n:,} empty files in {time.perf_counter() - start:.1f} s (not part of the index time)")
        cfg = DataConfig(name="domain_net", root=str(base), test_envs=[0])
        for label in ("first index (scandir)", "cached index"):
            seconds, count, cached, peak = timed_build(cfg)
            print(f"{label:24s} {seconds:6.2f} s  {count:,} images  from_cache={cached}  index holds {peak:.1f} MiB")
        cache_file = next((base / "index-cache").glob("*.npz"))
        print(f"cache file {cache_file.stat().st_size / 2**20:.1f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
