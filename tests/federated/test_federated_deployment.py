"""The deployment runtime with Flower's own commands on 127.0.0.1: one SuperLink, two SuperNodes (one per
client), `flwr run` of the App folder dagrad writes; two rounds, then every process stopped by its id."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagrad.records.files import read_records

pytestmark = pytest.mark.slow  # every message starts a fresh ClientApp process: minutes on a small CPU
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(processes: list[subprocess.Popen]) -> None:
    """Each started process and whatever it started, ended by id."""
    try:
        import psutil
    except ImportError:
        psutil = None
    family = []
    for p in processes:
        if psutil is not None:
            try:
                family += psutil.Process(p.pid).children(recursive=True)
            except psutil.Error:
                pass
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if psutil is not None:
        _, alive = psutil.wait_procs(family, timeout=20)
        for child in alive:
            child.kill()


def test_two_rounds_on_a_superlink_and_two_supernodes(tmp_path):
    if shutil.which("flower-superlink", path=str(BIN)) is None:
        pytest.skip("Flower's commands are not installed beside this Python")
    link, nodes = _free_port(), [_free_port(), _free_port()]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "FLWR_HOME": str(tmp_path / "home"),
           "FLWR_TELEMETRY_ENABLED": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n[superlink.local]\naddress = "127.0.0.1:{link}"\ninsecure = true\n')
    app, out = tmp_path / "app", tmp_path / "run"
    subprocess.run([sys.executable, "-m", "dagrad.federated.deployment", "-c", "federated/digits",
                    "federated.clients=2", "epochs=2", "federated.local_steps=1", "network.options.width=8",
                    "data.batch_size=8", "energy.backend=estimate", "--app", str(app), "--out", str(out)],
                   env=env, check=True, capture_output=True)
    started: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        started.append(subprocess.Popen([str(BIN / "flower-superlink"), "--insecure", "--port", str(link),
                                         "--disable-runtime-dependency-installation"], env=env,
                                        stdout=open(logs / "link.log", "w"), stderr=subprocess.STDOUT))
        time.sleep(5)
        for k, port in enumerate(nodes):
            started.append(subprocess.Popen([str(BIN / "flower-supernode"), "--insecure", "--superlink",
                                             f"127.0.0.1:{link}", "--port", str(port), "--node-config",
                                             f"partition-id={k} num-partitions=2"], env=env,
                                            stdout=open(logs / f"node{k}.log", "w"), stderr=subprocess.STDOUT))
        done = subprocess.run([str(BIN / "flwr"), "run", str(app), "local", "--stream"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "records.jsonl").is_file():
            time.sleep(1)
        lines = read_records(out / "records.jsonl")
    finally:
        _stop(started)
    assert [line["type"] for line in lines] == ["header", "epoch", "epoch", "summary"]
    assert lines[0]["config"]["federated"]["runtime"] == "deployment"
    for line in lines[1:3]:
        assert [c["client"] for c in line["federated"]["clients"]] == [0, 1]
        assert all(c["bytes"]["sent"] > 0 and c["energy"]["train"]["joules"] > 0 for c in line["federated"]["clients"])
    assert all(p.poll() is not None for p in started)
