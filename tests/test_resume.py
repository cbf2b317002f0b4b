"""A real interrupted process (SIGKILL mid-run) resumed with `dagrad train --resume` ends exactly
where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from dagrad.records.files import read_records, split_run

ARGS = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "steps_per_epoch=6", "epochs=12",
        "gradsamp.sampler=tensor", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=3"]


def dagrad(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "dagrad.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finished(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out


def epoch_lines(path):
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if '"type": "epoch"' in line)


def comparable(path):
    _, epochs, summary = split_run(read_records(path))
    keep = ("epoch", "step", "updates", "kind", "metrics", "sampler_stats", "update_stats")
    return [{k: r[k] for k in keep} for r in epochs], summary["metrics"]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    full = dagrad("train", "--quiet", "--out", str(tmp_path / "full"), *ARGS)
    victim = dagrad("train", "--quiet", "--out", str(tmp_path / "victim"), *ARGS)
    records = tmp_path / "victim" / "records.jsonl"
    deadline = time.time() + 120
    while epoch_lines(records) < 3 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done_when_killed = epoch_lines(records)
    assert victim.returncode == -signal.SIGKILL and 3 <= done_when_killed < 12, "the kill must land mid-run"

    finished(dagrad("train", "--quiet", "--resume", "--out", str(tmp_path / "victim"), *ARGS))
    finished(full)
    resumed_epochs, resumed_final = comparable(records)
    full_epochs, full_final = comparable(tmp_path / "full" / "records.jsonl")
    assert [r["kind"] for r in full_epochs].count("sampled") == 4
    assert resumed_epochs == full_epochs
    assert resumed_final == full_final


def test_bad_key_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    proc = dagrad("train", "--out", str(tmp_path / "run"), "data.fo=1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        "dagrad: error: unknown key 'data.fo'; allowed keys in data: name, root, test_envs, setting, "
        "holdout_fraction, uda_holdout_fraction, da_protocol, protocol, split, image_size, batch_size, "
        "eval_batch_size, num_workers, augment, val_augment, skip_corrupt, options"]
    assert not (tmp_path / "run").exists()


def test_resume_of_a_corrupt_checkpoint_exits_2_with_a_clear_line(tmp_path):
    args = ["data.image_size=12", "network.options.width=8", "data.batch_size=8", "steps_per_epoch=2", "epochs=1"]
    finished(dagrad("train", "--quiet", "--out", str(tmp_path / "run"), *args))
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    proc = dagrad("train", "--quiet", "--resume", "--out", str(tmp_path / "run"), *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "truncated or corrupted" in err and "Traceback" not in err
