"""User algorithms from a file: the README's example runs under GradSamp and SWAD without engine changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrad.cli import main
from dagrad.config.experiment import load_experiment as load_config
from dagrad.utils.errors import ConfigError
from dagrad.plugins import ALL_PLUGINS
from dagrad.records.files import read_records, split_run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_algorithm.py"
TINY = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "steps_per_epoch=3"]


def test_example_algorithm_under_gradsamp_and_swad(tmp_path):
    code = main(["train", "--quiet", "--plugin", str(EXAMPLE), "algorithm.name=my_mixup", "epochs=5", *TINY,
                 "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2", "averaging.name=swad",
                 "averaging.options.n_converge=2", "averaging.options.n_tolerance=2", "averaging.options.early_stop=false",
                 "--out", str(tmp_path / "run")])
    assert code == 0
    header, epochs, summary = split_run(read_records(tmp_path / "run" / "records.jsonl"))
    assert header["config"]["plugins"] == [str(EXAMPLE)]  # recorded, so sweep workers import it too
    assert header["hparams"]["mixup_alpha"] == 0.2
    assert [r["kind"] for r in epochs] == ["train", "train", "sampled", "train", "sampled"]
    assert summary["reported"] == "averaged"


def test_plugin_errors_name_the_entry(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\[0\]: no file"):
        load_config(None, [f"plugins=[{tmp_path / 'missing.py'}]"], plugins=ALL_PLUGINS)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('oops')\n")
    with pytest.raises(ConfigError, match=r"plugins\[0\]: importing .*broken.py' failed: RuntimeError: oops"):
        load_config(None, [f"plugins=[{broken}]"], plugins=ALL_PLUGINS)
    with pytest.raises(ConfigError, match=r"plugins\[0\]: importing 'no_such_module_xyz' failed"):
        load_config(None, ["plugins=[no_such_module_xyz]"], plugins=ALL_PLUGINS)
