"""Generalized Gaussian (GGD) helpers: shape fitting by moment matching and generator-driven sampling.

The GGD used here has density proportional to exp(-(|x - mu| / s) ** beta). beta = 2 is a Gaussian,
beta = 1 a Laplace, beta -> infinity a uniform. Everything draws from an explicit torch.Generator so that
a draw is a pure function of (inputs, generator seed): torch's own gamma sampler takes no generator, so
Marsaglia & Tsang's (2000) rejection method is implemented here on top of ``torch.randn``/``torch.rand``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

BETA_MIN = 0.3
"""Smallest shape the fit returns: below it the tails are so heavy that one draw can dwarf the model."""
BETA_MAX = 8.0
"""Largest shape the fit returns: beyond it the GGD is practically uniform and the ratio barely moves."""


def moment_ratio(beta: float) -> float:
    """(E|x-mu|)^2 / E(x-mu)^2 of a GGD with shape beta: Gamma(2/b)^2 / (Gamma(1/b) Gamma(3/b)).

    Increasing in beta, from 0 (beta -> 0) through 1/2 (Laplace) and 2/pi (Gaussian) to 3/4 (uniform).
    """
    if beta <= 0:
        raise ValueError(f"GGD shape beta must be > 0, got {beta}")
    b = 1.0 / beta
    return math.exp(2.0 * math.lgamma(2.0 * b) - math.lgamma(b) - math.lgamma(3.0 * b))


def fit_beta(x: Tensor, lo: float = BETA_MIN, hi: float = BETA_MAX, iterations: int = 60) -> float:
    """Shape beta whose moment ratio equals the sample's, found by bisection on log(beta), clipped to [lo, hi].

    A sample with no spread (all elements equal, or fewer than two elements) carries no shape information
    and gets beta = 2 (Gaussian); its draw is then exact anyway because the scale is zero.
    """
    x64 = x.detach().reshape(-1).to(torch.float64)
    if x64.numel() < 2:
        return 2.0
    centred = x64 - x64.mean()
    second = float(centred.pow(2).mean())
    if not math.isfinite(second) or second <= 0.0:
        return 2.0
    target = float(centred.abs().mean()) ** 2 / second
    if target <= moment_ratio(lo):
        return lo
    if target >= moment_ratio(hi):
        return hi
    a, b = math.log(lo), math.log(hi)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        if moment_ratio(math.exp(mid)) < target:
            a = mid
        else:
            b = mid
    return math.exp(0.5 * (a + b))


def scale_for_std(std: float, beta: float) -> float:
    """GGD scale s giving standard deviation ``std``: Var = s^2 Gamma(3/b) / Gamma(1/b)."""
    b = 1.0 / beta
    return std * math.exp(0.5 * (math.lgamma(b) - math.lgamma(3.0 * b)))


def log_standard_gamma(shape: float, n: int, generator: torch.Generator) -> Tensor:
    """log of n i.i.d. Gamma(shape, 1) draws (float64), using only ``generator``.

    Marsaglia-Tsang for shape >= 1; for shape < 1 the boost G(a) = G(a+1) * U^(1/a), kept in log space so
    that tiny shapes cannot underflow to log(0).
    """
    if shape <= 0:
        raise ValueError(f"gamma shape must be > 0, got {shape}")
    if n == 0:
        return torch.empty(0, dtype=torch.float64)
    boost = shape < 1.0
    a = shape + 1.0 if boost else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64)
    pending = torch.arange(n)
    while pending.numel() > 0:
        m = pending.numel()
        z = torch.randn(m, generator=generator, dtype=torch.float64)
        u = torch.rand(m, generator=generator, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        positive = v > 0
        log_v = torch.log(torch.where(positive, v, torch.ones_like(v)))
        accept = positive & (torch.log(u) < 0.5 * z * z + d - d * v + d * log_v)
        out[pending[accept]] = math.log(d) + log_v[accept]
        pending = pending[~accept]
    if boost:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        out = out + torch.log(u) / shape
    return out


def sample_ggd(
    shape: torch.Size | tuple[int, ...], loc: float, scale: float, beta: float, generator: torch.Generator
) -> Tensor:
    """Draw a float64 tensor of i.i.d. GGD(loc, scale, beta) values: loc + sign * scale * G^(1/beta)."""
    n = math.prod(shape)
    if scale == 0.0 or n == 0:
        return torch.full(tuple(shape), float(loc), dtype=torch.float64)
    log_g = log_standard_gamma(1.0 / beta, n, generator)
    magnitude = scale * torch.exp(log_g / beta)
    sign = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0)
    return (loc + sign * magnitude).reshape(tuple(shape))
