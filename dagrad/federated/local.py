"""One client's work in a round, without Flower: take the global weights, train `local_steps` updates on
the client's own share (or, with client-side GradSamp, replace that local update by a draw: the global
model moved by a step drawn from the client's own last two local models, as a sampled epoch moves the
current model by a step drawn from the last two epochs' models; `skip` returns the global model as it
came), then evaluate a global model on its validation splits. Each piece of work is metered in the
client's own window.

With FedDG-GA (federated.strategy fedga) a client also evaluates its own local model on its validation
splits after training, in its own eval window. State-dict keys the algorithm keeps on the client
(`LOCAL_STATE`, e.g. FedSR's reference marginal) are restored from the client's own state when a round
starts and are not sent back: only the rest is averaged.

A client's state between rounds (its optimizer's, its GradSamp history, its local keys) is a weights-only file per round
in the client's folder, written atomically after the round's work; a round reads the newest state of an
earlier round, so a round that is run again after a kill starts from exactly what it started from before."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from dagrad.config.experiment import Experiment
from dagrad.datasets.loading import batches_on
from dagrad.energy import build_meter
from dagrad.energy.reading import Reading
from dagrad.federated import build
from dagrad.federated.adjust import kept, local_keys, without
from dagrad.federated.wire import aliases, once, with_aliases
from dagrad.gradsamp import GradSamp
from dagrad.run.checkpoint import read_checkpoint, save_checkpoint
from dagrad.run.epochs import EpochKind, StepSums
from dagrad.run.evaluation import evaluate
from dagrad.utils.errors import CheckpointError, ConfigError

STATE_PREFIX = "state-round"
KEEP_STATES = 2


@dataclass
class LocalResult:
    """What a client sends back after a round's training."""

    state: dict[str, torch.Tensor]
    examples: int
    steps: int
    kind: str
    stats: dict[str, Any] = field(default_factory=dict)  # the updates' mean losses etc.
    sampler_stats: Optional[dict[str, Any]] = None  # the client's GradSamp draw, when it drew
    energy: Optional[Reading] = None
    validation: Optional[dict[str, Any]] = None  # fedga: {"splits", "energy"} of the local model's validation


class ClientSite:
    """One client's data, model and meter, built once per process and reused every round."""

    def __init__(self, exp: Experiment, client: int, folder: str | Path, device: str = "cpu"):
        fed = build.settings(exp)
        if not 0 <= client < fed.clients:
            raise ValueError(f"client {client} is not one of the run's {fed.clients} clients")
        self.exp, self.client, self.folder = exp, int(client), Path(folder)
        self.device = torch.device(device)
        self.seed = build.client_seed(exp.seed, client)
        whole = build.build_data(exp)
        share = build.client_shares(whole, fed, exp.seed)[client]
        self.data = build.client_bundle(whole, share, client)
        build.check_objective(exp.algorithm.name, client, len(self.data.train_envs))
        self.examples = sum(len(self.data.splits[f"env{i}_in"]) for i in self.data.train_envs)
        self.steps = build.local_steps(exp, self.data)
        self.algorithm = build.build_model(exp, whole, self.device)
        self.stream = self.data.training_loaders(self.steps, self.seed, unlabelled=False)
        self.eval_loader = self.data.eval_loader()
        self.meter = build_meter(exp.energy, str(self.device))
        self.proximal_mu = fed.mu if fed.strategy == "fedprox" else 0.0
        self.client_gradsamp = exp.gradsamp is not None and fed.gradsamp_side == "client"
        self.local_keys = local_keys(self.algorithm)
        self.aliases = aliases(self.algorithm.state_dict())  # names sent once (see dagrad.federated.wire)
        self.fedga = fed.strategy == "fedga"
        if self.fedga:
            splits = self._validation_splits()
            if not splits:
                raise ConfigError(f"federated.strategy fedga: client {client} holds no validation examples (its "
                                  "domains' out splits are empty); raise data.holdout_fraction or use fewer clients")
            self.validation_loader = dataclasses.replace(self.data, splits=splits, eval_mode="full").eval_loader()

    def _validation_splits(self) -> dict[str, Any]:
        return {f"env{i}_out": self.data.splits[f"env{i}_out"] for i in self.data.train_envs
                if len(self.data.splits.get(f"env{i}_out", ())) > 0}

    # ------------------------------------------------------------------ training
    def train(self, global_state: dict[str, torch.Tensor], round_: int, mu: Optional[float] = None) -> LocalResult:
        """One round's local work from the global weights; the client's state file for the round is written."""
        mu = self.proximal_mu if mu is None else float(mu)
        self._load_global(global_state)
        saved = self._load_state(round_)
        if self.local_keys and saved.get("local_state") is not None:  # the client's own, as it left them
            self.algorithm.load_state_dict({**self.algorithm.state_dict(), **saved["local_state"]})
        gradsamp = GradSamp(self.exp.gradsamp, self.seed) if self.client_gradsamp else None
        if saved.get("optimizers") is not None and build.settings(self.exp).client_optimizer == "keep":
            for name, opt in self.algorithm.optimizers().items():
                opt.load_state_dict(saved["optimizers"][name])
        else:
            for opt in self.algorithm.optimizers().values():
                opt.state.clear()
        if gradsamp is not None and saved.get("gradsamp") is not None:
            gradsamp.load_state_dict(saved["gradsamp"], self.algorithm)
        torch.manual_seed(build.round_seed(self.seed, round_))
        kind, stats, sampler_stats, steps = EpochKind.TRAIN, {}, None, 0
        with self.meter.window("train") as energy:
            if gradsamp is not None and gradsamp.wants_sample(round_):
                drawn = gradsamp.sample(self.algorithm, self.algorithm.optimizers(), round_, meter=self.meter)
                kind, sampler_stats = EpochKind(drawn.kind), dict(drawn.stats)
                fallback = drawn.fallback
            else:
                fallback = None
            if kind is EpochKind.TRAIN or fallback == "train":
                stats.update(self._train_steps(round_, global_state, mu))
                steps = self.steps
            if gradsamp is not None:
                gradsamp.observe(self.algorithm, kind, fallback)
        self._save_state(round_, gradsamp)
        # the client's local keys stay here, and a tensor registered under two names travels once
        sent = without(once(self.algorithm.state_dict(), self.aliases), self.local_keys)
        state = {k: v.detach().cpu().clone() for k, v in sent.items()}
        validation = self._validate() if self.fedga else None
        return LocalResult(state, self.examples, steps, str(kind), stats, sampler_stats, energy, validation)

    def _validate(self) -> dict[str, Any]:
        """The local model's figures on the client's validation splits (FedDG-GA's 'before' results)."""
        with self.meter.window("eval") as energy:
            metrics, _ = evaluate(self.algorithm, self.validation_loader, self.device)
        sizes = dict(zip(self.validation_loader.names, self.validation_loader.sizes))
        return {"splits": {n: {"acc": metrics[f"{n}_acc"], "loss": metrics[f"{n}_loss"], "n": sizes[n]}
                           for n in self.validation_loader.names}, "energy": energy}

    def _train_steps(self, round_: int, global_state: dict[str, torch.Tensor], mu: float) -> dict[str, float]:
        sums = StepSums()
        rounds = self.exp.cfg.epochs
        anchors = without(global_state, self.local_keys)
        hooks = proximal_hooks(self.algorithm, anchors, mu) if mu > 0 else []
        try:
            for i, (labelled, _, _) in enumerate(self.stream.epoch(round_)):
                labelled = batches_on(self.device, labelled)
                self.algorithm.progress = (round_ * self.steps + i) / (rounds * self.steps)
                sums.add(self.algorithm.update(labelled, None))
        finally:
            for hook in hooks:
                hook.remove()
        return sums.means()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, global_state: dict[str, torch.Tensor]) -> tuple[dict[str, dict[str, float]], Reading]:
        """{split: {"acc", "loss", "n"}} of the global model on this client's splits, and the window's reading."""
        self._load_global(global_state)
        with self.meter.window("eval") as energy:
            metrics, _ = evaluate(self.algorithm, self.eval_loader, self.device)
        sizes = dict(zip(self.eval_loader.names, self.eval_loader.sizes))
        return {name: {"acc": metrics[f"{name}_acc"], "loss": metrics[f"{name}_loss"], "n": sizes[name]}
                for name in self.eval_loader.names}, energy

    def _load_global(self, global_state: dict[str, torch.Tensor]) -> None:
        """The global weights, except the keys this client keeps to itself (they stay as they are)."""
        global_state = with_aliases(global_state, self.aliases)
        if self.local_keys:
            global_state = {**self.algorithm.state_dict(), **without(global_state, self.local_keys)}
        self.algorithm.load_state_dict(global_state)

    # ------------------------------------------------------------------ state between rounds
    def _state_path(self, round_: int) -> Path:
        return self.folder / f"client{self.client}" / f"{STATE_PREFIX}{round_:06d}.pt"

    def _load_state(self, round_: int) -> dict[str, Any]:
        """The newest state this client saved in a round before `round_` (empty before its first round)."""
        folder = self.folder / f"client{self.client}"
        rounds = sorted(int(p.stem[len(STATE_PREFIX):]) for p in folder.glob(f"{STATE_PREFIX}*.pt")
                        if p.stem[len(STATE_PREFIX):].isdigit()) if folder.is_dir() else []
        earlier = [r for r in rounds if r < round_]
        if not earlier:
            return {}
        payload = read_checkpoint(self._state_path(earlier[-1]))
        if payload.get("client") != self.client:
            raise CheckpointError(f"{self._state_path(earlier[-1])} belongs to another client; cannot resume")
        return payload

    def _save_state(self, round_: int, gradsamp: Optional[GradSamp]) -> None:
        save_checkpoint(self._state_path(round_), {
            "client": self.client, "epoch": round_, "updates": 0, "stopped": False, "rng": {}, "records": [],
            "optimizers": {name: opt.state_dict() for name, opt in self.algorithm.optimizers().items()},
            "gradsamp": gradsamp.state_dict() if gradsamp is not None else None,
            "local_state": kept(self.algorithm.state_dict(), self.local_keys),
        })
        folder = self._state_path(round_).parent
        for old in sorted(folder.glob(f"{STATE_PREFIX}*.pt"))[:-KEEP_STATES]:
            old.unlink(missing_ok=True)


def proximal_hooks(module: torch.nn.Module, global_state: dict[str, torch.Tensor], mu: float) -> list[Any]:
    """FedProx on any algorithm: every trainable parameter's gradient gains mu (w - w_global), the gradient of
    the proximal term mu/2 ||w - w_global||^2, whatever loss the algorithm's own update computes."""
    hooks = []
    for name, p in module.named_parameters():
        if p.requires_grad and name in global_state:
            anchor = global_state[name].detach().to(p.device, p.dtype).clone()
            hooks.append(p.register_hook(lambda grad, p=p, anchor=anchor: grad + mu * (p.detach() - anchor)))
    return hooks
