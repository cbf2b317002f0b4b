"""The datasets dagrad ships: the embedded digits, DomainBed's folder layouts, Dassl's split files and
the WILDS metadata readers, each one `DatasetSpec` with its options (see specs.py)."""

from __future__ import annotations

from dagrad.datasets.specs import DatasetSpec, Remote, Source, register_dataset
from dagrad.registry import Option

PACS_COUNTS = {"art_painting": 2048, "cartoon": 2344, "photo": 1670, "sketch": 3929}
PACS_SOURCE = "Li et al., 'Deeper, Broader and Artier Domain Generalization', ICCV 2017 (as quoted by Dassl's pacs.py)"
OFFICE_HOME_COUNTS = {"Art": 2427, "Clipart": 4365, "Product": 4439, "Real World": 4357}
OFFICE_HOME_SOURCE = "Venkateswara et al., 'Deep Hashing Network for Unsupervised Domain Adaptation', CVPR 2017"
DOMAIN_NET_ENVS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
DOMAIN_NET_TOTAL = 586_575
DOMAIN_NET_SOURCE = "Peng et al., 'Moment Matching for Multi-Source Domain Adaptation', ICCV 2019 (586,575 images)"
#: files DomainBed deletes (its misc/domain_net_duplicates.txt lists 9,431)
DOMAINBED_DUPLICATES = {"clipart": 704, "infograph": 1596, "painting": 3493, "real": 2380, "sketch": 1258}
DOMAINBED_DUPLICATES_TOTAL = 9431
VLCS_ENVS = ("Caltech101", "LabelMe", "SUN09", "VOC2007")
TERRA_ENVS = ("location_100", "location_38", "location_43", "location_46")
OFFICE_HOME_DG_ENVS = ("art", "clipart", "product", "real_world")

GDRIVE = "https://drive.google.com/uc?id="
DOMAINNET_URL = "https://csr.bu.edu/ftp/visda/2019/multi-source/"  # DomainBed uses http; the host serves https
DOMAINBED_RECIPE = "DomainBed download.py"

CACHE = {"cache": Option(True, bool, "cache the file index (fingerprinted) beside the data")}
CHECK_FILES = {"check_files": Option(True, bool, "check at build time that every listed image exists")}


def _digits(name: str, builder: str, description: str, listed: str, default: list, item: type, names: str) -> None:
    register_dataset(name, DatasetSpec(
        builder=builder, description=description, layout="embedded", num_classes=10, small_images=True, image_size=28,
        notes="built from scikit-learn's 1,797 8x8 digits, no download", environment_names=names),
        {listed: Option(default, list, f"one environment per value (default {default})", item=item),
         "seed": Option(0, int, "shuffle of the digits before they are dealt into environments", low=0)})


_digits("rotated_digits", "dagrad.datasets.digits:rotated_digits",
        "six environments of scikit-learn's digits rotated by 0, 15, ..., 75 degrees", "angles",
        [0, 15, 30, 45, 60, 75], float, "dagrad.datasets.digits:rotated_names")
_digits("stroke_digits", "dagrad.datasets.digits:stroke_digits",
        "environments of scikit-learn's digits with eroded or dilated strokes", "strokes", [-1, 0, 1, 2, 3], int,
        "dagrad.datasets.digits:stroke_names")

_FOLDERS = "dagrad.datasets.folders:domainbed"
register_dataset("pacs", DatasetSpec(
    builder=_FOLDERS, description="PACS in DomainBed's layout (art_painting, cartoon, photo, sketch; 7 classes)",
    layout="domainbed", directory="PACS", environments=tuple(PACS_COUNTS), num_classes=7, counts=PACS_COUNTS,
    counts_total=9991, counts_source=PACS_SOURCE,
    download=Source((Remote("PACS.zip", GDRIVE + "1JFr8f805nMUelQWWmfnJR3y4_SYoN5Pd", {"kfold": "PACS"}, gdrive=True),),
                    "PACS", DOMAINBED_RECIPE, PACS_COUNTS)), CACHE)
register_dataset("office_home", DatasetSpec(
    builder=_FOLDERS, description="Office-Home in DomainBed's layout (Art, Clipart, Product, Real World; 65 classes)",
    layout="domainbed", directory="office_home", environments=tuple(OFFICE_HOME_COUNTS), num_classes=65,
    counts=OFFICE_HOME_COUNTS, counts_total=15588, counts_source=OFFICE_HOME_SOURCE,
    download=Source((Remote("office_home.zip", GDRIVE + "1uY0pj7oFsjMxRwaD3Sxy0jgel0fsYXLC",
                            {"OfficeHomeDataset_10072016": "office_home"}, gdrive=True),),
                    "office_home", DOMAINBED_RECIPE, OFFICE_HOME_COUNTS),
    notes="the environment 'Real World' contains a space"), CACHE)
register_dataset("domain_net", DatasetSpec(
    builder=_FOLDERS, description="DomainNet in DomainBed's layout (6 domains, 345 classes)", layout="domainbed",
    directory="domain_net", environments=DOMAIN_NET_ENVS, num_classes=345, counts={e: None for e in DOMAIN_NET_ENVS},
    counts_total=None,
    counts_source=DOMAIN_NET_SOURCE + "; DomainBed's copy deletes 9,431 duplicates, so its total is smaller",
    download=Source(tuple(Remote(f"{d}.zip", DOMAINNET_URL + ("groundtruth/" if d in ("clipart", "painting") else "")
                                 + f"{d}.zip", {d: f"domain_net/{d}"}) for d in DOMAIN_NET_ENVS),
                    "domain_net", DOMAINBED_RECIPE, remove_duplicates=True),
    batch_size_exponents=(3.0, 5.0)),
    {**CACHE,
     "remove_duplicates": Option(False, bool, "leave out DomainBed's 9,431 listed duplicates without deleting"),
     "duplicates_file": Option(None, str, "the duplicates list (default <dataset dir>/domain_net_duplicates.txt)",
                               nullable=True)})
register_dataset("vlcs", DatasetSpec(
    builder=_FOLDERS, description="VLCS in DomainBed's layout (Caltech101, LabelMe, SUN09, VOC2007; 5 classes)",
    layout="domainbed", directory="VLCS", environments=VLCS_ENVS, num_classes=5, counts={e: None for e in VLCS_ENVS},
    download=Source((Remote("VLCS.tar.gz", GDRIVE + "1skwblH1_okBwxWxmRsp9_qi15hyPpxg8", {"VLCS": "VLCS"},
                            gdrive=True),), "VLCS", DOMAINBED_RECIPE)), CACHE)
register_dataset("terra_incognita", DatasetSpec(
    builder=_FOLDERS, description="TerraIncognita in DomainBed's layout (4 camera locations; 10 classes)",
    layout="domainbed", directory="terra_incognita", environments=TERRA_ENVS, num_classes=10,
    counts={e: None for e in TERRA_ENVS},
    notes="built by DomainBed's script from the Caltech Camera Traps release; not downloadable by dagrad"), CACHE)
register_dataset("folder", DatasetSpec(
    builder="dagrad.datasets.folders:folder",
    description="bring your own: ROOT/<environment>/<class>/<image> with ROOT = data.root", layout="folder",
    environment_names="dagrad.datasets.folders:folder_environments"),
    {**CACHE, "environments": Option(None, list, "pick and order environment directories (default: all, sorted)",
                                     nullable=True, item=str)})

_DASSL = "dagrad.datasets.dassl:"
register_dataset("pacs_dassl", DatasetSpec(
    builder=_DASSL + "pacs_dassl", description="PACS with Dassl's split files (train/crossval kfold)",
    layout="dassl_pacs", directory="pacs", environments=tuple(PACS_COUNTS), num_classes=7,
    counts={**PACS_COUNTS, "sketch": None}, counts_total=None,
    counts_source=PACS_SOURCE + "; sketch unknown: Dassl's lists omit one unreadable image",
    download=Source((Remote("pacs.zip", GDRIVE + "1m4X4fROCCXMO0lRLrr6Zz9Vb3974NWhE", {"pacs": "pacs"}, gdrive=True),),
                    "pacs/images", "Dassl dassl/data/datasets/dg/pacs.py",
                    {e: n for e, n in PACS_COUNTS.items() if e != "sketch"})), CHECK_FILES)
register_dataset("office_home_dg", DatasetSpec(
    builder=_DASSL + "office_home_dg", description="Office-Home-DG with Dassl's train/val folders",
    layout="dassl_office_home", directory="office_home_dg", environments=OFFICE_HOME_DG_ENVS, num_classes=65,
    counts=dict(zip(OFFICE_HOME_DG_ENVS, OFFICE_HOME_COUNTS.values())), counts_total=15588,
    counts_source=OFFICE_HOME_SOURCE,
    download=Source((Remote("office_home_dg.zip", GDRIVE + "1gkbf_KaxoBws-GWT3XIPZ7BnkqbAxIFa",
                            {"office_home_dg": "office_home_dg"}, gdrive=True),),
                    "office_home_dg", "Dassl dassl/data/datasets/dg/office_home_dg.py")), CACHE)
register_dataset("domain_net_dassl", DatasetSpec(
    builder=_DASSL + "domain_net_dassl", description="DomainNet with Dassl's official train/test split files",
    layout="dassl_domain_net", directory="domainnet", environments=DOMAIN_NET_ENVS, num_classes=345,
    counts={e: None for e in DOMAIN_NET_ENVS}, counts_total=DOMAIN_NET_TOTAL, counts_source=DOMAIN_NET_SOURCE,
    batch_size_exponents=(3.0, 5.0), notes="Dassl: the t-shirt class (327) is missing from painting_train.txt"),
    CHECK_FILES)

_WILDS = "dagrad.datasets.wilds_adapter:"
WILDS_PROTOCOL = ("wilds",)
register_dataset("wilds_domain_net", DatasetSpec(
    builder=_WILDS + "wilds_domain_net",
    description="DomainNet from WILDS' metadata.csv, all six domains as environments", layout="wilds_domain_net",
    directory="domainnet_v1.0", environments=DOMAIN_NET_ENVS, num_classes=345,
    counts={e: None for e in DOMAIN_NET_ENVS}, batch_size_exponents=(3.0, 5.0), protocols=WILDS_PROTOCOL,
    notes="data.protocol=wilds: WILDS's source -> target pair (environments [source, target])"),
    {"source_domain": Option("real", str, "data.protocol=wilds: the source domain (WILDS example config: real)",
                             choices=DOMAIN_NET_ENVS),
     "target_domain": Option("sketch", str, "data.protocol=wilds: the target domain (WILDS example config: "
                             "sketch)", choices=DOMAIN_NET_ENVS)})
register_dataset("wilds_camelyon17", DatasetSpec(
    builder=_WILDS + "wilds_camelyon17",
    description="Camelyon17 from WILDS' metadata.csv, hospitals 0-4 as environments", layout="wilds_camelyon17",
    directory="camelyon17_v1.0", environments=tuple(f"hospital_{i}" for i in range(5)), num_classes=2,
    counts={f"hospital_{i}": None for i in range(5)}, protocols=WILDS_PROTOCOL,
    notes="data.protocol=wilds: train on hospitals 0, 3, 4; validate (OOD) on 1; test on 2"))
register_dataset("wilds_fmow", DatasetSpec(
    builder=_WILDS + "wilds_fmow", description="FMoW from WILDS' rgb_metadata.csv, regions as environments",
    layout="wilds_fmow", directory="fmow_v1.1", environments=(), num_classes=62, protocols=WILDS_PROTOCOL,
    notes="environments region_0..5 in order of first appearance, as DomainBed; data.protocol=wilds: years "
          "2002-2012 train, (OOD split, region) groups held out"))

_FASHION = "dagrad.datasets.fashion:"
FASHION_SOURCE = "Xiao et al., 'Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms', 2017"
FASHION_FILES = dict(layout="idx", directory="fashion_mnist", small_images=True, image_size=28,
                     checker="dagrad.datasets.fashion_source:check", downloader="dagrad.datasets.fashion_source:download",
                     notes="IDX files from data.root/fashion_mnist, data.root or /usr/share/datasets/fashion-mnist "
                           "(Debian's dataset-fashion-mnist)")
FASHION_SEED = {"seed": Option(0, int, "shuffle of the 70,000 images before they are dealt into environments", low=0),
                "max_per_environment": Option(None, int, "keep only the first N images of each environment "
                                              "(null: all, as DomainBed)", low=1, nullable=True)}
register_dataset("fashion_mnist", DatasetSpec(
    builder=_FASHION + "fashion_mnist",
    description="Fashion-MNIST's own train (60,000) and test (10,000) splits as two environments",
    environments=("train", "test"), num_classes=10, counts={"train": 60_000, "test": 10_000}, counts_total=70_000,
    counts_source=FASHION_SOURCE, **FASHION_FILES))
register_dataset("rotated_fashion_mnist", DatasetSpec(
    builder=_FASHION + "rotated_fashion_mnist",
    description="DomainBed's RotatedMNIST on Fashion-MNIST: 70,000 images dealt into six "
                "environments rotated by 0, 15, ..., 75 degrees",
    num_classes=10, counts_total=70_000, counts_source=FASHION_SOURCE, environment_names=_FASHION + "rotated_names",
    **FASHION_FILES),
    {"angles": Option([0, 15, 30, 45, 60, 75], list, "one environment per angle (DomainBed's six)", item=float),
     **FASHION_SEED})
register_dataset("colored_fashion_mnist", DatasetSpec(
    builder=_FASHION + "colored_fashion_mnist",
    description="DomainBed's ColoredMNIST on Fashion-MNIST: binary label (classes 0-4 "
                "against 5-9, 25% noise), colour agreeing with it 90%, 80% and 10% of the time",
    num_classes=2, counts_total=70_000, counts_source=FASHION_SOURCE, environment_names=_FASHION + "colored_names",
    **FASHION_FILES),
    {"colors": Option([0.1, 0.2, 0.9], list, "per environment, the probability that the colour disagrees with "
                      "the label (DomainBed's 0.1, 0.2, 0.9)", item=float, low=0.0, high=1.0),
     "label_noise": Option(0.25, float, "probability that the binary label is flipped", low=0.0, high=1.0),
     "positive_classes": Option([0, 1, 2, 3, 4], list, "the classes given label 1 (DomainBed: digits < 5)", item=int,
                                low=0, high=9),
     **FASHION_SEED})
