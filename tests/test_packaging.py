"""`python -m build` makes a wheel and an sdist from pyproject.toml alone; the wheel, installed into a
fresh venv without network (--no-deps --no-index, torch and the other requirements reused from the
environment running the tests), runs `dagrad demo --seeds 1` from outside the source tree."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "epochs=4", "steps_per_epoch=3",
        "data.eval_batch_size=512"]


def _run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kwargs)
    assert out.returncode == 0, f"{cmd}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_wheel_installs_offline_and_runs_the_demo(tmp_path):
    pytest.importorskip("build")
    source = tmp_path / "src"  # a clean copy: the build writes *.egg-info next to the sources
    tracked = _run("git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard").stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source)
    wheel, = dist.glob("dagrad-*.whl")
    sdist, = dist.glob("dagrad-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dagrad/configs/demo.yaml" in names and "dagrad/configs/experiments/pacs.yaml" in names
    assert "dagrad/api/__init__.py" in names and "dagrad/tracking/__init__.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    for extra in ("slurm", "tracking", "data", "zeus", "codecarbon", "wilds", "energy", "dev"):
        assert f"Provides-Extra: {extra}" in metadata
    assert 'nvidia-ml-py>=12; extra == "energy"' in metadata and 'nvidia-ml-py' not in metadata.split(
        'extra == "energy"')[1]
    assert any(n.endswith("pyproject.toml") for n in tarfile.open(sdist).getnames())

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # the test environment's packages (torch, ...) behind the venv's own: a plain path, its .pth files unread
    Path(purelib, "test-env-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir", wheel)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    where = _run(python, "-c", "import dagrad, dagrad.api; print(dagrad.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.strip().startswith(str(venv))
    out = _run(venv / "bin" / "dagrad", "demo", "--seeds", "1", "--quiet", "--out", tmp_path / "demo", *TINY,
               cwd=tmp_path, env=env)
    assert "| ERM | full |" in out.stdout and "| ERM | tensor |" in out.stdout and "| ERM | skip |" in out.stdout
    assert (tmp_path / "demo" / "table.md").is_file()
    assert (tmp_path / "demo" / "rotated_digits-pareto.png").is_file()
