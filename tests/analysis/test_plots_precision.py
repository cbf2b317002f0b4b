"""The Pareto plot of a sweep with a precision axis shows precision and GradSamp settings side by side."""

from __future__ import annotations

from matplotlib.colors import to_rgba

from helpers import recordsfactory as rf

from dagrad.analysis.plots import PRECISION_COLOURS, pareto_figure, plot_all, precision_labels, without_precision
from dagrad.analysis.tables import build
from dagrad.analysis.runs import read_runs

PRECISIONS = (("fp32_strict", False), ("tf32", False), ("bf16", True))


def _sweep(root, algorithms=("erm", "coral")):
    for algorithm in algorithms:
        for precision, channels_last in PRECISIONS:
            for sampler in ("none", "skip", "tensor"):
                for trial in range(2):
                    joules = {"fp32_strict": 60.8, "tf32": 28.9, "bf16": 14.5}[precision]
                    epochs = [{"metrics": rf.metrics(env0_in_acc=0.6 + 0.01 * trial), "train_J": joules,
                               "eval_J": 1.0, "kind": "sampled" if sampler != "none" and i == 1 else "train"}
                              for i in range(2)]
                    rf.write_run(root / f"{algorithm}-{precision}-{sampler}-{trial}", test_envs=[0], trial_seed=trial,
                                 algorithm=algorithm, sampler=sampler, epochs=epochs, precision=precision,
                                 channels_last=channels_last)
    return root


def test_one_panel_per_algorithm_colour_by_precision_marker_by_gradsamp_setting(tmp_path):
    root = _sweep(tmp_path / "runs")
    selected, summary = build(root, "last")
    labels = precision_labels(selected)
    assert sorted(set(labels.values())) == ["bf16 + channels_last", "fp32_strict", "tf32"]
    assert set(summary.algorithm) == {"ERM (precision=bf16)", "ERM (precision=fp32_strict)", "ERM (precision=tf32)",
                                      "CORAL (precision=bf16)", "CORAL (precision=fp32_strict)",
                                      "CORAL (precision=tf32)"}
    fig = pareto_figure(summary, "rotated_digits", labels)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in panels) == ["CORAL", "ERM"]
    erm = next(ax for ax in panels if ax.get_title() == "ERM")
    handles, texts = erm.get_legend_handles_labels()
    assert "bf16 + channels_last · full" in texts and "fp32_strict · tensor" in texts and "tf32 · skip" in texts
    points = dict(zip(texts, handles))
    bf16_full = points["bf16 + channels_last · full"].lines[0]
    assert bf16_full.get_marker() == "o" and to_rgba(bf16_full.get_color()) == to_rgba(PRECISION_COLOURS["bf16"])
    assert points["tf32 · skip"].lines[0].get_marker() == "s" and points["tf32 · tensor"].lines[0].get_marker() == "^"
    assert plot_all(read_runs(root), selected, summary, tmp_path)[0].name == "rotated_digits-pareto.png"


def test_without_a_precision_axis_the_plot_is_unchanged(tmp_path):
    root = tmp_path / "runs"
    for trial in range(2):
        for sampler in ("none", "tensor"):
            rf.write_run(root / f"{sampler}{trial}", test_envs=[0], trial_seed=trial, sampler=sampler,
                         epochs=[{"metrics": rf.metrics(), "train_J": 1.0, "eval_J": 1.0}])
    selected, summary = build(root, "last")
    fig = pareto_figure(summary, "rotated_digits", precision_labels(selected))
    assert len(fig.axes) == 1 and "accuracy against energy" in fig.axes[0].get_title()


def test_precision_is_taken_out_of_the_algorithm_label_only():
    assert without_precision("ERM (precision=bf16)") == "ERM"
    assert without_precision("ERM + SWAD (precision=tf32, data.image_size=16)") == "ERM + SWAD (data.image_size=16)"
    assert without_precision("CORAL") == "CORAL"
