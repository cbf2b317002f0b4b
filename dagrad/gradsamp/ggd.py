"""Generalized Gaussian (GGD) helpers: shape fitting by moment matching and generator-driven sampling.

The GGD used here has density proportional to exp(-(|x - mu| / s) ** beta). beta = 2 is a Gaussian,
beta = 1 a Laplace, beta -> infinity a uniform. Everything works on whole vectors of tensors at once, on
their device, without reading values back to the host: the shape fit is a vectorised bisection with a
fixed number of rounds, and gamma variates come from Marsaglia & Tsang's (2000) rejection method with a
fixed number of vectorised proposal rounds (a loop finishes the rare leftovers exactly; a caller that
reads device values anyway can check for leftovers in that read instead of syncing here). torch's own gamma
sampler takes no generator, so it is not used: every draw comes from the explicit ``torch.Generator`` and
is a pure function of (inputs, generator seed).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

BETA_MIN = 0.3
"""Smallest shape the fit returns: below it the tails are so heavy that one draw can dwarf the model."""
BETA_MAX = 8.0
"""Largest shape the fit returns: beyond it the GGD is practically uniform and the ratio barely moves."""
FIT_POINTS, FIT_ROUNDS = 31, 8
"""Bisection: each round splits every bracket at 31 points (32 cells); 8 rounds shrink it 32**8 ~ 1e12-fold."""
GAMMA_ROUNDS = 8
"""Proposal rounds after the first for the elements it rejected (each rejects < 5%): leftovers are ~1e-11."""


def moment_ratio(beta: float) -> float:
    """(E|x-mu|)^2 / E(x-mu)^2 of a GGD with shape beta: Gamma(2/b)^2 / (Gamma(1/b) Gamma(3/b)).

    Increasing in beta, from 0 (beta -> 0) through 1/2 (Laplace) and 2/pi (Gaussian) to 3/4 (uniform).
    """
    if beta <= 0:
        raise ValueError(f"GGD shape beta must be > 0, got {beta}")
    b = 1.0 / beta
    return math.exp(2.0 * math.lgamma(2.0 * b) - math.lgamma(b) - math.lgamma(3.0 * b))


def _ratios(beta: Tensor) -> Tensor:
    b = beta.reciprocal()
    return torch.exp(2.0 * torch.lgamma(2.0 * b) - torch.lgamma(b) - torch.lgamma(3.0 * b))


def fit_betas(abs_dev: Tensor, sq_dev: Tensor, counts: Tensor, lo: float = BETA_MIN, hi: float = BETA_MAX) -> Tensor:
    """Per tensor, the shape whose moment ratio equals the sample's, clipped to [lo, hi] (float64 vector).

    ``abs_dev`` = E|x - mu|, ``sq_dev`` = E(x - mu)^2 and ``counts`` (elements) are vectors with one entry
    per tensor. Every bracket on log(beta) is narrowed at once, FIT_ROUNDS times, so there is no per-tensor
    loop and no host sync. A tensor with no spread or fewer than two elements carries no shape information
    and gets beta = 2 (Gaussian); its draw is then exact anyway because the scale is zero.
    """
    abs_dev, sq_dev = abs_dev.to(torch.float64), sq_dev.to(torch.float64)
    usable = (counts >= 2) & (sq_dev > 0) & torch.isfinite(sq_dev) & torch.isfinite(abs_dev)
    target = torch.where(usable, abs_dev.square() / torch.where(usable, sq_dev, 1.0), 2.0 / math.pi)
    a = torch.full_like(target, math.log(lo))
    b = torch.full_like(target, math.log(hi))
    frac = torch.arange(1, FIT_POINTS + 1, dtype=torch.float64, device=target.device) / (FIT_POINTS + 1)
    for _ in range(FIT_ROUNDS):
        points = a[:, None] + (b - a)[:, None] * frac
        cell = (_ratios(points.exp()) < target[:, None]).sum(1, keepdim=True)  # ratio increases with beta
        edges = torch.cat([a[:, None], points, b[:, None]], 1)
        a, b = edges.gather(1, cell).squeeze(1), edges.gather(1, cell + 1).squeeze(1)
    beta = (0.5 * (a + b)).exp()
    beta = torch.where(target <= moment_ratio(lo), lo, torch.where(target >= moment_ratio(hi), hi, beta))
    return torch.where(usable, beta, 2.0)


def fit_beta(x: Tensor, lo: float = BETA_MIN, hi: float = BETA_MAX) -> float:
    """The fitted shape of one tensor's values, as a float (a convenience over ``fit_betas``; syncs once)."""
    x64 = x.detach().reshape(-1).to(torch.float64)
    n = x64.numel()
    if n < 2:
        return 2.0
    centred = x64 - x64.mean()
    counts = torch.full((1,), n, device=x64.device)
    return float(fit_betas(centred.abs().mean()[None], centred.square().mean()[None], counts, lo, hi)[0])


def scale_for_std(std: Tensor, beta: Tensor) -> Tensor:
    """GGD scale s giving standard deviation ``std``: Var = s^2 Gamma(3/b) / Gamma(1/b) (elementwise)."""
    b = beta.reciprocal()
    return std * torch.exp(0.5 * (torch.lgamma(b) - torch.lgamma(3.0 * b)))


def _proposal_round(d: Tensor, c: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One Marsaglia-Tsang proposal per element: (accepted, log of the proposed Gamma(d + 1/3) value)."""
    z = torch.randn(d.shape, generator=generator, dtype=d.dtype, device=d.device)
    u = torch.rand(d.shape, generator=generator, dtype=d.dtype, device=d.device)
    v = (1.0 + c * z) ** 3
    positive = v > 0
    log_v = torch.log(torch.where(positive, v, 1.0))
    accept = positive & (torch.log(u) < 0.5 * z * z + d - d * v + d * log_v)
    return accept, torch.log(d) + log_v


def _first_pending(pending: Tensor, size: int) -> Tensor:
    """Indices of the first ``size`` True elements of ``pending``, in order, padded with len(pending); no sync."""
    n = pending.numel()
    try:
        return torch.nonzero_static(pending, size=size, fill_value=n).squeeze(1)
    except NotImplementedError:  # a torch or device without it: a stable sort does the same
        order = torch.sort((~pending).to(torch.uint8), stable=True).indices[:size]
        return torch.where(pending[order], order, n)


def log_gamma(shape: Tensor, generator: torch.Generator, finish: bool = True) -> tuple[Tensor, Tensor]:
    """(log of one Gamma(shape_i, 1) draw per element of the 1-d ``shape``, leftovers), using only ``generator``.

    Marsaglia-Tsang for shape >= 1; for shape < 1 the boost G(a) = G(a+1) * U^(1/a), kept in log space so
    that tiny shapes cannot underflow to log(0). Round one proposes for every element; the rejected ones
    are packed into a fixed-size batch (no host sync) that gets GAMMA_ROUNDS more proposals. Each element
    keeps its first accepted proposal of an i.i.d. sequence, so the distribution is exact. Elements still
    pending after that (about never) are finished by a loop that syncs; with ``finish=False`` the loop is
    skipped and their count (a 0-dim tensor, else 0) is returned so the caller can check it in a read it
    makes anyway and, if it is not 0, draw again with ``finish=True``: the same stream, then the loop.
    """
    n = shape.numel()
    boost = shape < 1.0
    a = torch.where(boost, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d)
    done, out = _proposal_round(d, c, generator)
    size = min(n, n // 8 + 1024)  # round one rejects < 5%: this holds them all but with negligible odds
    slots = _first_pending(~done, size)  # padded with n (a sentinel)
    valid = slots < n
    at = slots.clamp_max(max(n - 1, 0))
    d_k, c_k = d[at], c[at]
    done_k, out_k = ~valid, torch.zeros_like(d_k)
    for _ in range(GAMMA_ROUNDS):
        accept, value = _proposal_round(d_k, c_k, generator)
        out_k = torch.where(accept & ~done_k, value, out_k)
        done_k = done_k | accept
    out = torch.cat([out, out.new_zeros(1)]).index_put_((slots,), out_k)[:n]
    done = torch.cat([done, done.new_ones(1)]).index_put_((slots,), done_k)[:n]
    leftover = (~done).sum()
    if finish and bool(leftover):
        while True:
            pending = (~done).nonzero().squeeze(1)
            if pending.numel() == 0:
                break
            accept, value = _proposal_round(d[pending], c[pending], generator)
            out[pending[accept]] = value[accept]
            done[pending[accept]] = True
        leftover = torch.zeros_like(leftover)
    u = torch.rand(shape.shape, generator=generator, dtype=shape.dtype, device=shape.device)
    # log(1 - u): u in [0, 1) never gives log 0
    return out + torch.where(boost, torch.log1p(-u) / shape, 0.0), leftover


def standard(beta: Tensor, expand: Callable[[Tensor], Tensor], n: int, generator: torch.Generator,
             dtype: torch.dtype, finish: bool = True) -> tuple[Tensor, Tensor]:
    """(n draws of sign * G^(1/beta), G ~ Gamma(1/beta), as a flat tensor; gamma leftovers).

    That is a GGD with location 0 and scale 1; ``beta`` holds one shape per tensor and ``expand`` repeats
    it for each of the tensor's elements (``Layout.expand``). Computed in ``dtype``; ``finish``: see
    ``log_gamma``. Shift and scale per tensor afterwards (a zero scale then gives the location exactly).
    """
    if n == 0:
        return torch.zeros(0, dtype=dtype, device=beta.device), torch.zeros((), dtype=torch.int64, device=beta.device)
    shape = expand(beta.reciprocal().to(dtype))
    log_g, leftover = log_gamma(shape, generator, finish)
    magnitude = torch.exp(log_g * shape)
    sign = torch.rand(n, generator=generator, dtype=dtype, device=beta.device) < 0.5
    return torch.where(sign, -magnitude, magnitude), leftover
