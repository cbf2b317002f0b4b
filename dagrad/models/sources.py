"""What a kept model is scored on or predicts for: a registered dataset's environments, a folder tree of
images, or a list of image files; labels are mapped to the model's own classes by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dagrad.datasets.index import is_image
from dagrad.utils.errors import ConfigError, DataError


class Images(Dataset):
    """Image files with labels (-1: unknown), each read as RGB and passed through `transform`."""

    def __init__(self, files: list[Path], labels: Sequence[int], transform: Callable[[Any], torch.Tensor]):
        self.files, self.labels, self.transform = files, np.asarray(labels, dtype=np.int64), transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        try:
            with Image.open(self.files[k]) as image:
                x = self.transform(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"unreadable image {self.files[k]}: {exc}") from None
        return x, int(self.labels[k])


class Examples(Dataset):
    """Some examples of a dataset environment, its labels mapped to the model's classes."""

    def __init__(self, env: Any, transform: Optional[Callable], mapping: np.ndarray):
        self.env, self.transform, self.mapping = env, transform, mapping

    def __len__(self) -> int:
        return len(self.env)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        x = self.env.load(k)
        return (self.transform(x) if self.transform is not None else x), int(self.mapping[self.env.labels[k]])


def _sorted_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p.name) and not p.name.startswith("."))


def _class_index(names: Sequence[str], model_classes: list[str], where: str) -> list[int]:
    unknown = [n for n in names if n not in model_classes]
    if unknown:
        raise DataError(f"{where}: class {unknown[0]!r} is not one of the model's classes "
                        f"({', '.join(model_classes)})")
    return [model_classes.index(n) for n in names]


def folder_tree(root: Path, model_classes: list[str], transform: Callable) -> dict[str, Dataset]:
    """`root/<class>/<image>` (one environment, named after root) or `root/<environment>/<class>/<image>`."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise DataError(f"{root}: no class folders; expected ROOT/<class>/<image> or ROOT/<environment>/<class>/<image>")
    flat = any(is_image(f.name) for d in subdirs for f in d.iterdir() if f.is_file())
    envs = {root.name: root} if flat else {d.name: d for d in subdirs}
    out: dict[str, Dataset] = {}
    for name, env_dir in envs.items():
        classes = sorted(p for p in env_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        index = _class_index([c.name for c in classes], model_classes, str(env_dir))
        files, labels = [], []
        for label, class_dir in zip(index, classes):
            found = _sorted_images(class_dir)
            files += found
            labels += [label] * len(found)
        if files:
            out[name] = Images(files, labels, transform)
    if not out:
        raise DataError(f"{root}: no images found (extensions {', '.join(('.jpg', '.png', '...'))})")
    return out


def dataset_envs(name: str, run_data: dict, model_classes: list[str], root: Optional[str]) -> dict[str, Dataset]:
    """The environments of a registered dataset, built as the run built its own (same options and image
    size when it is the run's dataset), labels mapped to the model's classes by name."""
    from dagrad.config.schema import DataConfig, from_dict
    from dagrad.datasets import build_suite

    if name == run_data.get("name"):
        cfg = from_dict(run_data, DataConfig, "data.")
    else:
        cfg = DataConfig(name=name, image_size=run_data.get("image_size"))
    if root is not None:
        cfg = dataclasses.replace(cfg, root=root)
    suite = build_suite(cfg)
    names = suite.class_names or [str(i) for i in range(suite.num_classes)]
    mapping = np.asarray(_class_index(names, model_classes, f"dataset {name}"), dtype=np.int64)
    return {env.name: Examples(env, suite.eval_transform, mapping) for env in suite.environments}


def pick_envs(envs: dict[str, Dataset], wanted: Optional[Sequence[str]]) -> dict[str, Dataset]:
    """`--envs`: environments by name or index, in the order given."""
    if not wanted:
        return envs
    names = list(envs)
    out = {}
    for item in wanted:
        name = names[int(item)] if str(item).isdigit() and int(item) < len(names) else str(item)
        if name not in envs:
            raise ConfigError(f"--envs: no environment {item!r}; environments: "
                              + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
        out[name] = envs[name]
    return out


def resolve_data(data: str, header: dict, model_classes: list[str], transform: Callable,
                 envs: Optional[Sequence[str]] = None, root: Optional[str] = None) -> dict[str, Dataset]:
    """`--data NAME_OR_FOLDER` as named environments of labelled examples."""
    from dagrad.datasets import DATASETS

    path = Path(data).expanduser()
    if path.is_dir():
        found = folder_tree(path, model_classes, transform)
    elif data in DATASETS:
        found = dataset_envs(data, (header.get("config") or {}).get("data") or {}, model_classes, root)
    else:
        raise ConfigError(f"--data: {data!r} is neither a folder nor a registered dataset (`dagrad data list` names "
                          f"them)")
    return pick_envs(found, envs)


def image_files(items: Sequence[str]) -> list[Path]:
    """`predict`'s inputs: image files, and every image below the folders given (sorted)."""
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            files += _sorted_images(path)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"no image file or folder at {path}")
    if not files:
        raise DataError(f"no images found in {', '.join(map(str, items))}")
    return files
