"""One job on two processes: `torchrun --standalone --nproc_per_node=2 -m dagrad train` with the gloo backend,
one thread each, on the digits CNN.

Every run here sets DAGRAD_DIST_CHECK=1, so the ranks compare parameter and buffer checksums after every
epoch and the job fails if they differ: a run that finishes had equal parameters on both ranks after every
epoch. It also fails when the ranks end training differently (SWAD's early stop). DAGRAD_DIST_TIMEOUT_S
bounds every collective, so a hang fails the test instead of stalling it.

The quick test (in the default suite) starts the two ranks itself, with the variables torchrun would
set (RANK, WORLD_SIZE, MASTER_ADDR, ...), sparing torchrun's own start-up; the slow ones use torchrun.

Tolerances of one rank against two: ERM's (and DANN's) loss is a mean over examples, so the averaged
gradient of two half batches is the full batch's, up to floating-point order: metrics agree within 1e-4
(loss) and one example (accuracy). CORAL's penalty is a function of the whole batch, computed per rank on
its half (as DistributedDataParallel would): the same objective only in expectation, so its accuracies
are held to 0.06 after a few short epochs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dagrad.run.engine import Trainer
from dagrad.run.training import train_run
from dagrad.run.evaluation import evaluate
from dagrad.config.experiment import load_experiment
from dagrad.records.files import read_records, split_run

TINY = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "data.eval_batch_size=64"]


def torchrun(out: Path, overrides: list[str], resume: bool = False, wait: bool = True, nproc: int = 2):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DAGRAD_DIST_TIMEOUT_S": "60", "DAGRAD_DIST_CHECK": "1",
           "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "dagrad", "--threads", "1", "train", *TINY, *overrides, "--out", str(out), "--quiet",
               *(["--resume"] if resume else [])]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    if not wait:
        return proc
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-4000:]
    return read_records(out / "records.jsonl"), output


def two_ranks(out: Path, overrides: list[str]) -> tuple[list[dict], str]:
    """Both ranks started as torchrun would start them (its environment variables), without torchrun."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {**os.environ, "OMP_NUM_THREADS": "1", "DAGRAD_DIST_TIMEOUT_S": "60", "DAGRAD_DIST_CHECK": "1",
            "PYTHONWARNINGS": "ignore", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2"}
    command = [sys.executable, "-m", "dagrad", "--threads", "1", "train", *TINY, *overrides, "--out", str(out),
               "--quiet"]
    procs = [subprocess.Popen(command, env={**base, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    return read_records(out / "records.jsonl"), outputs[0] + outputs[1]


def one_process(tmp_path: Path, overrides: list[str]) -> list[dict]:
    exp = load_experiment(None, [*TINY, *overrides])
    return read_records(train_run(exp, tmp_path / "single", progress=False))


def close(a: dict, b: dict, loss: float, acc: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        limit = acc if key.endswith("_acc") else loss
        assert abs(a[key] - b[key]) <= limit, (key, a[key], b[key])


def test_erm_on_two_ranks_trains_the_one_process_run(tmp_path):
    overrides = ["epochs=3", "steps_per_epoch=3"]
    lines, output = two_ranks(tmp_path / "two", overrides)
    header, epochs, summary = split_run(lines)
    assert header["distributed"]["world_size"] == 2 and header["distributed"]["checked_every_epoch"]
    assert header["distributed"]["energy"]["processes"] == 2
    assert output.count("OOD accuracy") == 1  # rank 0 speaks for the job
    single = split_run(one_process(tmp_path, overrides))[1]
    smallest = min(header["data"]["split_sizes"].values())
    for two, one in zip(epochs, single):
        close(two["metrics"], one["metrics"], loss=1e-4, acc=1.0 / smallest)
        assert abs(two["update_stats"]["loss"] - one["update_stats"]["loss"]) < 1e-4
        assert two["flops"]["train"] == one["flops"]["train"] and two["flops"]["eval"] == one["flops"]["eval"]
        assert two["energy"]["train"]["components"]["cpu"]["params"]["ranks"] == 2

    # sharded evaluation (every batch on one rank, float64 totals summed) equals one process's, exactly
    exp = load_experiment(None, [*TINY, *overrides])
    trainer = Trainer(exp, tmp_path / "eval", progress=False)
    state = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["algorithm"]
    trainer.algorithm.load_state_dict(state)
    metrics, _ = evaluate(trainer.algorithm, trainer.eval_loader, trainer.device)
    trainer.meter.close()
    assert metrics == epochs[-1]["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("name,overrides,loss,acc", [
    ("coral", ["algorithm.name=coral", "epochs=4", "steps_per_epoch=4"], 0.1, 0.06),
    ("dann_gp", ["algorithm.name=dann", "algorithm.hparams.grad_penalty=0.5", "epochs=4", "steps_per_epoch=4"],
     1e-4, None),
    ("sampled", ["epochs=4", "steps_per_epoch=3", "gradsamp.sampler=tensor", "gradsamp.schedule=periodic",
                 "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2", "gradsamp.guard=true"], 1e-4,
     None),
])
def test_algorithms_on_two_ranks(tmp_path, name, overrides, loss, acc):
    header, epochs, summary = split_run(torchrun(tmp_path / "two", overrides)[0])
    single = split_run(one_process(tmp_path, overrides))[1]
    acc = acc if acc is not None else 1.0 / min(header["data"]["split_sizes"].values())
    assert [e["kind"] for e in epochs] == [e["kind"] for e in single]
    for two, one in zip(epochs, single):
        close(two["metrics"], one["metrics"], loss=loss, acc=acc)
    if name == "sampled":
        sampled = [e for e in epochs if e["kind"] == "sampled"]
        assert sampled and all(e["sampler_stats"]["ranks_agreed"] for e in sampled)
        assert sampled[0]["sampler_stats"]["guard"] == "accepted"
    if name == "dann_gp":
        assert all("grad_penalty" in e["update_stats"] for e in epochs)


@pytest.mark.slow
def test_swad_stops_at_the_same_epoch_on_both_ranks(tmp_path):
    overrides = ["epochs=10", "steps_per_epoch=3", "averaging.name=swad", "algorithm.hparams.lr=0.03",
                 "averaging.options.n_converge=2", "averaging.options.n_tolerance=2",
                 "averaging.options.tolerance_ratio=0.0"]
    header, epochs, summary = split_run(torchrun(tmp_path / "two", overrides)[0])
    single_header, single, single_summary = split_run(one_process(tmp_path, overrides))
    assert summary["stopped_early"] and single_summary["stopped_early"]
    assert len(epochs) == len(single) < 10  # the job ran only because both ranks stopped after the same epoch
    assert summary["reported"] == "averaged"
    close(summary["metrics"], single_summary["metrics"], loss=1e-4,
          acc=1.0 / min(header["data"]["split_sizes"].values()))


def computed(lines: list[dict]) -> list[dict]:
    keep = ("type", "epoch", "step", "updates", "kind", "fallback", "metrics", "averaged_metrics", "update_stats",
            "sampler_stats", "averager", "stopped_early", "reported")
    return [{k: v for k, v in line.items() if k in keep} for line in lines]


@pytest.mark.slow
def test_kill_and_resume_give_the_same_records(tmp_path):
    overrides = ["epochs=4", "steps_per_epoch=40", "gradsamp.sampler=tensor", "gradsamp.schedule=periodic",
                 "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2"]
    whole = torchrun(tmp_path / "whole", overrides)[0]
    proc = torchrun(tmp_path / "cut", overrides, wait=False)
    records = tmp_path / "cut" / "records.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if records.exists() and sum(json.loads(x)["type"] == "epoch" for x in records.read_text().splitlines()) >= 1:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
    proc.wait()
    cut = read_records(records)
    assert 1 <= sum(r["type"] == "epoch" for r in cut) < 4
    resumed, output = torchrun(tmp_path / "cut", overrides, resume=True)
    assert "resuming at epoch" in output
    assert computed(resumed) == computed(whole)
