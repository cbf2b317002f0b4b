"""What dagrad knows about each real dataset: where it lives under the data root, its environments in
the order DomainBed sorts them, its class count, and the published image counts (with their source).
A count nobody published per environment is None and `check` says "unknown" rather than guessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from dagrad.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # dagrad's dataset name (data.name)
    layout: str  # domainbed | dassl_pacs | dassl_office_home | dassl_domain_net | wilds_* | folder
    directory: str  # under the data root ("" = the root itself)
    environments: tuple[str, ...]  # in DomainBed's (sorted) order; empty = whatever is found
    num_classes: Optional[int]
    expected: dict = field(default_factory=dict)  # environment -> published image count (or None)
    expected_total: Optional[int] = None
    source: str = ""  # where the counts come from
    download: Optional[str] = None  # key of dagrad.datasets.download.SOURCES, if a public source exists
    notes: str = ""


PACS_COUNTS = {"art_painting": 2048, "cartoon": 2344, "photo": 1670, "sketch": 3929}
#: Dassl's split lists leave out sketch/dog/n02103406_4068-1.png, so its sketch count is not the published one
PACS_DASSL_COUNTS = {**PACS_COUNTS, "sketch": None}
PACS_SOURCE = "Li et al., 'Deeper, Broader and Artier Domain Generalization', ICCV 2017 (as quoted by Dassl's pacs.py)"
OFFICE_HOME_COUNTS = {"Art": 2427, "Clipart": 4365, "Product": 4439, "Real World": 4357}
OFFICE_HOME_SOURCE = "Venkateswara et al., 'Deep Hashing Network for Unsupervised Domain Adaptation', CVPR 2017"
DOMAIN_NET_ENVS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
DOMAIN_NET_TOTAL = 586_575
DOMAIN_NET_SOURCE = "Peng et al., 'Moment Matching for Multi-Source Domain Adaptation', ICCV 2019 (586,575 images)"
#: files DomainBed deletes (its misc/domain_net_duplicates.txt lists 9,431); protocols.md section 1b
DOMAINBED_DUPLICATES = {"clipart": 704, "infograph": 1596, "painting": 3493, "real": 2380, "sketch": 1258}
DOMAINBED_DUPLICATES_TOTAL = 9431

CATALOG: dict[str, DatasetInfo] = {
    "pacs": DatasetInfo("pacs", "domainbed", "PACS", tuple(PACS_COUNTS), 7, PACS_COUNTS, 9991, PACS_SOURCE, "pacs"),
    "office_home": DatasetInfo(
        "office_home", "domainbed", "office_home", tuple(OFFICE_HOME_COUNTS), 65, OFFICE_HOME_COUNTS, 15588,
        OFFICE_HOME_SOURCE, "office_home", notes="the environment 'Real World' contains a space"),
    "domain_net": DatasetInfo(
        "domain_net", "domainbed", "domain_net", DOMAIN_NET_ENVS, 345, {e: None for e in DOMAIN_NET_ENVS},
        None, DOMAIN_NET_SOURCE + "; DomainBed's copy deletes 9,431 duplicates, so its total is smaller",
        "domain_net"),
    "vlcs": DatasetInfo("vlcs", "domainbed", "VLCS", ("Caltech101", "LabelMe", "SUN09", "VOC2007"), 5,
                        {e: None for e in ("Caltech101", "LabelMe", "SUN09", "VOC2007")}, None, "", "vlcs"),
    "terra_incognita": DatasetInfo(
        "terra_incognita", "domainbed", "terra_incognita",
        ("location_100", "location_38", "location_43", "location_46"), 10,
        {e: None for e in ("location_100", "location_38", "location_43", "location_46")}, None, "", None,
        notes="built by DomainBed's script from the Caltech Camera Traps release; not downloadable by dagrad"),
    "folder": DatasetInfo("folder", "folder", "", (), None),
    "pacs_dassl": DatasetInfo("pacs_dassl", "dassl_pacs", "pacs", tuple(PACS_COUNTS), 7, PACS_DASSL_COUNTS, None,
                              PACS_SOURCE + "; sketch unknown: Dassl's lists omit one unreadable image",
                              "pacs_dassl"),
    "office_home_dg": DatasetInfo(
        "office_home_dg", "dassl_office_home", "office_home_dg", ("art", "clipart", "product", "real_world"), 65,
        dict(zip(("art", "clipart", "product", "real_world"), OFFICE_HOME_COUNTS.values())), 15588,
        OFFICE_HOME_SOURCE, "office_home_dg"),
    "domain_net_dassl": DatasetInfo(
        "domain_net_dassl", "dassl_domain_net", "domainnet", DOMAIN_NET_ENVS, 345,
        {e: None for e in DOMAIN_NET_ENVS}, DOMAIN_NET_TOTAL, DOMAIN_NET_SOURCE, None,
        notes="Dassl: the t-shirt class (327) is missing from painting_train.txt"),
    "wilds_domain_net": DatasetInfo("wilds_domain_net", "wilds_domain_net", "domainnet_v1.0", DOMAIN_NET_ENVS, 345,
                                    {e: None for e in DOMAIN_NET_ENVS}, None, "", None),
    "wilds_camelyon17": DatasetInfo(
        "wilds_camelyon17", "wilds_camelyon17", "camelyon17_v1.0",
        tuple(f"hospital_{i}" for i in range(5)), 2, {f"hospital_{i}": None for i in range(5)}, None, "", None),
    "wilds_fmow": DatasetInfo("wilds_fmow", "wilds_fmow", "fmow_v1.1", (), 62, {}, None, "", None,
                              notes="environments region_0..5 in order of first appearance, as DomainBed"),
}


def info(name: str) -> DatasetInfo:
    """The catalog entry of a real dataset; a ConfigError lists the known names."""
    if name not in CATALOG:
        raise ConfigError(f"unknown real dataset {name!r}; choose one of: {', '.join(sorted(CATALOG))}")
    return CATALOG[name]
