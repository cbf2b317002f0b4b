"""The server's side of a federated run, over a Flower Grid: find the clients, then round by round sample
them, send the global weights, aggregate the replies with Flower's FedAvg or FedProx (weighted by the
clients' example counts; with FedDG-GA, FedAvg weighted by the generalisation adjustment's weights, which
the round's validation gaps then update, see dagrad.federated.adjust), evaluate the global model on the
held-out domains here and on the clients' validation splits there, and append the round to the records,
checkpointing after each round (with the strategy's own state, FedDG-GA's weights).

Server-side GradSamp replaces a whole round by a draw from the last two global models: no client trains
in it. The server meters its own windows (aggregation or draw, held-out evaluation) beside the clients'."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from dagrad.config.experiment import Experiment
from dagrad.energy import build_meter
from dagrad.energy.ledger import Gaps
from dagrad.federated import build, rounds
from dagrad.federated.adjust import WEIGHT_KEY, FedGA, validation_metric
from dagrad.federated.flower import require_flwr
from dagrad.federated.records import FederatedRecords
from dagrad.federated.wire import aliases, once, with_aliases
from dagrad.gradsamp import GradSamp
from dagrad.run.evaluation import evaluate
from dagrad.utils.errors import ConfigError, DagradError
from dagrad.utils.seeding import seed_everything, seed_hash
from dagrad.run.header import sampler_name

#: how long the server waits for every client to connect, and for a round's replies (seconds)
CONNECT_TIMEOUT_S = 600.0
ROUND_TIMEOUT_S = 3600.0


def device_of(name: str) -> torch.device:
    """cuda when asked for (or auto) and visible, else the CPU."""
    return torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def strategy_for(exp: Experiment) -> Any:
    """Flower's FedAvg or FedProx (FedDG-GA: FedAvg weighted by the weights the server gives each reply);
    client sampling is dagrad's (seeded, so a resumed run samples the same)."""
    fed = build.settings(exp)
    strategies = require_flwr().serverapp.strategy
    common = dict(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=1, min_evaluate_nodes=1,
                  min_available_nodes=1)
    if fed.strategy == "fedprox":
        return strategies.FedProx(proximal_mu=fed.mu, **common)
    if fed.strategy == "fedga":
        return strategies.FedAvg(weighted_by_key=WEIGHT_KEY, **common)
    return strategies.FedAvg(**common)


def sample_clients(seed: int, round_: int, clients: int, fraction: float) -> list[int]:
    """The clients that train in a round: max(1, round(fraction x clients)) of them, drawn by (seed, round)."""
    k = max(1, int(round(fraction * clients)))
    rng = np.random.default_rng(seed_hash("federated.sample", int(seed), int(round_)))
    return sorted(int(c) for c in rng.choice(clients, size=k, replace=False))


class _Chosen:
    """A Grid that shows a strategy only the chosen nodes, so Flower's configure_train addresses exactly them."""

    def __init__(self, nodes: list[int]):
        self.nodes = list(nodes)

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)


class FederatedServer:
    """Builds the global model, the held-out evaluation and the records (nothing talks to a client yet)."""

    def __init__(self, exp: Experiment, out: str | Path, resume: bool = False, progress: Any = True):
        build.check_supported(exp)
        self.exp, self.cfg, self.fed = exp, exp.cfg, build.settings(exp)
        self.seed = exp.seed
        seed_everything(self.seed)
        self.device = device_of(self.cfg.device)
        self.meter = build_meter(exp.energy, str(self.device))
        self.gaps = Gaps(self.meter)
        data = build.build_data(exp)
        build.check_clients(exp, data)
        seed_everything(self.seed)  # the initial model as the engine's for this seed, whether data was cached or not
        self.algorithm = build.build_model(exp, data, self.device)
        self.aliases = aliases(self.algorithm.state_dict())  # names sent once (see dagrad.federated.wire)
        self.held_out = build.held_out_bundle(data).eval_loader()
        self.steps = build.local_steps(exp, data)
        self.gradsamp = GradSamp(exp.gradsamp, self.seed) \
            if exp.gradsamp is not None and self.fed.gradsamp_side == "server" else None
        self.records = FederatedRecords(exp, out, data, self.steps, self.meter, progress, str(self.device))
        self.fedga = FedGA(self.fed, self.cfg.epochs) if self.fed.strategy == "fedga" else None
        self.start_round, self.updates = 0, 0
        if resume:
            self.start_round, self.updates = self.records.restore(self.algorithm, self.gradsamp, self.fedga)
        else:
            self.records.start()
        self.nodes: dict[int, int] = {}  # client -> Flower node id

    # ------------------------------------------------------------------ the rounds
    def run(self, grid: Any) -> Path:
        """Every remaining round over `grid`; returns the record file."""
        try:
            self._connect(grid)
            self.records.progress_start(self.start_round)
            for r in self.records.over_rounds(range(self.start_round, self.cfg.epochs)):
                self._round(grid, r)
            self.records.finish(self.updates)
        finally:
            self.gaps.pause()
            self.meter.close()
            self.records.close()
        return self.records.path

    def _connect(self, grid: Any) -> None:
        """Wait for every client's node, then learn which client each node is (its partition-id)."""
        flwr = require_flwr()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while len(nodes := list(grid.get_node_ids())) < self.fed.clients:
            if time.monotonic() > deadline:
                raise DagradError(f"federated: {len(nodes)} of {self.fed.clients} clients connected in "
                                  f"{CONNECT_TIMEOUT_S:.0f} s; start one SuperNode per client")
            time.sleep(0.5)
        asks = [flwr.app.Message(flwr.app.RecordDict({"config": flwr.app.ConfigRecord({"ask": "client"})}),
                                 dst_node_id=n, message_type=flwr.app.MessageType.QUERY) for n in nodes]
        for reply in grid.send_and_receive(asks, timeout=CONNECT_TIMEOUT_S):
            report = _report(reply)
            self.nodes[int(report["client"])] = reply.metadata.src_node_id
        missing = sorted(set(range(self.fed.clients)) - set(self.nodes))
        if missing:
            raise ConfigError(f"federated: no node answered as client {missing[0]}; give the SuperNodes "
                              f"partition-id 0..{self.fed.clients - 1} (--node-config \"partition-id=K "
                              f"num-partitions={self.fed.clients}\")")

    def _round(self, grid: Any, r: int) -> None:
        """One round; the server's windows cover its own work only (waiting for clients is in none)."""
        flwr = require_flwr()
        other = self.gaps.take()
        windows, clients, kinds, stats, sampler_stats, fallback, kind = [], [], [], [], None, None, "train"
        if self.gradsamp is not None and self.gradsamp.wants_sample(r):
            with self.meter.window("train") as drawing:
                drawn = self.gradsamp.sample(self.algorithm, {}, r, meter=self.meter)
            windows.append(drawing)
            kind, sampler_stats, fallback = str(drawn.kind), drawn.stats, drawn.fallback
        if kind == "train" or fallback == "train":
            clients, kinds, stats, aggregating = self._train_round(grid, flwr, r)
            windows.append(aggregating)
        if self.gradsamp is not None:
            with self.meter.window("train") as observing:
                self.gradsamp.observe(self.algorithm, kind, fallback)
            windows.append(observing)
        evals, parts = self._evaluate(grid, flwr, r)
        with self.meter.window("eval") as server_eval:
            held_out, _ = evaluate(self.algorithm, self.held_out, self.device)
        adjusted = self._adjust(r, clients, parts) if self.fedga is not None else None
        self.gaps.resume()
        metrics = {**rounds.merge_metrics(list(parts.values())), **held_out}
        by_client = {c["client"]: c for c in clients}
        for client, (energy, sent, received) in evals.items():
            entry = by_client.setdefault(client, {"client": client, "kind": None, "examples": None, "steps": 0,
                                                  "energy": {"train": None}, "bytes": {"received": 0, "sent": 0}})
            entry["energy"]["eval"] = energy
            entry["bytes"]["received"] += received
            entry["bytes"]["sent"] += sent
            entry["_eval"] = _reading(energy)
        clients = [by_client[c] for c in sorted(by_client)]
        server_train = rounds.phase("train", windows)
        train = rounds.phase("train", [server_train] + [c.pop("_train") for c in clients if "_train" in c])
        ev = rounds.phase("eval", [server_eval] + [c.pop("_eval") for c in clients if "_eval" in c]
                          + [c.pop("_validate") for c in clients if "_validate" in c])
        if kinds and kind == "train":
            kind = rounds.round_kind(kinds)
        line = rounds.round_line(
            r, self.steps, self.updates, kind, sampler_name(self.exp), metrics, rounds.merge_stats(stats),
            sampler_stats, train, ev, other, clients,
            {"energy": {"train": server_train.to_dict(), "eval": server_eval.to_dict()}}, fallback)
        if self.fedga is not None:
            line["federated"]["fedga"] = adjusted
        self.records.round(line, self.algorithm, self.gradsamp, self.updates,
                           self.fedga.state_dict() if self.fedga is not None else None)

    def _adjust(self, r: int, clients: list[dict], parts: dict[int, dict]) -> dict:
        """FedDG-GA's update after round r: each trained client's validation metric of its local model
        (its report) and of the aggregated one (its evaluation), pooled over its validation splits."""
        assert self.fedga is not None
        local, global_ = {}, {}
        for entry in clients:
            splits = entry.pop("_validation", None)
            if splits is None:
                continue
            c = entry["client"]
            local[c] = validation_metric(splits, list(splits), self.fed.ga_metric)
            global_[c] = validation_metric(parts[c], list(splits), self.fed.ga_metric)
            entry["validation"] = {"metric": self.fed.ga_metric, "local": local[c], "global": global_[c]}
        weights = self.fedga.update(r, local, global_) if local else self.fedga.weights()  # no client trained
        return {"metric": self.fed.ga_metric, "weights_after": {str(c): w for c, w in weights.items()}}

    def _train_round(self, grid: Any, flwr: Any, r: int) -> tuple[list[dict], list[str], list, Any]:
        """The sampled clients train from the global model; the strategy aggregates their replies."""
        chosen = sample_clients(self.seed, r, self.fed.clients, self.fed.fraction)
        strategy = strategy_for(self.exp)
        arrays = flwr.app.ArrayRecord(once(self._global_state(), self.aliases))
        config = flwr.app.ConfigRecord({"round": r})
        messages = list(strategy.configure_train(r + 1, arrays, config, _Chosen([self.nodes[c] for c in chosen])))
        replies = _by_client(_checked(grid.send_and_receive(messages, timeout=ROUND_TIMEOUT_S), "training"))
        reports = [_report(reply) for reply in replies]
        weights = self._weights([(int(rep["client"]), int(rep["examples"])) for rep in reports])
        if self.fedga is not None:
            for reply, rep in zip(replies, reports):
                reply.content["metrics"][WEIGHT_KEY] = weights[int(rep["client"])]
        with self.meter.window("train") as aggregating:
            new, _ = strategy.aggregate_train(r + 1, replies)
            if new is None:
                raise DagradError(f"federated: round {r}: no client's update could be aggregated")
            self.algorithm.load_state_dict(_to_state(new, self._global_state(), self.aliases))
        clients, kinds, stats = [], [], []
        for rep in reports:
            self.updates += int(rep["steps"])
            kinds.append(rep["kind"])
            if rep["stats"]:
                stats.append((int(rep["examples"]), rep["stats"]))
            clients.append({"client": int(rep["client"]), "kind": rep["kind"], "examples": int(rep["examples"]),
                            "steps": int(rep["steps"]), "sampler_stats": rep.get("sampler_stats"),
                            "energy": {"train": rep["energy"]},
                            "bytes": {"received": int(rep["bytes_received"]), "sent": int(rep["bytes_sent"])},
                            "weight": weights[int(rep["client"])], "_train": _reading(rep["energy"])})
            if rep.get("validation") is not None:
                clients[-1]["energy"]["validation"] = rep["validation"]["energy"]
                clients[-1]["_validation"] = rep["validation"]["splits"]
                clients[-1]["_validate"] = _reading(rep["validation"]["energy"])
        return clients, kinds, stats, aggregating

    def _weights(self, counts: list[tuple[int, int]]) -> dict[int, float]:
        """Each trained client's share in this round's aggregate: FedDG-GA's coefficients, else its share of
        the examples (what Flower's FedAvg and FedProx weigh by)."""
        if self.fedga is not None:
            return self.fedga.coefficients([c for c, _ in counts])
        total = sum(n for _, n in counts)
        return {c: n / total for c, n in counts}

    def _evaluate(self, grid: Any, flwr: Any, r: int) -> tuple[dict[int, tuple], dict[int, dict]]:
        """Every client evaluates the global model on its splits: per client (its window, bytes sent, bytes
        received), and per client its per-split figures."""
        arrays = flwr.app.ArrayRecord(once(self._global_state(), self.aliases))
        record = flwr.app.RecordDict({"arrays": arrays, "config": flwr.app.ConfigRecord({"round": r})})
        messages = [flwr.app.Message(record, dst_node_id=self.nodes[c], message_type=flwr.app.MessageType.EVALUATE)
                    for c in sorted(self.nodes)]
        out, parts = {}, {}
        for reply in _checked(grid.send_and_receive(messages, timeout=ROUND_TIMEOUT_S), "evaluation"):
            rep = _report(reply)
            parts[int(rep["client"])] = rep["splits"]
            out[int(rep["client"])] = (rep["energy"], int(rep["bytes_sent"]), int(rep["bytes_received"]))
        return out, parts

    def _global_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.algorithm.state_dict().items()}


def _to_state(arrays: Any, like: dict[str, torch.Tensor], alias: dict[str, str]) -> dict[str, torch.Tensor]:
    """An aggregated ArrayRecord as a state dict with the model's own dtypes (integer buffers stay integers):
    aliases (not sent) take the aggregate of the tensor they alias; keys the clients keep to themselves (not
    sent, so not aggregated) keep the global model's values."""
    state = with_aliases(arrays.to_torch_state_dict(), alias)
    return {k: like[k] if k not in state else state[k].to(like[k].dtype) if like[k].is_floating_point()
            else state[k].round().to(like[k].dtype) for k in like}


def _by_client(replies: list) -> list:
    """The replies in client order: runtimes hand them over as they arrive, and a floating-point sum
    depends on its order, so aggregating in arrival order would make the global model (and every figure
    after it) differ between runs and runtimes."""
    return sorted(replies, key=lambda reply: int(_report(reply)["client"]))


def _report(reply: Any) -> dict:
    """The dagrad part of a client's reply (its JSON report)."""
    return json.loads(reply.content["report"]["json"])


def _reading(data: Optional[dict]) -> Any:
    from dagrad.energy.reading import Reading

    return Reading.from_dict(data) if data else None


def _checked(replies: Any, what: str) -> list:
    """The replies, or a DagradError carrying the first client's own one-line message."""
    replies = list(replies)
    for reply in replies:
        if reply.has_error():
            reason = (reply.error.reason or "").strip().splitlines()
            raise DagradError(f"federated: a client's {what} failed: {reason[-1] if reason else 'no reason given'}")
        if "report" in reply.content and "error" in reply.content["report"]:
            raise ConfigError(str(reply.content["report"]["error"]))
    return replies
