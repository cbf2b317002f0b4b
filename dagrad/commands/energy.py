"""`dagrad energy probe`: which energy backend is active here, why not the others, and a calibration."""

from __future__ import annotations

import argparse

from dagrad.utils.errors import ConfigError

SECONDS_MAX = 3600  # one calibration window; inf or nan would never end (or overflow the sleep)


def add_parser(sub: argparse._SubParsersAction, **common) -> argparse.ArgumentParser:
    p = sub.add_parser("energy", description="Energy meter tools.", **common)
    esub = p.add_subparsers(dest="energy_command", metavar="ACTION", required=True)
    e = esub.add_parser("probe", help="which energy backend is active, why, and a short calibration")
    e.add_argument("overrides", nargs="*", metavar="key=value",
                   help="energy.* overrides, e.g. energy.backend=rapl energy.backends.estimate.watts_per_thread=6")
    e.add_argument("--device", default="cpu")
    e.add_argument("--seconds", type=float, default=1.0, help="length of each calibration window (> 0)")
    return p


def run(args: argparse.Namespace) -> int:
    from dagrad.config.schema import EnergyConfig, from_dict
    from dagrad.config.files import apply_overrides
    from dagrad.energy.probe import probe

    bad = [o for o in args.overrides if not o.startswith("energy.")]
    if bad:
        raise ConfigError(f"override {bad[0]!r}: only energy.* keys apply here")
    if not args.seconds > 0:
        raise ConfigError(f"--seconds must be > 0, got {args.seconds:g}")
    if not args.seconds <= SECONDS_MAX:
        raise ConfigError(f"--seconds must be at most {SECONDS_MAX} (one calibration window), got {args.seconds:g}")
    cfg = from_dict(apply_overrides({}, args.overrides).get("energy", {}), EnergyConfig, "energy.")
    print(probe(cfg, device=args.device, seconds=args.seconds))
    return 0
