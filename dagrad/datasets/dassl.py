"""Dassl.pytorch's layouts, whose split files (or split folders) give `official_splits`:

- PACS: `pacs/images/<domain>/<class>/*`, lists `pacs/splits/<domain>_{train,crossval}_kfold.txt` with lines
  `<domain>/<class>/<file> <label 1..7>` (1-indexed). train -> `in`, crossval -> `out`. As Dassl, the
  unreadable `sketch/dog/n02103406_4068-1.png` is skipped.
- Office-Home-DG: `office_home_dg/<domain>/{train,val}/<class>/*`. train -> `in`, val -> `out`.
- DomainNet: `domainnet/<domain>/<class>/*`, lists `domainnet/splits/<domain>_{train,test}.txt`
  (0-indexed labels). train -> `in`, test -> `out`.

Every environment holds all of its listed images; with data.split=random they are re-split 80/20
as DomainBed does. (Dassl itself tests on train+crossval of the PACS target and on the official test
list of the DomainNet target; dagrad's test split is the held-out environment's `in` part.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dagrad.datasets.base import DomainSuite
from dagrad.datasets.folders import FileEnvironment, data_root, missing, suite_from_tree
from dagrad.datasets.specs import dataset_spec
from dagrad.datasets.index import FileIndex, index_tree
from dagrad.utils.errors import DataError

#: images Dassl leaves out of PACS because they cannot be read
PACS_ERROR_PATHS = frozenset({"sketch/dog/n02103406_4068-1.png"})


def read_split_file(path: Path, label_base: int, skip: frozenset = frozenset()) -> list[tuple[str, int]]:
    """(relative path, 0-based label) per line `<path> <label>`; a malformed line is a DataError."""
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{number}: expected '<path> <label>', got {line.strip()!r}")
        rel = parts[0].strip().lstrip("./")
        if rel in skip:
            continue
        label = int(parts[1]) - label_base
        if label < 0:
            raise DataError(f"{path}:{number}: label {parts[1]} is below {label_base}, the first label of this file")
        items.append((rel, label))
    return items


def _split_env(name: str, base: Path, lists: list[list[tuple[str, int]]], check_files: bool,
               num_classes: int) -> tuple[FileEnvironment, tuple[np.ndarray, np.ndarray], dict[int, str]]:
    """One environment from its train list and its held-out list: (env, (in, out), label -> class dir)."""
    train, held = lists
    items = train + held
    pairs = [tuple(rel.rsplit("/", 1)) if "/" in rel else ("", rel) for rel, _ in items]
    files = FileIndex.from_pairs(str(base), pairs)
    labels = np.asarray([label for _, label in items], dtype=np.int64)
    if len(labels) and labels.max() >= num_classes:
        raise DataError(f"{name}: label {labels.max()} in the split files of {base}; expected below {num_classes}")
    if check_files:
        _require_files(name, base, files)
    class_of_label: dict[int, str] = {}
    for (d, _), label in zip(pairs, labels.tolist()):
        cls = d.rsplit("/", 1)[-1]
        if class_of_label.setdefault(label, cls) != cls:
            raise DataError(f"{name}: label {label} names both {class_of_label[label]!r} and {cls!r} in the split files")
    n_in = len(train)
    return FileEnvironment(name, files, labels), (np.arange(n_in), np.arange(n_in, len(items))), class_of_label


def _require_files(name: str, base: Path, files: FileIndex) -> None:
    """Listed files that are absent (compared with directory listings, not per-file stats)."""
    on_disk: dict[str, set[str]] = {}
    for d in files.dirs:
        directory = base / d
        try:
            on_disk[d] = set(index_tree(directory, [""], use_cache=False).names(""))
        except OSError:
            on_disk[d] = set()
    absent = [files.relpath(k) for k in range(len(files)) if files.name(k) not in on_disk[files.dirs[files.dir_of[k]]]]
    if absent:
        raise DataError(f"{name}: {len(absent)} file(s) listed in the split files are missing under {base}, "
                        f"e.g. {absent[0]} (set data.options.check_files=false to defer the error to loading)")


def _suite(cfg: Any, envs: list[FileEnvironment], splits: list, labels_to_class: list[dict[int, str]],
           num_classes: int) -> DomainSuite:
    class_names = [""] * num_classes
    for mapping in labels_to_class:
        for label, cls in mapping.items():
            class_names[label] = class_names[label] or cls
    size, train_tf, eval_tf = dataset_spec(cfg.name).transforms(cfg.image_size)
    notes = {"official_split": "train list -> in, held-out list -> out"}
    unlisted = [i for i, c in enumerate(class_names) if not c]
    if unlisted:
        notes["classes_without_images"] = unlisted
    return DomainSuite(cfg.name, envs, num_classes, (3, size, size), train_tf, eval_tf, class_names,
                       official_splits=splits, notes=notes)


def _from_lists(cfg: Any, base: Path, split_dir: Path, names: tuple[str, str], label_base: int,
                skip: frozenset = frozenset()) -> DomainSuite:
    entry = dataset_spec(cfg.name)
    opts = cfg.options
    layout = f"ROOT/{entry.directory}/... with split files {split_dir.name}/<domain>_{{{','.join(names)}}}..."
    if not split_dir.is_dir():
        raise missing(cfg.name, data_root(cfg), split_dir, layout)
    envs, splits, mappings = [], [], []
    for domain in entry.environments:
        lists = [read_split_file(split_dir / n.format(domain=domain), label_base, skip) for n in names]
        env, split, mapping = _split_env(domain, base, lists, bool(opts["check_files"]), entry.num_classes)
        envs.append(env)
        splits.append(split)
        mappings.append(mapping)
    return _suite(cfg, envs, splits, mappings, entry.num_classes)


def pacs_dassl(cfg: Any) -> DomainSuite:
    root = data_root(cfg) / "pacs"
    return _from_lists(cfg, root / "images", root / "splits",
                       ("{domain}_train_kfold.txt", "{domain}_crossval_kfold.txt"), 1, PACS_ERROR_PATHS)


def domain_net_dassl(cfg: Any) -> DomainSuite:
    root = data_root(cfg) / "domainnet"
    return _from_lists(cfg, root, root / "splits", ("{domain}_train.txt", "{domain}_test.txt"), 0)


def office_home_dg(cfg: Any) -> DomainSuite:
    """Office-Home-DG: the train and val folders of a domain form one environment; labels by class name."""
    entry = dataset_spec(cfg.name)
    opts = cfg.options
    root = data_root(cfg)
    base = root / entry.directory
    layout = "ROOT/office_home_dg/{art,clipart,product,real_world}/{train,val}/<class>/<image>"
    absent = [f"{d}/{s}" for d in entry.environments for s in ("train", "val") if not (base / d / s).is_dir()]
    if absent:
        raise missing(cfg.name, root, base / absent[0], layout)
    parts = {d: suite_from_tree(cfg.name, base / d, ["train", "val"], cfg, bool(opts["cache"]))
             for d in entry.environments}
    class_names = sorted(set().union(*(p.class_names for p in parts.values())))
    envs, splits = [], []
    for d, part in parts.items():
        remap = np.asarray([class_names.index(c) for c in part.class_names], dtype=np.int64)
        train_env, val_env = part.environments
        pairs = [(f"{e.name}/{e.files.dirs[e.files.dir_of[k]]}", e.files.name(k))
                 for e in (train_env, val_env) for k in range(len(e))]
        labels = remap[np.concatenate([train_env.labels, val_env.labels])]
        envs.append(FileEnvironment(d, FileIndex.from_pairs(str(base / d), pairs), labels))
        splits.append((np.arange(len(train_env)), np.arange(len(train_env), len(labels))))
    return _suite(cfg, envs, splits, [dict(enumerate(class_names))], len(class_names))
