"""`load_model(run, which)`: a kept model rebuilt from its run's records header, in eval mode, with the
transform that turns an image into the input it expects.

The network is built without pretrained weights (the kept file holds every tensor), so loading needs
neither internet nor the ImageNet cache; it does need the network's code (timm for `timm:` networks, the
plugin that registered a plugin network), and says so in one line when that is missing."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from dagrad.utils.errors import CheckpointError, ConfigError, DagradError
from dagrad.models.kept import MODELS_DIR, read_manifest, read_model_file

Which = Union[str, int]


class Predictor(nn.Module):
    """A trained algorithm as a plain classifier: `forward(x)` returns class logits (its `predict`)."""

    def __init__(self, algorithm: nn.Module):
        super().__init__()
        self.algorithm = algorithm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.algorithm.predict(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.algorithm.predict(x)


@dataclass
class LoadedModel:
    """What `load_model` returns: the model (eval mode), its evaluation transform and where it came from."""

    model: Predictor
    transform: Callable[[Any], torch.Tensor]
    which: str
    epoch: Optional[int]
    file: Path
    class_names: list[str]
    input_shape: tuple[int, int, int]
    header: dict

    def __iter__(self):  # model, transform = load_model(...)
        return iter((self.model, self.transform))


def run_folder(run: Any) -> Path:
    """A run folder from a path (folder or record file) or an API/analysis Run."""
    if hasattr(run, "folder"):
        return Path(run.folder)
    if hasattr(run, "path"):
        return Path(run.path).parent
    path = Path(run)
    return path.parent if path.is_file() else path


def entry_name(which: Which, manifest: dict) -> str:
    """The manifest key for `which`: last, best, swad, or an epoch number (kept as last, best or epoch-N)."""
    models = manifest["models"]
    if isinstance(which, numbers.Integral) and not isinstance(which, bool):
        which = int(which)  # numpy integers from a report's frame
    if which == "averaged":  # the report's name for SWAD's averaged model
        which = "swad"
    if isinstance(which, bool) or not isinstance(which, (int, str)):
        raise ConfigError(f"which: expected last, best, swad or an epoch number, got {which!r}")
    if isinstance(which, str) and which.isdigit():
        which = int(which)
    if isinstance(which, int):
        names = [k for k, e in sorted(models.items()) if e.get("epoch") == which and k != "swad"]
        if names:
            return names[0]
        kept = sorted({e["epoch"] for k, e in models.items() if e.get("epoch") is not None})
        raise CheckpointError(f"epoch {which}'s model was not kept; kept epochs: {kept or 'none'} (keep every epoch "
                              f"with checkpoints.keep=[last,best,swad,every])")
    if which not in models:
        raise CheckpointError(f"this run kept no {which!r} model; it kept: {', '.join(sorted(models)) or 'none'}"
                              + (" (swad exists only for runs with averaging.name=swad)" if which == "swad" else ""))
    return which


def load_model(run: Any, which: Which = "best", device: str | torch.device = "cpu",
               plugins: Any = ()) -> LoadedModel:
    """The kept model `which` ("last", "best", "swad" or an epoch number) of `run` (a folder, record file or
    Run), on `device`, in eval mode, with its evaluation transform. Unpacks as `model, transform`.
    `plugins`: the plugins (or a PluginConsent) the run's config names and you consent to import."""
    from dagrad.records.files import RECORDS_NAME, read_records, split_run

    folder = run_folder(run)
    manifest = read_manifest(folder)
    name = entry_name(which, manifest)
    entry = manifest["models"][name]
    header = split_run(read_records(folder / RECORDS_NAME))[0]
    algorithm = build_algorithm(header, manifest.get("model") or {}, plugins)
    state = read_model_file(folder / MODELS_DIR / entry["file"], entry)
    try:
        algorithm.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{folder / MODELS_DIR / entry['file']} does not fit the network its records "
                              f"describe ({str(exc).splitlines()[0][:160]})") from None
    model = Predictor(algorithm).to(torch.device(device)).eval()
    facts = manifest["model"]
    shape = tuple(facts["input_shape"])
    return LoadedModel(model, eval_transform(header, shape), name, entry.get("epoch"),
                       folder / MODELS_DIR / entry["file"], list(facts.get("class_names") or []), shape, header)


def build_algorithm(header: dict, facts: dict, plugins: Any = ()) -> nn.Module:
    """The run's algorithm, freshly built (no pretrained weights) from its header and the model facts."""
    from dagrad.algorithms import build
    from dagrad.networks import build_featurizer, network_entry
    from dagrad.plugins import PluginConsent, import_plugins

    config = header.get("config") or {}
    needed = list(config.get("plugins") or [])
    if needed:
        import_plugins(needed, plugins if isinstance(plugins, PluginConsent) else PluginConsent.of(plugins))
    network = config.get("network") or {}
    name = network.get("name", "digits_cnn")
    if not facts.get("input_shape") or not facts.get("num_classes"):
        raise CheckpointError("the kept-models manifest lacks the model's input shape or class count")
    try:
        entry, _ = network_entry(name)
        options = entry.resolve(network.get("options") or {}, "network.options")
        for key, value in (header.get("searched") or {}).items():
            if key.startswith("network.options."):
                options[key.rsplit(".", 1)[1]] = value
        if "pretrained" in options:
            options["pretrained"] = None  # every tensor comes from the kept file
        featurizer = build_featurizer(name, options, tuple(facts["input_shape"]))
        algorithm_name = (config.get("algorithm") or {}).get("name", "erm")
        return build(algorithm_name, header.get("hparams") or {}, featurizer, int(facts["num_classes"]),
                     int(facts.get("n_train_envs") or len(header.get("data", {}).get("train_envs", [])) or 1))
    except DagradError as exc:
        raise type(exc)(f"cannot rebuild the network {name!r} of this run here: {exc}") from None
    except ImportError as exc:
        raise ConfigError(f"cannot rebuild the network {name!r} of this run here: it needs the package "
                          f"{exc.name or exc}, which is not installed") from None


def eval_transform(header: dict, input_shape: tuple[int, ...]) -> Callable[[Any], torch.Tensor]:
    """Image -> input tensor as the run evaluated: the dataset's evaluation transform for image datasets;
    for embedded tensor datasets (the digits) a resize to the input size in the input's channels, 0..1."""
    from torchvision import transforms as T

    from dagrad.datasets import DATASETS

    data = (header.get("config") or {}).get("data") or {}
    channels, height, width = input_shape
    try:
        spec = DATASETS.load(data.get("name", ""))
    except DagradError:
        spec = None
    if spec is not None and spec.layout != "embedded":
        return spec.transforms(data.get("image_size"))[2]
    steps = [T.Grayscale(1)] if channels == 1 else [T.Lambda(lambda im: im.convert("RGB"))]
    return T.Compose([*steps, T.Resize((height, width)), T.ToTensor()])
