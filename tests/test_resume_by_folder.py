"""A run resumes from its folder alone (the config comes from its records' header), through the CLI and
the API, to the records of an uninterrupted run; a config given as well must describe the same run;
an interrupted `dagrad train` prints the exact command that continues it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml

import dagrad
from dagrad import cli
from dagrad.run import engine
from dagrad.records.files import read_records, split_run

ARGS = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "steps_per_epoch=3", "epochs=5",
        "data.eval_batch_size=512", "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2",
        "gradsamp.schedule_options.every=2"]


def comparable(folder):
    _, epochs, summary = split_run(read_records(folder / "records.jsonl"))
    keep = ("epoch", "step", "updates", "kind", "metrics", "sampler_stats", "update_stats")
    return [{k: r[k] for k in keep} for r in epochs], {k: v for k, v in (summary or {}).items()
                                                         if not k.endswith("_energy")}


def dagrad_main(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = cli.main(list(argv))
    return code, err.getvalue()


def crash_after(monkeypatch, epochs: int) -> None:
    """The process dies between writing epoch `epochs - 1`'s record and its checkpoint (the worst moment:
    the records hold an epoch the checkpoint lost)."""
    original = engine.Trainer._checkpoint

    def checkpoint(self, next_epoch):
        if next_epoch == epochs:
            raise KeyboardInterrupt
        original(self, next_epoch)

    monkeypatch.setattr(engine.Trainer, "_checkpoint", checkpoint)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    assert dagrad_main("train", "--quiet", "--out", str(out), *ARGS)[0] == 0
    return comparable(out)


def test_cli_resume_by_folder_alone_matches_an_uninterrupted_run(tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        crash_after(m, 3)
        code, err = dagrad_main("train", "--quiet", "--out", str(out), *ARGS)
    assert code == 130
    assert err.strip().splitlines()[-1] == f"dagrad: interrupted; continue this run with: dagrad train --resume --out {out}"
    assert len(comparable(out)[0]) == 3  # the third epoch's record outlived its checkpoint
    code, err = dagrad_main("train", "--quiet", "--resume", "--out", str(out))
    assert code == 0, err
    assert comparable(out) == uninterrupted


def test_api_resume_by_folder_alone_matches_an_uninterrupted_run(tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        crash_after(m, 2)
        dagrad.train(out=out, progress=False, **{k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in ARGS)})
    run = dagrad.train(out=out, resume=True, progress=False)
    assert comparable(out) == uninterrupted
    assert run.complete and len(run.epochs) == 5


def test_a_config_for_another_run_is_refused_naming_the_keys(tmp_path, uninterrupted):
    out = tmp_path / "run"
    args = [a.replace("epochs=5", "epochs=2") for a in ARGS]
    assert dagrad_main("train", "--quiet", "--out", str(out), *args)[0] == 0
    before = (out / "records.jsonl").read_text()
    code, err = dagrad_main("train", "--quiet", "--resume", "--out", str(out), *ARGS[:-1], "algorithm.name=coral")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "algorithm.name: \"erm\" -> \"coral\"" in err and "epochs: 2 -> 5" in err
    assert "gradsamp.schedule_options.every" not in err  # the same in both
    assert f"dagrad train --resume --out {out}" in err
    with pytest.raises(dagrad.ConfigError, match=r"epochs: 2 -> 3"):
        dagrad.train(out=out, resume=True, epochs=3)
    with pytest.raises(dagrad.ConfigError, match=r"algorithm.name: \"erm\" -> \"coral\""):
        dagrad.train(dagrad.load_run(out).config, out=out, resume=True, algorithm__name="coral")
    assert (out / "records.jsonl").read_text() == before
    # the same experiment, however given, resumes (a finished run has nothing left to do)
    config_file = tmp_path / "same.yaml"
    config_file.write_text(yaml.safe_dump(dagrad.load_run(out).config))
    assert dagrad_main("train", "--quiet", "--resume", "--out", str(out), "-c", str(config_file), "device=cpu")[0] == 0
    assert dagrad.train(str(config_file), out=out, resume=True, progress=False).complete
    assert (out / "records.jsonl").read_text() == before


def test_resume_of_a_folder_without_a_run_is_one_line(tmp_path):
    code, err = dagrad_main("train", "--resume", "--out", str(tmp_path / "nothing"))
    assert code == 2
    assert err.strip() == (f"dagrad: error: cannot resume: {tmp_path / 'nothing'} holds no run (no records.jsonl "
                           "or checkpoint.pt); start it without --resume")


def test_python_m_dagrad_help():
    out = subprocess.run([sys.executable, "-m", "dagrad", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: dagrad")
    for command in ("demo", "train", "sweep", "report"):
        assert command in out.stdout


@pytest.mark.slow
def test_sigint_prints_the_resume_command_and_the_folder_alone_resumes(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    # the reference run in a process like the interrupted one (an in-process run uses this process's torch threads)
    full = subprocess.run([sys.executable, "-m", "dagrad", "train", "--quiet", "--out", str(tmp_path / "full"), *ARGS],
                          env=env, capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([sys.executable, "-m", "dagrad", "train", "--quiet", "--out", str(out), *ARGS],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records, deadline = out / "records.jsonl", time.time() + 120
    while (not records.exists() or records.read_text().count('"type": "epoch"') < 2) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"dagrad: interrupted; continue this run with: dagrad train --resume --out {out}"
    resumed = subprocess.run([sys.executable, "-m", "dagrad", "train", "--quiet", "--resume", "--out", str(out)],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(out) == comparable(tmp_path / "full")
