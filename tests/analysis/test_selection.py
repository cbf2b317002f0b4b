"""Each selection method on hand-written records whose answer is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import recordsfactory as rf

from dagrad.utils.errors import ConfigError
from dagrad.analysis.runs import read_runs
from dagrad.analysis.selection import select

M = rf.metrics


def _two_hparams(tmp_path: Path) -> list:
    # test env 0; train envs 1, 2. hparams 0: best val at epoch 0 (0.7); hparams 1: best val at epoch 1 (0.8).
    rf.write_run(tmp_path / "h0", test_envs=[0], hparams_seed=0, epochs=[
        {"metrics": M(env1_out_acc=0.7, env2_out_acc=0.7, env0_in_acc=0.31, env0_out_acc=0.9), "train_J": 1, "eval_J": 2},
        {"metrics": M(env1_out_acc=0.6, env2_out_acc=0.6, env0_in_acc=0.32, env0_out_acc=0.2), "train_J": 1, "eval_J": 2},
        {"metrics": M(env1_out_acc=0.5, env2_out_acc=0.5, env0_in_acc=0.33, env0_out_acc=0.6), "train_J": 1, "eval_J": 2},
    ])
    rf.write_run(tmp_path / "h1", test_envs=[0], hparams_seed=1, epochs=[
        {"metrics": M(env1_out_acc=0.6, env2_out_acc=0.6, env0_in_acc=0.41, env0_out_acc=0.1), "train_J": 10, "eval_J": 1},
        {"metrics": M(env1_out_acc=0.9, env2_out_acc=0.7, env0_in_acc=0.42, env0_out_acc=0.1), "train_J": 20, "eval_J": 1},
        {"metrics": M(env1_out_acc=0.5, env2_out_acc=0.5, env0_in_acc=0.43, env0_out_acc=0.5), "train_J": 30, "eval_J": 1},
    ])
    return read_runs(tmp_path)


def test_training_domain_picks_best_train_env_out_over_hparams_and_epochs(tmp_path):
    row = select(_two_hparams(tmp_path), "training_domain").iloc[0]
    assert (row.hparams_seed, row.epoch, row.test_env) == (1, 1, 0)
    assert row.val_acc == pytest.approx(0.8) and row.test_acc == pytest.approx(0.42)
    # energy up to and including the chosen epoch, and the whole run; search = both runs, whole
    assert (row.sel_train_J, row.sel_eval_J) == (30, 2)
    assert (row.run_train_J, row.run_eval_J) == (60, 3)
    assert row.search_J == pytest.approx(60 + 3 + 3 + 6) and row.n_hparams == 2
    assert row.train_sources == "estimated:cpu-time"


def test_oracle_takes_last_checkpoint_and_hparams_by_test_out(tmp_path):
    row = select(_two_hparams(tmp_path), "oracle").iloc[0]
    # last epochs: hparams 0 test-out 0.6 beats hparams 1 test-out 0.5 (earlier epochs never count)
    assert (row.hparams_seed, row.epoch) == (0, 2)
    assert row.val_acc == pytest.approx(0.6) and row.test_acc == pytest.approx(0.33)


def test_last_is_default_hparams_final_epoch(tmp_path):
    row = select(_two_hparams(tmp_path), "last").iloc[0]
    assert (row.hparams_seed, row.epoch, row.test_acc) == (0, 2, pytest.approx(0.33))


def test_averaged_run_offers_its_final_average_only(tmp_path):
    rf.write_run(tmp_path / "swad", test_envs=[0], epochs=[
        {"metrics": M(env1_out_acc=0.99, env0_in_acc=0.1), "train_J": 5, "eval_J": 1},
        {"metrics": M(env0_in_acc=0.2), "train_J": 5, "eval_J": 1},
    ], summary_metrics=M(env1_out_acc=0.6, env0_in_acc=0.77), final_eval_J=4)
    for method in ("training_domain", "oracle", "last"):
        row = select(read_runs(tmp_path), method).iloc[0]
        assert row.epoch == "averaged" and row.test_acc == pytest.approx(0.77)
        assert (row.sel_train_J, row.sel_eval_J) == (10, 6)  # includes the averaged model's final evaluation


def test_leave_one_out_uses_pair_runs_heldout_in_accuracy(tmp_path):
    # 3 envs, test env 0. Per hparams seed: run {0} and pairs {0,1}, {0,2}; validation at a step =
    # mean over v of the {0,v} run's env v `in` accuracy. hparams 1 at step 20 wins (0.9).
    for h, (val_a, val_b) in enumerate([((0.5, 0.6), (0.5, 0.6)), ((0.6, 0.9), (0.7, 0.9))]):
        rf.write_run(tmp_path / f"t{h}", test_envs=[0], hparams_seed=h, epochs=[
            {"metrics": M(env0_in_acc=0.1 + h / 2, env1_out_acc=0.99), "train_J": 1, "eval_J": 1},
            {"metrics": M(env0_in_acc=0.2 + h / 2), "train_J": 1, "eval_J": 1}])
        rf.write_run(tmp_path / f"p1{h}", test_envs=[0, 1], hparams_seed=h, epochs=[
            {"metrics": M(env1_in_acc=val_a[0]), "train_J": 1, "eval_J": 1},
            {"metrics": M(env1_in_acc=val_a[1]), "train_J": 1, "eval_J": 1}])
        rf.write_run(tmp_path / f"p2{h}", test_envs=[0, 2], hparams_seed=h, epochs=[
            {"metrics": M(env2_in_acc=val_b[0]), "train_J": 1, "eval_J": 1},
            {"metrics": M(env2_in_acc=val_b[1]), "train_J": 1, "eval_J": 1}])
    frame = select(read_runs(tmp_path), "leave_one_out")
    row = frame[frame.test_env == 0].iloc[0]
    assert (row.hparams_seed, row.step, row.val_acc) == (1, 20, pytest.approx(0.9))
    assert row.test_acc == pytest.approx(0.7)
    assert row.search_J == pytest.approx(6 * 4)  # both hparams' single and pair runs
    # env 1 and env 2 have no single-test-env runs: no cells for them
    assert set(frame.test_env) == {0}


def test_leave_one_out_without_all_pairs_gives_nothing(tmp_path):
    rf.write_run(tmp_path / "t", test_envs=[0], epochs=[{"metrics": M(), "train_J": 1, "eval_J": 1}])
    rf.write_run(tmp_path / "p", test_envs=[0, 1], epochs=[{"metrics": M(), "train_J": 1, "eval_J": 1}])
    assert select(read_runs(tmp_path), "leave_one_out").empty


def test_unfinished_runs_are_ignored_and_unknown_method_is_an_error(tmp_path):
    path = rf.write_run(tmp_path / "a", test_envs=[0], epochs=[{"metrics": M(), "train_J": 1, "eval_J": 1}])
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # drop the summary line
    assert select(read_runs(tmp_path), "training_domain").empty
    with pytest.raises(ConfigError, match="choose one of"):
        select([], "best")


def test_a_tie_follows_the_stated_rule_and_the_report_says_it_decided(tmp_path):
    """Two hparams seeds reach the same best validation accuracy (hparams 1 twice, at epochs 0 and 1): the
    earlier epoch, then the lower hparams seed wins, the row counts the candidates it beat by the rule, and
    the report names the configuration whose selection a tie decided."""
    from dagrad.analysis.tables import build, tables_markdown

    for seed, test in ((0, 0.2), (1, 0.9)):
        rf.write_run(tmp_path / f"h{seed}", test_envs=[0], hparams_seed=seed, epochs=[
            {"metrics": M(env1_out_acc=0.8, env2_out_acc=0.8, env0_in_acc=test, env0_out_acc=0.5), "train_J": 1,
             "eval_J": 1},
            {"metrics": M(env1_out_acc=0.8 if seed else 0.1, env2_out_acc=0.8 if seed else 0.1, env0_in_acc=test + 0.05,
                          env0_out_acc=0.5), "train_J": 1, "eval_J": 1}])
    row = select(read_runs(tmp_path), "training_domain").iloc[0]
    assert (row.hparams_seed, row.epoch, row.test_acc, row.tied) == (0, 0, pytest.approx(0.2), 1)
    selected, summary = build(tmp_path, "training_domain")
    assert int(summary.iloc[0].tie_decided) == 1
    text = tables_markdown(summary, "training_domain")
    assert ("ERM, full: a tie in validation accuracy decided 1 of 1 selection(s) (ties go to the earlier epoch, "
            "then the lower hparams seed).") in text
    rf.write_run(tmp_path / "h1", test_envs=[0], hparams_seed=1, epochs=[
        {"metrics": M(env1_out_acc=0.7, env2_out_acc=0.7, env0_in_acc=0.9, env0_out_acc=0.5), "train_J": 1,
         "eval_J": 1}])
    assert select(read_runs(tmp_path), "training_domain").iloc[0].tied == 0
    assert "a tie in validation" not in tables_markdown(build(tmp_path, "training_domain")[1], "training_domain")


def test_a_swad_summary_says_averaged_model_and_old_skip_records_read_as_skipped(tmp_path):
    """A run that reports SWAD's average says so where it prints an accuracy; a skip run recorded before
    the `skipped` kind existed (its epochs called `sampled`) is read with the skipped kind."""
    import dagrad
    from dagrad.analysis.frames import runs_frame

    rf.write_run(tmp_path / "swad", test_envs=[0], epochs=[
        {"metrics": M(env0_in_acc=0.2), "train_J": 1, "eval_J": 1}], summary_metrics=M(env0_in_acc=0.77))
    assert "OOD accuracy (averaged model) 77.0 %" in repr(dagrad.load_run(tmp_path / "swad"))
    rf.write_run(tmp_path / "old_skip", test_envs=[0], sampler="skip", epochs=[
        {"metrics": M(), "train_J": 1, "eval_J": 1}, {"metrics": M(), "train_J": 0, "eval_J": 1, "kind": "sampled"}])
    run = dagrad.load_run(tmp_path / "old_skip")
    assert list(run.epochs["kind"]) == ["train", "skipped"] and "averaged" not in repr(run)
    row = runs_frame(read_runs(tmp_path / "old_skip")).iloc[0]
    assert (row.sampled_epochs, row.skipped_epochs) == (0, 1)
