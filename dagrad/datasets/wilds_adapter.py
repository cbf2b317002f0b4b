"""WILDS datasets read from their own metadata files, so the `wilds` package is not needed (it is the
optional extra `dagrad[wilds]`; its `eval()` needs torch_scatter, and dagrad computes its own metrics).

- `wilds_domain_net`: `ROOT/domainnet_v1.0/metadata.csv` (columns image_path, domain, split, category,
  y; csv.QUOTE_NONNUMERIC). WILDS' class keeps one source and one target domain; here all six domains
  are environments for leave-one-domain-out, and the official `split` column gives official_splits
  (train -> in, test -> out).
- `wilds_camelyon17`: `ROOT/camelyon17_v1.0/metadata.csv`, environments hospital_0..4 (column `center`),
  label `tumor`, images `patches/patient_{p}_node_{n}/patch_patient_{p}_node_{n}_x_{x}_y_{y}.png` where
  {p} is the `patient` field exactly as written in the CSV (WILDS reads it as a string, so its zero
  padding, e.g. `004`, is kept; a bare integer is padded to three digits).
- `wilds_fmow`: `ROOT/fmow_v1.1/rgb_metadata.csv` + `country_code_mapping.csv`, environments region_0..5
  numbered in order of first appearance (as WILDS and DomainBed), rows with split `seq` dropped,
  images `images/rgb_img_{row}.png` with {row} the row number in the full CSV, 62 categories.
Under DomainBed's protocol Camelyon17 and FMoW are split 80/20 at random, as DomainBed's WILDSCamelyon
and WILDSFMoW. `data.protocol: wilds` gives all three WILDS's own splits, held-out domains and metrics
(see wilds_protocol.py)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dagrad.datasets.base import DomainSuite
from dagrad.datasets.wilds_protocol import camelyon17_protocol, domain_net_protocol, fmow_protocol
from dagrad.datasets.builtin import DOMAIN_NET_ENVS
from dagrad.datasets.folders import FileEnvironment, data_root, missing
from dagrad.datasets.specs import dataset_spec
from dagrad.datasets.index import FileIndex
from dagrad.utils.errors import DataError

FMOW_CATEGORIES = (
    "airport airport_hangar airport_terminal amusement_park aquaculture archaeological_site barn border_checkpoint "
    "burial_site car_dealership construction_site crop_field dam debris_or_rubble educational_institution "
    "electric_substation factory_or_powerplant fire_station flooded_road fountain gas_station golf_course "
    "ground_transportation_station helipad hospital impoverished_settlement interchange lake_or_pond lighthouse "
    "military_facility multi-unit_residential nuclear_powerplant office_building oil_or_gas_facility park "
    "parking_lot_or_garage place_of_worship police_station port prison race_track railway_bridge "
    "recreational_facility road_bridge runway shipyard shopping_mall single-unit_residential smokestack "
    "solar_farm space_facility stadium storage_tank surface_mine swimming_pool toll_booth tower tunnel_opening "
    "waste_disposal water_treatment_facility wind_farm zoo"
).split()


def _rows(path: Path, required: tuple[str, ...], **reader: Any) -> Iterator[dict]:
    with open(path, newline="") as f:
        rows = csv.DictReader(f, **reader)
        absent = [c for c in required if c not in (rows.fieldnames or [])]
        if absent:
            raise DataError(f"{path}: column {absent[0]!r} missing; expected columns {', '.join(required)}")
        yield from rows


def _metadata(cfg: Any, filename: str) -> tuple[Path, Path]:
    entry = dataset_spec(cfg.name)
    root = data_root(cfg)
    directory = root / entry.directory
    if not (directory / filename).is_file():
        raise missing(cfg.name, root, directory / filename,
                      f"ROOT/{entry.directory}/{filename} plus the images it names (the WILDS release)")
    return root, directory


def _suite(cfg: Any, names: list[str], groups: dict, class_names: list[str], splits: Any = None) -> DomainSuite:
    envs = []
    for name in names:
        pairs, labels = groups[name]["pairs"], groups[name]["labels"]
        envs.append(FileEnvironment(name, FileIndex.from_pairs(groups[name]["base"], pairs),
                                    np.asarray(labels, dtype=np.int64)))
    size, train_tf, eval_tf = dataset_spec(cfg.name).transforms(cfg.image_size)
    return DomainSuite(cfg.name, envs, len(class_names), (3, size, size), train_tf, eval_tf, class_names,
                       official_splits=splits,
                       notes={"wilds": "read from the WILDS metadata without the wilds package"})


def wilds_domain_net(cfg: Any) -> DomainSuite:
    _, directory = _metadata(cfg, "metadata.csv")
    path = directory / "metadata.csv"
    groups = {d: {"base": str(directory), "pairs": [], "labels": [], "split": []} for d in DOMAIN_NET_ENVS}
    class_names: dict[int, str] = {}
    for number, row in enumerate(_rows(path, ("image_path", "domain", "split", "category", "y"),
                                       quoting=csv.QUOTE_NONNUMERIC), 2):
        domain, image = str(row["domain"]), str(row["image_path"])
        if domain not in groups or row["split"] not in ("train", "test"):
            raise DataError(f"{path}:{number}: unexpected domain {domain!r} or split {row['split']!r}")
        group, y = groups[domain], int(row["y"])
        group["pairs"].append(tuple(image.rsplit("/", 1)))
        group["labels"].append(y)
        group["split"].append(row["split"] == "train")
        class_names.setdefault(y, str(row["category"]))
    names = [class_names.get(i, str(i)) for i in range(max(class_names) + 1)]
    if _wilds(cfg):
        source, target = cfg.options["source_domain"], cfg.options["target_domain"]
        protocol = domain_net_protocol({d: g["split"] for d, g in groups.items()}, source, target, path)
        suite = _suite(cfg, [source, target], groups, names)
        suite.protocols["wilds"] = protocol
        return suite
    empty = [d for d in DOMAIN_NET_ENVS if not groups[d]["pairs"]]
    if empty:
        raise DataError(f"{path}: no rows for domain(s) {', '.join(empty)}")
    splits = [(np.flatnonzero(groups[d]["split"]), np.flatnonzero(~np.asarray(groups[d]["split"])))
              for d in DOMAIN_NET_ENVS]
    return _suite(cfg, list(DOMAIN_NET_ENVS), groups, names, splits)


def _wilds(cfg: Any) -> bool:
    return getattr(cfg, "protocol", "domainbed") == "wilds"


def _patient(value: str) -> str:
    value = value.strip()
    return value.zfill(3) if value.isdigit() else value


def wilds_camelyon17(cfg: Any) -> DomainSuite:
    _, directory = _metadata(cfg, "metadata.csv")
    path = directory / "metadata.csv"
    groups: dict[str, dict] = {}
    columns = ("patient", "node", "x_coord", "y_coord", "tumor", "center") + (("split",) if _wilds(cfg) else ())
    protocol_rows = []
    for number, row in enumerate(_rows(path, columns), 2):
        try:
            p, n = _patient(row["patient"]), int(float(row["node"]))
            x, y = int(float(row["x_coord"])), int(float(row["y_coord"]))
            center, label = int(float(row["center"])), int(float(row["tumor"]))
            split = int(float(row["split"])) if _wilds(cfg) else None
        except ValueError:
            raise DataError(f"{path}:{number}: non-numeric node, coordinates, center, tumor or split") from None
        group = groups.setdefault(f"hospital_{center}", {"base": str(directory), "pairs": [], "labels": []})
        protocol_rows.append({"center": center, "split": split, "k": len(group["pairs"])})
        group["pairs"].append((f"patches/patient_{p}_node_{n}", f"patch_patient_{p}_node_{n}_x_{x}_y_{y}.png"))
        group["labels"].append(label)
    names = sorted(groups, key=lambda e: int(e.split("_")[1]))
    suite = _suite(cfg, names, groups, ["normal", "tumor"])
    if _wilds(cfg):
        suite.protocols["wilds"] = camelyon17_protocol(protocol_rows, path)[2]
    return suite


def wilds_fmow(cfg: Any) -> DomainSuite:
    _, directory = _metadata(cfg, "rgb_metadata.csv")
    mapping_file = directory / "country_code_mapping.csv"
    if not mapping_file.is_file():
        raise DataError(f"wilds_fmow: {mapping_file} missing (it maps country codes to regions)")
    region_of = {r["alpha-3"]: r["region"] for r in _rows(mapping_file, ("alpha-3", "region"))}
    category = {c: i for i, c in enumerate(FMOW_CATEGORIES)}
    region_index: dict[str, int] = {}
    groups: dict[str, dict] = {}
    rows = []
    path = directory / "rgb_metadata.csv"
    columns = ("split", "category", "country_code") + (("timestamp",) if _wilds(cfg) else ())
    for row_number, row in enumerate(_rows(path, columns)):
        region = region_of.get(row["country_code"], "Other")
        k = region_index.setdefault(region, len(region_index))  # over every row, `seq` ones too (as WILDS)
        if row["split"] == "seq":
            continue
        if row["category"] not in category:
            raise DataError(f"{path}:{row_number + 2}: unknown category {row['category']!r}")
        rows.append({"row": row_number, "split": row["split"], "timestamp": row.get("timestamp", ""),
                     "region": k, "y": category[row["category"]]})
    regions = sorted(region_index, key=region_index.get)
    if _wilds(cfg):
        names, protocol_groups, protocol = fmow_protocol(rows, regions, path)
        for name, g in protocol_groups.items():
            groups[name] = {"base": str(directory), "pairs": [("images", f"rgb_img_{r['row']}.png") for r in g["members"]],
                            "labels": [r["y"] for r in g["members"]]}
        suite = _suite(cfg, names, groups, list(FMOW_CATEGORIES))
        suite.protocols["wilds"] = protocol
    else:
        for r in rows:
            group = groups.setdefault(f"region_{r['region']}", {"base": str(directory), "pairs": [], "labels": []})
            group["pairs"].append(("images", f"rgb_img_{r['row']}.png"))
            group["labels"].append(r["y"])
        names = sorted(groups, key=lambda e: int(e.split("_")[1]))
        suite = _suite(cfg, names, groups, list(FMOW_CATEGORIES))
    suite.notes["regions"] = {f"region_{k}": r for r, k in region_index.items()}
    return suite
