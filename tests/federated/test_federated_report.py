"""The report and the study over federated runs: the clients' traffic per configuration equals the bytes in
the records, a server-side draw's full training and skip control are found (the side is a GradSamp setting,
not a different family), each side's draw is paired with its own side's control, and the accuracy against
energy and traffic figure is written."""

from __future__ import annotations

import pytest

from dagrad.analysis.federated import client_rounds, run_traffic
from dagrad.analysis.report import write_report
from dagrad.analysis.runs import read_runs
from dagrad.analysis.study import build_study
from dagrad.records.files import read_records

SCHEDULE = ["gradsamp.schedule=periodic", "gradsamp.schedule_options.start=2", "gradsamp.schedule_options.every=2"]
ARMS = {"full": ["gradsamp.sampler=none"],
        "client-tensor": ["gradsamp.sampler=tensor", *SCHEDULE, "federated.gradsamp_side=client"],
        "client-skip": ["gradsamp.sampler=skip", *SCHEDULE, "federated.gradsamp_side=client"],
        "server-tensor": ["gradsamp.sampler=tensor", *SCHEDULE, "federated.gradsamp_side=server"],
        "server-skip": ["gradsamp.sampler=skip", *SCHEDULE, "federated.gradsamp_side=server"]}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Five arms x two trial seeds, three rounds (round 2 drawn or skipped), two clients, in process."""
    from tests.federated.conftest import run, tiny

    root = tmp_path_factory.mktemp("fedsweep")
    for arm, overrides in ARMS.items():
        for trial in (0, 1):
            run(tiny("epochs=3", "federated.clients=2", "federated.lambda=1", f"trial_seed={trial}", *overrides),
                root / f"{arm}-{trial}")
    return root


def _bytes(folder) -> int:
    return sum(v for line in read_records(folder / "records.jsonl") if line["type"] == "epoch"
               for k, v in line["federated"]["bytes"].items() if k in ("clients_sent", "clients_received"))


def test_traffic_is_the_records_bytes_and_the_server_side_skips_the_training_messages(sweep):
    runs = {r.path.parent.name: r for r in read_runs(sweep)}
    for name, run in runs.items():
        assert run_traffic(run) == _bytes(sweep / name) > 0
    # a client-side draw still exchanges the models; a server-side round sends no training messages
    assert run_traffic(runs["client-tensor-0"]) == run_traffic(runs["full-0"])
    assert run_traffic(runs["server-tensor-0"]) < run_traffic(runs["full-0"])
    assert run_traffic(runs["server-tensor-0"]) == run_traffic(runs["server-skip-0"])
    assert client_rounds(runs["full-0"]) == 3
    assert client_rounds(runs["client-tensor-0"]) == client_rounds(runs["server-skip-0"]) == 2


def test_report_sets_accuracy_against_energy_and_traffic(sweep, tmp_path):
    text, files = write_report(sweep, out=tmp_path / "report")
    assert tmp_path / "report" / "rotated_digits-federated.png" in files
    assert (tmp_path / "report" / "rotated_digits-federated.svg").stat().st_size > 0
    section = text.split("accuracy against energy and traffic (federated)")[1].split("### All datasets")[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ERM")]
    assert len(rows) == 5
    runs = {r.path.parent.name: r for r in read_runs(sweep)}
    expected = {arm: (run_traffic(runs[f"{arm}-0"]) + run_traffic(runs[f"{arm}-1"])) / 2 / 1e6 for arm in ARMS}
    shown = {row[1].strip(): float(row[4].split(" ± ")[0]) for row in rows}
    assert shown["full"] == pytest.approx(expected["full"], abs=0.05)
    assert shown["tensor (gradsamp_side=server)"] == pytest.approx(expected["server-tensor"], abs=0.05)
    assert shown["skip (gradsamp_side=client)"] == pytest.approx(expected["client-skip"], abs=0.05)
    assert [row[5].strip(" |") for row in rows].count("2") == 4


def test_each_side_is_paired_with_its_own_control_and_full_training(sweep):
    runs = read_runs(sweep)
    study = build_study(runs)
    cells = study.cells.set_index("schedule")
    assert sorted(cells.index) == ["every 2, side=client", "every 2, side=server"]
    keys = {r.path.parent.name: r for r in runs}
    from dagrad.analysis.frames import configuration_key

    key = {name: configuration_key(r.resolved) for name, r in keys.items()}
    for side in ("client", "server"):
        row = cells.loc[f"every 2, side={side}"]
        assert row.control_key == key[f"{side}-skip-0"] and row.full_key == key["full-0"]
        assert row.n == 2 and row.n_full == 2
    refs = study.references
    assert sorted(refs.schedule) == ["", "every 2, side=client", "every 2, side=server"]
