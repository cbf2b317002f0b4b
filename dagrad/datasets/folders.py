"""Image datasets stored as folders: `<dataset dir>/<environment>/<class>/<image>` (DomainBed's layout
for PACS, Office-Home, DomainNet, VLCS and TerraIncognita) and the same layout anywhere as `folder`
("bring your own dataset"). Environments are the sorted directory names, as DomainBed sorts them;
classes are the sorted union of the class directories that hold images, so a label means the same class
in every environment even where one environment lacks a class (the suite's notes say which); an empty
class folder is skipped with a warning, never counted as a class without images."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from dagrad.datasets.base import DomainSuite, Environment
from dagrad.datasets.specs import DatasetSpec, dataset_spec
from dagrad.datasets.index import FileIndex, index_tree
from dagrad.utils.errors import ConfigError, DataError


class FileEnvironment(Environment):
    """One environment of image files, opened lazily: load() returns an RGB PIL image and lets PIL's
    errors (OSError, UnidentifiedImageError) propagate so the bundle can name the file."""

    def __init__(self, name: str, files: FileIndex, labels: np.ndarray):
        if len(files) != len(labels):
            raise ValueError(f"{name}: {len(files)} files but {len(labels)} labels")
        self.name, self.files, self._labels = name, files, np.asarray(labels, dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def load(self, index: int) -> Image.Image:
        with Image.open(self.files.path(index)) as image:
            return image.convert("RGB")

    def describe(self, index: int) -> str:
        return self.files.path(index)


def data_root(cfg: Any) -> Path:
    if not cfg.root:
        raise ConfigError(f"data.root: {cfg.name} is read from disk; set data.root to the data directory "
                          f"(e.g. data.root=/data), the folder that holds the dataset's own directory")
    return Path(cfg.root).expanduser()


def missing(name: str, root: Path, looked: Path, layout: str, what: str = "not found") -> DataError:
    """One error saying where dagrad looked, the layout it expects and how to get the data."""
    how = (f"get it with `dagrad data download {name} --root {root}`" if dataset_spec(name).download
           else "dagrad cannot download it; see the README section 'Real datasets'")
    return DataError(f"{name}: {what} at {looked}; expected layout {layout}; {how}")


def suite_from_tree(name: str, directory: Path, envs: Optional[list[str]], cfg: Any, use_cache: bool,
                    exclude: Optional[set[str]] = None) -> DomainSuite:
    """Index `directory/<env>/<class>/*` and turn it into a DomainSuite with consistent labels.
    `exclude` holds `env/class/file` paths to leave out (e.g. DomainNet's duplicates).

    A class folder without images is not a class of its environment: it is skipped with a warning naming
    it (and listed in the notes as `empty_class_folders`), so it never becomes a class with no examples."""
    tree = index_tree(directory, envs, use_cache=use_cache)
    counts = {env: tree.class_counts(env) for env in tree.environments}
    class_names = sorted({c for per_env in counts.values() for c, n in per_env.items() if n})
    empty = {env: sorted(c for c, n in per_env.items() if not n) for env, per_env in counts.items()}
    empty = {env: classes for env, classes in empty.items() if classes}
    if not class_names:
        raise DataError(f"{name}: no images in class directories under {directory}/<environment>/<class>/")
    class_of = {c: i for i, c in enumerate(class_names)}
    environments, notes = [], {"index_from_cache": tree.from_cache}
    if empty:
        notes["empty_class_folders"] = empty
        listing = ", ".join(f"{env}/{c}" for env, classes in empty.items() for c in classes)
        warnings.warn(f"{name}: skipping empty class folder(s) under {directory}: {listing} (no images; "
                      f"`dagrad data check` lists them)")
    for env in tree.environments:
        files, labels = tree.files(env, class_of)
        if exclude:
            keep = np.fromiter((f"{env}/{p}" not in exclude for p in files.relpaths()), dtype=bool, count=len(files))
            notes.setdefault("excluded", {})[env] = int((~keep).sum())
            files, labels = files.select(keep), labels[keep]
        if len(files) == 0:
            raise DataError(f"{name}: environment {env!r} has no images under {directory / env}")
        absent = sorted(set(class_names) - set(counts[env]))
        if absent:
            notes.setdefault("missing_classes", {})[env] = absent
        environments.append(FileEnvironment(env, files, labels))
    size, train_tf, eval_tf = dataset_spec(cfg.name).transforms(cfg.image_size)
    return DomainSuite(name, environments, len(class_names), (3, size, size), train_tf, eval_tf, class_names,
                       notes=notes)


def _check_environments(name: str, spec: DatasetSpec, root: Path, directory: Path) -> list[str]:
    if not directory.is_dir():
        raise missing(name, root, directory, spec.layout_text())
    absent = [e for e in spec.environments if not (directory / e).is_dir()]
    if absent:
        raise missing(name, root, directory, spec.layout_text(), f"environment(s) {', '.join(absent)} missing")
    return list(spec.environments)


def read_duplicates(path: Path) -> set[str]:
    """Paths `<domain>/<class>/<file>` from a duplicates list (one per line, as DomainBed's
    misc/domain_net_duplicates.txt)."""
    if not path.is_file():
        raise DataError(f"data.options.duplicates_file: no file at {path}")
    return {line.strip().strip("/") for line in path.read_text().splitlines() if line.strip()}


def domainbed(cfg: Any) -> DomainSuite:
    """PACS, Office-Home, DomainNet, VLCS or TerraIncognita in DomainBed's folder layout."""
    spec, opts = dataset_spec(cfg.name), cfg.options
    root = data_root(cfg)
    directory = root / spec.directory
    envs = _check_environments(cfg.name, spec, root, directory)
    exclude = None
    if opts.get("remove_duplicates"):
        listed = opts["duplicates_file"] or directory / "domain_net_duplicates.txt"
        exclude = read_duplicates(Path(listed).expanduser())
    elif opts.get("duplicates_file"):
        raise ConfigError("data.options.duplicates_file: only used with data.options.remove_duplicates=true")
    suite = suite_from_tree(cfg.name, directory, envs, cfg, bool(opts["cache"]), exclude)
    if "remove_duplicates" in opts:
        suite.notes["duplicates"] = ("DomainBed deletes the 9,431 files listed in its misc/domain_net_duplicates.txt; "
                                     "set remove_duplicates=true and duplicates_file=<list> to leave them out "
                                     "without deleting")
    return suite


def folder_environments(cfg: Any) -> Optional[list[str]]:
    """The `folder` dataset's environments without reading any image: the `environments` option, else the
    subdirectories of data.root (None when the root is not set or not there yet)."""
    if cfg.options.get("environments") is not None:
        return list(cfg.options["environments"])
    if not cfg.root or not Path(cfg.root).expanduser().is_dir():
        return None
    return sorted(p.name for p in Path(cfg.root).expanduser().iterdir() if p.is_dir() and not p.name.startswith("."))


def folder(cfg: Any) -> DomainSuite:
    """Bring your own dataset: `data.root/<environment>/<class>/<image>`; option `environments` picks
    and orders a subset (default: every subdirectory, sorted)."""
    opts = cfg.options
    root = data_root(cfg)
    layout = "ROOT/<environment>/<class>/<image> with ROOT = data.root"
    if not root.is_dir():
        raise DataError(f"folder: no directory at {root}; expected layout {layout}")
    envs = opts["environments"]
    if envs is not None:
        absent = [e for e in envs if not (root / e).is_dir()]
        if absent:
            raise DataError(f"folder: environment directory {root / absent[0]} not found; expected layout {layout}")
    suite = suite_from_tree("folder", root, envs, cfg, bool(opts["cache"]))
    if len(suite.environments) < 2:
        raise DataError(f"folder: found {len(suite.environments)} environment under {root}; domain "
                        f"generalization needs at least two (layout {layout})")
    return suite
