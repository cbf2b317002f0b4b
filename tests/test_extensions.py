"""One plugin file (examples/my_extensions.py) adds a sampler, a schedule, a dataset, an energy backend, a
network and a launcher without touching dagrad/: a sweep uses all six, the report pairs the plugin sampler
with its skip control, and `dagrad list` / `dagrad data list` describe them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dagrad.analysis.tables import build
from dagrad.analysis.runs import read_runs
from dagrad.cli import main

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "my_extensions.py"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    sweep = root / "sweep.yaml"
    schedule = {"schedule": "fibonacci", "schedule_options": {"offset": 0}}
    sweep.write_text(yaml.safe_dump({"name": "ext", "base": [{
        "data": {"name": "tiny_shapes", "root": str(root / "data"), "test_envs": [0], "batch_size": 4,
                 "options": {"per_class": 6}},
        "network": {"name": "tiny_mlp", "options": {"hidden": 16}},
        "energy": {"backend": "constant_power", "backends": {"constant_power": {"watts": 30.0}}},
        "epochs": 6, "steps_per_epoch": 3}],
        "grid": {"trial_seeds": 2, "gradsamp": {"none": {"sampler": "none"},
                                                "laplace": {"sampler": "laplace", **schedule},
                                                "skip": {"sampler": "skip", **schedule}}}}))
    code = main(["sweep", "--plugin", str(PLUGIN), "-c", str(sweep), "--out", str(root / "out"),
                 "--launcher", "shuffled", "--threads", "1"])
    return code, root / "out"


def test_a_sweep_runs_every_plugin_component(swept):
    code, out = swept
    assert code == 0
    runs = read_runs(out)
    assert len(runs) == 6 and all(r.complete for r in runs)
    laplace = [r for r in runs if r.config["gradsamp"]["sampler"] == "laplace"]
    assert [e["kind"] for e in laplace[0].epochs] == ["train", "train", "sampled", "sampled", "train", "sampled"]
    assert all(e["energy"]["train"]["sources"] == ["estimated:constant-power"] for r in runs for e in r.epochs)
    first = laplace[0].epochs[0]["energy"]["train"]
    assert first["joules"] == pytest.approx(30.0 * first["seconds"])
    assert laplace[0].header["data"]["environments"] == ["dark", "dim", "light"]


def test_the_report_pairs_the_plugin_sampler_with_its_skip_control(swept, capsys):
    _, out = swept
    _, summary = build(read_runs(out), "last")
    row = summary[summary.sampler == "laplace"].iloc[0]
    skip = summary[summary.sampler == "skip"].iloc[0]
    assert row.control_key == skip.config_key and int(row.delta_control_n) == 2
    assert main(["report", str(out), "--selection", "last"]) == 0  # records only: no plugin needed
    assert "laplace vs its equal-energy control" in capsys.readouterr().out


def test_list_and_data_list_describe_the_plugin_components(capsys):
    assert main(["list", "--plugin", str(PLUGIN)]) == 0
    listing = capsys.readouterr().out
    for kind, name in (("samplers", "laplace"), ("schedules", "fibonacci"), ("datasets", "tiny_shapes"),
                       ("energy_backends", "constant_power"), ("networks", "tiny_mlp"), ("launchers", "shuffled")):
        line = next(line for line in listing.splitlines() if line.startswith(kind + ":"))
        assert name in line.split(":", 1)[1].replace(" ", "").split(","), (kind, line)
    assert main(["list", "samplers", "--plugin", str(PLUGIN)]) == 0
    samplers = capsys.readouterr().out
    assert "laplace: Every element of a tensor's step ~ Laplace" in samplers and "[from " in samplers
    assert "scale = 1.0 (a finite number >= 0)" in samplers
    assert main(["data", "list", "--plugin", str(PLUGIN)]) == 0
    data = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny_shapes")][0]
    assert "circles and squares on dark, dim and light backgrounds" in data
    assert "environments: dark, dim, light" in data and "options: per_class=12, seed=0" in data
    assert "[from " in data and "embedded" not in data


def test_the_examples_import_only_the_public_extension_surface():
    import ast
    import subprocess
    import sys

    import dagrad.extend

    for example in (PLUGIN, PLUGIN.with_name("my_algorithm.py")):
        tree = ast.parse(example.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert {m for m in names if m.startswith("dagrad")} <= {"dagrad", "dagrad.extend"}, example.name
    for name in dagrad.extend.__all__:  # every exported name resolves, the launcher ones on first use
        assert getattr(dagrad.extend, name) is not None
    from dagrad.launch.runner import Progress

    assert dagrad.extend.Progress is Progress and "Progress" in dir(dagrad.extend)
    code = "import sys, dagrad.extend; print(any(m.startswith('dagrad.launch') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # importing the surface does not import the sweep machinery
