"""dagrad.run.distributed's pieces on a real two-process gloo group: identical starts, gradient averaging before
the optimizer step (a gradient missing on one rank counts as zero, one missing everywhere stays missing),
buffer averaging, a GradSamp draw that differs between ranks settled from rank 0, and rank 0's run-folder
error raised on every rank; and the sharded evaluation loader's batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dagrad.datasets.loading import EvalLoader
from dagrad.run.distributed import Distributed

HERE = Path(__file__).parent


@pytest.mark.slow
def test_two_ranks_agree_on_gradients_buffers_draws_and_errors(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "WORLD_SIZE": "2", "DAGRAD_DIST_TIMEOUT_S": "60", "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, str(HERE / "rank_checks.py"), str(tmp_path / "empty")],
                              env={**base, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    seen = [json.loads(next(line for line in o.splitlines() if line.startswith("RESULT "))[7:]) for o in outputs]
    assert seen[0]["start"] == seen[1]["start"]
    # d(sum a(x))/dW = column sums of x: 4 * (rank + 1) per entry; averaged over ranks: 4 * 1.5 = 6
    assert seen[0]["a_step"] == seen[1]["a_step"] == [[6.0] * 3] * 2
    assert seen[0]["b_grad"] == seen[1]["b_grad"] == [[2.0] * 3] * 2  # rank 0's 4, rank 1's missing 0: mean 2
    assert seen[0]["c_grad_is_none"] and seen[1]["c_grad_is_none"]
    assert seen[0]["bn_mean"] == seen[1]["bn_mean"] == [0.5, 0.5]
    assert seen[0]["settled"] == seen[1]["settled"] == ["sampled", None, False]
    assert seen[0]["after"] == seen[1]["after"] and seen[1]["opt_state"] == seen[0]["opt_state"] == 0
    message = (f"CheckpointError: cannot resume: {tmp_path / 'empty'} holds no run (no records.jsonl or "
               f"checkpoint.pt); start it without --resume")
    assert seen[0]["run_folder"] == seen[1]["run_folder"] == message


class FakeRanks(Distributed):
    """A rank of `world` whose sums are done by the test (no process group)."""

    def __init__(self, rank, world):
        super().__init__(rank, world)

    def sum_(self, tensor):
        return tensor


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_evaluation_batches_cover_every_example_once(world):
    splits = {"a": list(range(10)), "b": list(range(7)), "c": list(range(3))}
    single = EvalLoader(splits, 4, lambda dataset, batches: batches)
    shards = [EvalLoader(splits, 4, lambda dataset, batches: batches, FakeRanks(r, world)) for r in range(world)]
    together = sorted(b for shard in shards for b in shard.batches)
    assert together == sorted(single.batches)  # the same batches, none padded or repeated
    for shard in shards:
        assert all(shard.owners[k] == shard.batches[k][0][0] for k in range(len(shard)))
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
