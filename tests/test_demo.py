"""`dagrad demo` end to end at a tiny size: every variant on every seed, a table, records and a plot."""

from __future__ import annotations

from dagrad.demo import VARIANTS, run_demo
from dagrad.records import find_runs

TINY = ("data.image_size=12", "network.width=8", "data.batch_size=8", "epochs=5", "steps_per_epoch=3")


def test_demo_writes_table_records_and_plot(tmp_path, capsys):
    out = run_demo(tmp_path / "demo", seeds=2, overrides=TINY, progress=False)
    assert len(find_runs(out)) == len(VARIANTS) * 2
    table = (out / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "setting" not in line]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == [v.label for v in VARIANTS]
    full, gradsamp, control = rows
    assert "| - |" in full and "| 3 |" in gradsamp and "| 3 |" in control  # epoch 3 sampled (start 3, every 3)
    assert "15 (0 %)" in full and "12 (20 %)" in gradsamp and "12 (20 %)" in control  # 5 epochs x 3 steps
    assert "rot75" in table and "estimated:cpu-time" in table
    assert (out / "demo.png").stat().st_size > 10_000
    assert table.strip() in capsys.readouterr().out
