"""Sweep workers on a GPU node: each worker slot gets its own GPU through CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from dagrad.energy.rapl import SHARED_NODE_ENV
from dagrad.launch.runner import ProcessLauncher, Progress, visible_gpus
from dagrad.plugins import NO_PLUGINS

# stands in for `python -m dagrad.launch.worker FOLDER --threads N`: notes when it ran and with which GPU
FAKE_PYTHON = """#!{python}
import json, os, sys, time
folder = sys.argv[3]
start = time.time()
time.sleep(0.4)
with open(os.path.join(folder, "seen.json"), "w") as fh:
    json.dump({{"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "shared": os.environ.get("{shared}"),
               "start": start, "end": time.time()}}, fh)
"""


def _launch(tmp_path: Path, workers: int, gpus: list[str], n_jobs: int) -> list[dict]:
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable, shared=SHARED_NODE_ENV))
    fake.chmod(0o755)
    jobs = []
    for i in range(n_jobs):
        folder = tmp_path / f"job{i}"
        folder.mkdir()
        jobs.append(SimpleNamespace(id=f"job{i}", name=f"job {i}", folder=folder, log=folder / "log.txt",
                                    plugins=NO_PLUGINS))
    launcher = ProcessLauncher(workers, threads=1, poll_seconds=0.02, python=str(fake), gpus=gpus)
    results = launcher.launch(jobs, Progress(n_jobs, 0, stream=None))
    assert all(r.status == "done" for r in results), [r.job.log.read_text() for r in results]
    return [{**json.loads((job.folder / "seen.json").read_text()), "log": job.log.read_text()} for job in jobs]


def test_concurrent_workers_get_distinct_gpus_round_robin(tmp_path):
    seen = _launch(tmp_path, workers=2, gpus=["0", "1"], n_jobs=4)
    assert {s["gpu"] for s in seen} == {"0", "1"}
    for a in seen:
        for b in seen:
            overlap = a is not b and a["start"] < b["end"] and b["start"] < a["end"]
            assert not overlap or a["gpu"] != b["gpu"], seen  # two jobs at once never share a GPU
    assert seen[0]["gpu"] == "0" and seen[1]["gpu"] == "1"
    assert all(s["shared"] == "2" for s in seen)  # the node is shared: RAPL attributes by CPU share
    assert "CUDA_VISIBLE_DEVICES=0" in seen[0]["log"]


def test_more_workers_than_gpus_take_turns(tmp_path):
    launcher = ProcessLauncher(3, threads=1, gpus=["5", "7"])
    assert [launcher.worker_env(slot)["CUDA_VISIBLE_DEVICES"] for slot in range(3)] == ["5", "7", "5"]


def test_no_gpu_leaves_the_environment_alone(monkeypatch):
    monkeypatch.delenv(SHARED_NODE_ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = ProcessLauncher(1, threads=1, gpus=[]).worker_env(0)
    assert "CUDA_VISIBLE_DEVICES" not in env and SHARED_NODE_ENV not in env  # one worker: the node is its own


def test_visible_gpus_follow_the_launchers_own_list():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-abc,1"}) == ["GPU-abc", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]  # CUDA stops at the first invalid entry
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
