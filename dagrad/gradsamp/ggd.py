"""Generalized Gaussian (GGD) helpers: shape fitting by moment matching and generator-driven sampling.

The GGD used here has density proportional to exp(-(|x - mu| / s) ** beta). beta = 2 is a Gaussian,
beta = 1 a Laplace, beta -> infinity a uniform. Everything works on whole vectors of tensors at once, on
their device, without reading values back to the host: the shape fit is a vectorised bisection with a
fixed number of rounds, and gamma variates come from Marsaglia & Tsang's (2000) rejection method with a
fixed number of vectorised proposal rounds (a loop finishes the rare leftovers exactly). torch's own gamma
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


def log_gamma(shape: Tensor, generator: torch.Generator) -> Tensor:
    """log of one Gamma(shape_i, 1) draw per element of ``shape`` (a 1-d tensor), using only ``generator``.

    Marsaglia-Tsang for shape >= 1; for shape < 1 the boost G(a) = G(a+1) * U^(1/a), kept in log space so
    that tiny shapes cannot underflow to log(0). Round one proposes for every element; the rejected ones
    are packed into a fixed-size batch (no host sync) that gets GAMMA_ROUNDS more proposals; whatever is
    still pending after that (about never) is finished by a loop. Each element keeps its first accepted
    proposal of an i.i.d. sequence, so the distribution is exact. One host sync: the leftover check.
    """
    n = shape.numel()
    boost = shape < 1.0
    a = torch.where(boost, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d)
    done, out = _proposal_round(d, c, generator)
    size = min(n, n // 8 + 1024)  # round one rejects < 5%: this holds them all but with negligible odds
    slots = torch.nonzero_static(~done, size=size, fill_value=n).squeeze(1)  # padded with n (a sentinel)
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
    if bool((~done).any()):  # the rare leftovers: loop until each has accepted once
        while True:
            pending = (~done).nonzero().squeeze(1)
            if pending.numel() == 0:
                break
            accept, value = _proposal_round(d[pending], c[pending], generator)
            out[pending[accept]] = value[accept]
            done[pending[accept]] = True
    u = torch.rand(shape.shape, generator=generator, dtype=shape.dtype, device=shape.device)
    return out + torch.where(boost, torch.log1p(-u) / shape, 0.0)  # log(1 - u): u in [0, 1) never gives log 0


def sample(loc: Tensor, scale: Tensor, beta: Tensor, expand: Callable[[Tensor], Tensor], n: int,
           generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    """A flat tensor of n GGD draws: element i from GGD(loc, scale, beta) of its tensor (per-tensor vectors).

    ``expand`` repeats per-tensor values for each element (``Layout.expand``); computed in ``dtype``.
    loc + sign * scale * G^(1/beta) with G ~ Gamma(1/beta): a zero scale gives loc exactly.
    """
    loc_e, scale_e, beta_e = expand(torch.stack([loc, scale, beta], 1).to(dtype)).unbind(1)
    if n == 0:
        return loc_e.clone()
    shape_e = beta_e.reciprocal()
    magnitude = scale_e * torch.exp(log_gamma(shape_e, generator) * shape_e)
    sign = torch.where(torch.rand(n, generator=generator, dtype=dtype, device=loc_e.device) < 0.5, -1.0, 1.0)
    return torch.addcmul(loc_e, sign.to(dtype), magnitude)
