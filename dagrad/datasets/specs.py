"""Every fact dagrad knows about a dataset, in one `DatasetSpec` per dataset, registered by name.

A spec holds the builder (`fn(data_cfg) -> DomainSuite`, given the data config with the dataset's own
options resolved), where the data lives and in which layout, the environments in DomainBed's (sorted)
order, the class count, the published image counts with their source (None = nobody published one, so
`check` says "unknown" rather than guessing), the download sources, whether the images are small (the
algorithms then use DomainBed's MNIST learning rates), and the default image size and transforms.
`dagrad data list|check|download`, the bundle and the hyperparameter tables all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from dagrad.registry import Entry, Option, Registry, load_target, target_module


@dataclass(frozen=True)
class Remote:
    """One archive of a download source."""

    filename: str  # the archive's name on disk (and under a mirror)
    url: str
    moves: Mapping[str, str]  # extracted top-level name -> destination relative to the data root
    sha256: Optional[str] = None  # only where the publisher gives one
    gdrive: bool = False


@dataclass(frozen=True)
class Source:
    """Where a dataset can be downloaded from and how its archives become dagrad's layout."""

    remotes: tuple[Remote, ...]
    env_root: str  # where the environment directories are after extraction, relative to the data root
    origin: str = ""  # whose download recipe this follows
    expected: Mapping[str, int] = field(default_factory=dict)  # environment -> images after extraction
    remove_duplicates: bool = False  # DomainNet: delete DomainBed's listed duplicates, as DomainBed does


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """What dagrad knows about a dataset; built by keyword only (`DatasetSpec(builder=..., description=...)`)."""

    builder: Any  # fn(data_cfg) -> DomainSuite, or a lazy "module:function" string
    description: str
    layout: str = "embedded"  # embedded | domainbed | dassl_* | wilds_* | folder | a plugin's own word
    directory: str = ""  # under the data root ("" = the root itself)
    environments: tuple[str, ...] = ()  # in DomainBed's (sorted) order; empty = whatever is found
    num_classes: Optional[int] = None
    counts: Mapping[str, Optional[int]] = field(default_factory=dict)  # environment -> published count
    counts_total: Optional[int] = None
    counts_source: str = ""
    download: Optional[Source] = None
    small_images: bool = False
    #: DomainBed's random-search range of log2(batch size) when it differs from the default (DomainNet: (3, 5))
    batch_size_exponents: Optional[tuple[float, float]] = None
    image_size: int = 224
    #: which `data.protocol` values the dataset supports besides DomainBed's (e.g. ("wilds",))
    protocols: tuple[str, ...] = ()
    notes: str = ""
    #: fn(data_cfg) -> environment names, or None when they cannot be known without reading the data; for
    #: datasets whose environments depend on options (the digits' angles), so sweeps check test_envs up front
    environment_names: Any = None
    #: fn(name, root, options) -> CheckReport, for data that are not image folders (e.g. IDX files); None:
    #: `dagrad data check` inspects the images the builder lists
    checker: Any = None
    #: fn(name, root, progress, base_url) -> folder, for sources that are not archives; None: `download` below
    downloader: Any = None

    def build(self, cfg: Any) -> Any:
        """The DomainSuite for a data config whose `options` are resolved."""
        return load_target(self.builder)(cfg)

    def environments_for(self, cfg: Any) -> Optional[tuple[str, ...]]:
        """The environment names a data config (options resolved) will have, without building any data;
        None when only building can tell."""
        if self.environments:
            return tuple(self.environments)
        if self.environment_names is None:
            return None
        names = load_target(self.environment_names)(cfg)
        return None if names is None else tuple(names)

    def check(self, name: str, root: Any, options: Any) -> Any:
        """The dataset's own `dagrad data check` report (only where `checker` is set)."""
        return load_target(self.checker)(name, root, options)

    def fetch(self, name: str, root: Any, progress: bool, base_url: Optional[str]) -> Any:
        """The dataset's own download (only where `downloader` is set); returns its folder."""
        return load_target(self.downloader)(name, root, progress, base_url)

    def transforms(self, size: Optional[int]) -> tuple[int, Callable, Callable]:
        """(size, train transform, eval transform): DomainBed's augmentation and plain resize."""
        from dagrad.datasets import transforms

        size = self.image_size if size is None else int(size)
        return size, transforms.train_transform(size), transforms.eval_transform(size)

    def layout_text(self) -> str:
        envs = ",".join(self.environments) if self.environments else "<environment>"
        return f"ROOT/{self.directory + '/' if self.directory else ''}{{{envs}}}/<class>/<image>"


def _build(entry: Entry, options: dict[str, Any], data: Any) -> Any:
    """The DomainSuite of a data config (a DataConfig), with the dataset's resolved options."""
    import dataclasses

    return entry.load().build(dataclasses.replace(data, options=options))


#: an entry builds the dataset's environments: `entry.build(options, data=<its DataConfig>)` -> a DomainSuite
DATASETS: Registry[DatasetSpec] = Registry("dataset", "data.name", builtins="dagrad.datasets.builtin", builder=_build)


def register_dataset(name: str, spec: DatasetSpec, options: Optional[Mapping[str, Option]] = None) -> DatasetSpec:
    """Make `spec` available as `data.name: <name>`, with its `data.options` schema."""
    builder = spec.builder
    origin = target_module(builder)
    return DATASETS.register(name, spec, description=spec.description, options=dict(options or {}), origin=origin)


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.load(name)


def build_suite(cfg: Any) -> Any:
    """The DomainSuite of a data config (a DataConfig): the dataset's options checked and filled in, then
    its entry built."""
    return DATASETS.build(cfg.name, cfg.options, data=cfg)
