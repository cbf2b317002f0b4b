"""Fake Slurm commands on PATH for the launcher and status tests: `sbatch` keeps every script it is given
(and answers with ids 4242, 4243, ...), `sacct` and `squeue` print what a test wrote for them."""

from __future__ import annotations

import os
import stat

import pytest

FAKES = {
    "srun": "#!/bin/sh\nexit 0\n",
    # keeps every script it is given; answers as sbatch does, ids 4242, 4243, ...
    "sbatch": '#!/bin/sh\nn=$(ls "$FAKE_SLURM"/submitted-*.sh 2>/dev/null | wc -l)\n'
              'cp "$1" "$FAKE_SLURM/submitted-$n.sh"\necho "Submitted batch job $((4242 + n))"\n',
    "sacct": '#!/bin/sh\necho "$@" >> "$FAKE_SLURM/sacct-calls"\n'
             '[ -f "$FAKE_SLURM/sacct.txt" ] || exit 1\ncat "$FAKE_SLURM/sacct.txt"\n',
    "squeue": '#!/bin/sh\necho "$@" >> "$FAKE_SLURM/squeue-calls"\n[ -f "$FAKE_SLURM/squeue.txt" ] && '
              'cat "$FAKE_SLURM/squeue.txt"\nexit 0\n',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in FAKES.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(state))
    return state


