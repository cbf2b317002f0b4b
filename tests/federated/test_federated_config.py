"""The federated: block: off by default (identities and headers as before), its keys and limits, the
λ partition as the clients get it, and the clear errors a config that cannot run gets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dagrad.config.experiment import load_experiment
from dagrad.config.schema import ExperimentConfig, from_dict, to_dict
from dagrad.federated import build
from dagrad.federated.local import ClientSite
from dagrad.utils.errors import ConfigError

#: the demo's identity before the federated block existed (the first job of sweeps/digits)
DEMO_RUN_ID = "b3b200fd1eb6"


def test_a_config_without_federated_keeps_its_identity_and_header():
    exp = load_experiment(["demo"])
    assert exp.run_id == DEMO_RUN_ID
    assert "federated" not in to_dict(exp.cfg) and "federated" not in exp.canonical()
    assert ExperimentConfig().federated is None


def test_federated_keys_limits_and_identity():
    cfg = from_dict({"federated": {"clients": 3, "lambda": 0.25, "strategy": "fedprox", "mu": 0.1}})
    assert (cfg.federated.clients, cfg.federated.lambda_, cfg.federated.strategy) == (3, 0.25, "fedprox")
    assert to_dict(cfg)["federated"]["lambda"] == 0.25 and from_dict(to_dict(cfg)) == cfg
    for bad, match in [({"lambda": 1.5}, "federated.lambda"), ({"clients": 0}, "federated.clients"),
                       ({"strategy": "fedsgd"}, "federated.strategy"), ({"fraction": 0}, "federated.fraction"),
                       ({"lambda_": 0.5}, "unknown key 'federated.lambda_'")]:
        with pytest.raises(ConfigError, match=match):
            from_dict({"federated": bad})
    one = load_experiment(["federated/digits"])
    assert one.run_id != load_experiment(["federated/digits"], ["federated.lambda=1"]).run_id
    # where it runs is not what it computes
    assert one.run_id == load_experiment(["federated/digits"], ["federated.cpus_per_client=2"]).run_id


def test_client_shares_spread_every_training_example_once_by_lambda():
    exp = load_experiment(["federated/digits"])
    data = build.build_data(exp)
    for lam in (0.0, 0.5, 1.0):
        fed = dataclasses.replace(exp.cfg.federated, lambda_=lam)
        shares = build.client_shares(data, fed, exp.seed)
        for i in data.train_envs:
            for part in build.PARTS:
                name = f"env{i}_{part}"
                got = np.sort(np.concatenate([s[name] for s in shares if name in s]))
                assert np.array_equal(got, np.arange(len(data.splits[name])))
        domains = [sorted(n for n in s if n.endswith("_in")) for s in shares]
        if lam == 0.0:  # one domain per client (5 clients, 5 training domains)
            assert all(len(d) == 1 for d in domains) and len({d[0] for d in domains}) == len(data.train_envs)
        if lam == 1.0:  # every client an even mix of every domain
            assert all(len(d) == len(data.train_envs) for d in domains)


def test_coral_on_a_client_with_one_domain_names_the_client(tmp_path):
    exp = load_experiment(["federated/digits"], ["algorithm.name=coral", "federated.lambda=0"])
    with pytest.raises(ConfigError, match="client 0 holds 1 training domain.*coral"):
        ClientSite(exp, 0, tmp_path)
    mixed = load_experiment(["federated/digits"], ["algorithm.name=coral", "federated.lambda=0.5"])
    assert len(ClientSite(mixed, 0, tmp_path).data.train_envs) == 5


def test_unsupported_combinations_are_config_errors():
    for overrides, match in [(["averaging.name=swad"], "averaging"), (["gradsamp.sampler=tensor", "gradsamp.guard=true"], "guard")]:
        with pytest.raises(ConfigError, match=match):
            build.check_supported(load_experiment(["federated/digits"], overrides))


def test_deployment_runtime_is_not_started_by_dagrad_train(tmp_path):
    from dagrad.federated.route import train_experiment as train

    exp = load_experiment(["federated/digits"], ["federated.runtime=deployment"])
    with pytest.raises(ConfigError, match="flower-superlink"):
        train(exp, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_write_app_carries_the_experiment(tmp_path, capsys):
    import tomllib

    from dagrad.config.experiment import experiment_from_dict
    from dagrad.federated.deployment import main

    assert main(["-c", "federated/digits", "epochs=3", "--app", str(tmp_path / "app"), "--out", str(tmp_path / "run")]) == 0
    project = tomllib.loads((tmp_path / "app" / "pyproject.toml").read_text())
    app = project["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "dagrad.federated.deployment:server",
                                 "clientapp": "dagrad.federated.deployment:client"}
    import json

    carried = experiment_from_dict(json.loads(app["config"]["dagrad-config"]))
    assert carried.run_id == load_experiment(["federated/digits"], ["epochs=3"]).run_id  # runtime is not identity
    assert carried.cfg.federated.runtime == "deployment" and app["config"]["dagrad-out"] == str(tmp_path / "run")
    assert main(["-c", "demo", "--app", str(tmp_path / "app2"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dagrad: error: this config has no federated: block; nothing to deploy"]
