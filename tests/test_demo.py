"""`dagrad demo` end to end at a tiny size: every setting on every seed, the report's table, records, plots."""

from __future__ import annotations

from dagrad.demo import SETTINGS, run_demo
from dagrad.records.files import find_runs

TINY = ("data.image_size=12", "network.options.width=8", "data.batch_size=8", "epochs=5", "steps_per_epoch=3")


def test_demo_writes_table_records_and_plots(tmp_path, capsys):
    out = run_demo(tmp_path / "demo", seeds=2, overrides=TINY, progress=False)
    assert len(find_runs(out)) == len(SETTINGS) * 2
    table = (out / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ERM")]
    assert [row.split(" | ")[1] for row in rows] == ["full", "tensor", "skip"]
    full, gradsamp, control = rows
    # epoch 3 sampled (start 3, every 3) in 5 epochs of 3 steps: 12 of 15 updates, 20 % saved
    assert "| 15 |" in full and "| 12 (20 %) |" in gradsamp and "| 12 (20 %) |" in control
    assert "rot75" in table and "estimated:cpu-time" in table
    assert "ERM, tensor vs its equal-energy control" in table
    assert (out / "rotated_digits-pareto.png").stat().st_size > 10_000
    assert (out / "rotated_digits-curves.png").stat().st_size > 10_000
    assert table.strip() in capsys.readouterr().out


def test_demo_runs_each_seeds_settings_side_by_side():
    from dagrad.demo import demo_jobs

    assert demo_jobs(2) == [("full", 0), ("gradsamp", 0), ("control", 0), ("full", 1), ("gradsamp", 1),
                            ("control", 1)]
    assert demo_jobs(2, "grouped") == [("full", 0), ("full", 1), ("gradsamp", 0), ("gradsamp", 1), ("control", 0),
                                       ("control", 1)]
