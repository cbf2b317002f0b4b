"""Each tensor travels once: ERM holds its featurizer and classifier under two names each (`featurizer` and
`network.0`, `classifier` and `network.1`); a round sends each once, fills the aliases in on arrival, and
trains the same model as before."""

from __future__ import annotations

import torch

from dagrad.federated import build
from dagrad.federated.wire import aliases, once, with_aliases
from dagrad.run.checkpoint import read_checkpoint


def test_erm_aliases_are_found_dropped_and_restored(federated):
    exp = federated["tiny"]()
    model = build.build_model(exp, build.build_data(exp), torch.device("cpu"))
    state = model.state_dict()
    alias = aliases(state)
    # network = Sequential(featurizer, classifier), as DomainBed's ERM builds it
    expected = {k: ("featurizer." if k.startswith("network.0.") else "classifier.") + k.split(".", 2)[2]
                for k in state if k.startswith("network.")}
    assert alias == expected and expected
    sent = once(state, alias)
    assert not any(k.startswith("network.") for k in sent) and len(sent) == len(state) - len(alias)
    restored = with_aliases({k: v.clone() for k, v in sent.items()}, alias)
    assert restored.keys() == state.keys()
    assert all(restored[k] is restored[v] for k, v in alias.items())
    copies = {k: v.clone() for k, v in state.items()}  # a copy has no aliases: nothing is dropped
    assert aliases(copies) == {}


def test_a_round_sends_each_weight_once_and_the_model_stays_whole(tmp_path, federated):
    flwr = __import__("flwr")
    exp = federated["tiny"]("federated.clients=2", "epochs=2")
    grid = federated["run"](exp, tmp_path / "fed")
    model = build.build_model(exp, build.build_data(exp), torch.device("cpu"))
    whole = flwr.app.ArrayRecord({k: v.detach().clone() for k, v in model.state_dict().items()}).count_bytes()
    trained = [r for r in grid.replies if "arrays" in r.content]
    assert trained and all(not any(k.startswith("network.0.") for k in r.content["arrays"]) for r in trained)
    assert all(r.content["arrays"].count_bytes() < 0.6 * whole for r in trained)
    sent = [m for m in grid.sent if "arrays" in m.content]
    assert sent and all(not any(k.startswith("network.0.") for k in m.content["arrays"]) for m in sent)
    state = read_checkpoint(tmp_path / "fed" / "checkpoint.pt")["algorithm"]
    for name, source in aliases(model.state_dict()).items():  # the saved global model: the alias is the weight
        assert torch.equal(state[name], state[source])
