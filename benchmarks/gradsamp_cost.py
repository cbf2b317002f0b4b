"""Cost of a GradSamp sampled epoch as a fraction of a real (trained) epoch, in wall time and in
estimated energy, for the digits CNN and a ResNet-18 featurizer.

A sampled epoch = GradSamp.sample (the draw) + GradSamp.observe (the epoch-end snapshot). A real epoch
= steps_per_epoch ERM updates + the same snapshot. For the digits every step of the epoch is timed; for
ResNet-18 (about 2 s a step on this CPU) `--resnet-measure` steps are timed and the epoch's cost is that
per-step figure times `--resnet-steps` (DomainBed's 300 steps between checkpoints); the output says so.

    python benchmarks/gradsamp_cost.py [--sampler tensor] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import torch

from dagrad.energy import build_meter
from dagrad.config.experiment import load_experiment
from dagrad.gradsamp import GradSamp

warnings.filterwarnings("ignore", message=".*ESTIMATED.*")


SOURCES: set[str] = set()


def measure(meter, fn) -> tuple[float, float]:
    with meter.window("bench") as reading:
        fn()
    SOURCES.update(reading.sources)
    return reading.seconds, reading.joules or 0.0


def bench(label: str, overrides: list[str], batch: torch.Tensor, labels: torch.Tensor, n_envs: int,
          epoch_steps: int, measured_steps: int, sampler: str, repeats: int) -> None:
    exp = load_experiment(None, [*overrides, f"gradsamp.sampler={sampler}", "gradsamp.schedule_options.start=2"])
    # built as the engine builds it: every component from what the Experiment holds
    featurizer = exp.network.build(input_shape=tuple(batch.shape[1:]))
    algorithm = exp.algorithm.build(featurizer=featurizer, num_classes=10, num_domains=n_envs)
    meter = build_meter(exp.energy)
    gradsamp = GradSamp(exp.gradsamp, run_seed=0)
    minibatches = [(batch, labels)] * n_envs
    step = lambda: algorithm.update(minibatches)  # noqa: E731
    for _ in range(2):  # two real epochs of history, one step each is enough to make it non-trivial
        step()
        gradsamp.observe(algorithm, "train")
    step()  # warm-up
    real_s, real_j, samp_s, samp_j = [], [], [], []
    for r in range(repeats):
        s, j = measure(meter, lambda: [step() for _ in range(measured_steps)])
        snap_s, snap_j = measure(meter, lambda: gradsamp.observe(algorithm, "train"))
        scale = epoch_steps / measured_steps
        real_s.append(s * scale + snap_s)
        real_j.append(j * scale + snap_j)
        s, j = measure(meter, lambda: (gradsamp.sample(algorithm, algorithm.optimizers(), 2 + r),
                                       gradsamp.observe(algorithm, "sampled")))
        samp_s.append(s)
        samp_j.append(j)
    rs, rj, ss, sj = (statistics.median(v) for v in (real_s, real_j, samp_s, samp_j))
    n_params = sum(p.numel() for p in algorithm.parameters() if p.requires_grad)
    how = "all steps timed" if measured_steps == epoch_steps else f"{measured_steps} steps timed, x{epoch_steps / measured_steps:g}"
    print(f"{label}: {n_params / 1e6:.2f} M parameters, epoch = {epoch_steps} steps of {n_envs}x{len(labels)} "
          f"images ({how})")
    print(f"  real epoch    {rs:9.3f} s {rj:9.2f} J")
    print(f"  sampled epoch {ss:9.3f} s {sj:9.2f} J   ({sampler} sampler)")
    print(f"  ratio         {100 * ss / rs:8.3f} %  time, {100 * sj / rj:8.3f} % energy "
          f"(energy source: {', '.join(sorted(SOURCES))})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sampler", default="tensor")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--digits-steps", type=int, default=25, help="steps of a digits epoch (the demo's)")
    parser.add_argument("--resnet-steps", type=int, default=300, help="steps of a ResNet epoch (DomainBed PACS)")
    parser.add_argument("--resnet-measure", type=int, default=2, help="ResNet steps actually timed per repeat")
    parser.add_argument("--resnet-size", type=int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}")
    x = torch.rand(32, 1, 16, 16)
    y = torch.randint(0, 10, (32,))
    bench("digits_cnn (width 32, 16 px)", ["data.image_size=16", "network.options.width=32"], x, y, 5,
          args.digits_steps, args.digits_steps, args.sampler, args.repeats)
    x = torch.rand(32, 3, args.resnet_size, args.resnet_size)
    bench(f"resnet18 ({args.resnet_size} px, frozen BN)", ["data.name=pacs", "network.name=resnet18",
                                                             "data.test_envs=[0]"],
          x, y, 3, args.resnet_steps, args.resnet_measure, args.sampler, args.repeats)


if __name__ == "__main__":
    main()
