"""GradSamp update rules: readings of how a sampled epoch's step is drawn from Delta = theta_{t-1} - theta_{t-2}.

The paper (arXiv 2406.07332) draws each parameter's step element-wise from a Gaussian estimated from the
last two epochs' difference; its exact estimator is not published, so each plausible reading is a named
sampler. A sampler only draws the step; the orchestrator (gradsamp.py) applies the scale, checks
finiteness and writes theta_t = theta_{t-1} + scale * step.

Samplers work on a whole group of tensors at once (``draw_flat``: the tensors laid end to end, see
``history.Layout``), on their device and in their dtype (float32 for 16-bit ones), so a draw costs a few
kernels whatever the number of tensors and never reads a value back to the host. Per-tensor statistics are
accumulated in float64 by fused kernels and stay on the device. Draws use the given generator only (never
the global RNG), so a draw is a pure function of (Delta, generator seed).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from dagrad.errors import ConfigError
from dagrad.gradsamp import ggd
from dagrad.gradsamp.history import Layout, layout_for

Fit = dict[str, Tensor]
"""Per-tensor summary of the step distribution: float64 vectors 'mu', 'sigma' (and 'beta'), on the device."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a draw is computed in: the tensor's own, or float32 for 16-bit tensors."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def moments(delta: Tensor, layout: Layout) -> tuple[Tensor, Tensor, Tensor]:
    """Per-tensor (count, mean, mean |x|) of a flat Delta, float64 vectors; an empty tensor has mean 0.

    The sums come from fused per-tensor L1 norms accumulated in float64: sum x = sum |x| - 2 sum |min(x, 0)|.
    """
    n = layout.counts(delta.device, torch.float64)
    abs_sum = layout.norms(delta, 1)
    total = abs_sum - 2.0 * layout.norms(delta.clamp_max(0), 1)
    return n, total / n.clamp_min(1), abs_sum / n.clamp_min(1)


def spread(delta: Tensor, layout: Layout, mu: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """Per-tensor (population std, mean absolute deviation) around ``mu``, float64 vectors.

    Population std (divisor n), not the unbiased one, so a one-element tensor has sigma = 0 instead of NaN.
    """
    centred = delta - layout.expand(mu.to(delta.dtype))
    count = n.clamp_min(1)
    return layout.norms(centred, 2) / count.sqrt(), layout.norms(centred, 1) / count


class Sampler:
    """Base class: ``draw_flat`` draws the step of a group of tensors; ``draw``/``fit`` serve one tensor."""

    name: str = "base"
    moves: bool = True
    """False for a sampler whose step is always zero: the orchestrator then writes nothing at all."""

    def draw_flat(self, delta: Tensor, layout: Layout, generator: torch.Generator) -> tuple[Tensor, Fit]:
        """(step, fit) for a flat Delta of ``layout``: step flat in Delta's dtype, fit per tensor."""
        work = delta.to(compute_dtype(delta.dtype))
        fit = self.fit_flat(work, layout)
        return self._draw(work, layout, fit, generator).to(delta.dtype), fit

    def fit_flat(self, delta: Tensor, layout: Layout) -> Fit:
        raise NotImplementedError

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def fit(self, delta: Tensor) -> dict[str, Tensor]:
        """Summary of one tensor's step distribution: 'mu' and 'sigma' (plus sampler-specific keys), 0-dim."""
        return {k: v[0] for k, v in self.fit_flat(*_single(delta)).items()}

    def draw(self, delta: Tensor, generator: torch.Generator) -> Tensor:
        """A step with Delta's shape and dtype, drawn using only ``generator``."""
        return self.draw_fitted(delta, generator)[0]

    def draw_fitted(self, delta: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        """(step, fit) for one tensor: the draw together with the distribution summary it was drawn from."""
        flat, layout = _single(delta)
        step, fit = self.draw_flat(flat, layout, generator)
        if step.data_ptr() == flat.data_ptr() and flat.numel():
            step = step.clone()  # never hand back a view of the caller's Delta
        return step.view(delta.shape), {k: v[0] for k, v in fit.items()}

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for records."""
        return {"name": self.name}


def _single(delta: Tensor) -> tuple[Tensor, Layout]:
    return delta.detach().reshape(-1), layout_for(("",), (delta.shape,), delta.dtype)


def _gaussian(delta: Tensor, layout: Layout, mu: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
    """mu + sigma * z per element, z ~ N(0, 1) from ``generator``, with per-tensor mu and sigma."""
    z = torch.randn(delta.shape, generator=generator, dtype=delta.dtype, device=delta.device)
    mu_e, sigma_e = layout.expand(torch.stack([mu, sigma], 1).to(delta.dtype)).unbind(1)
    return torch.addcmul(mu_e, z, sigma_e)


class TensorGaussian(Sampler):
    """Per tensor: mu = mean(Delta), sigma = population std(Delta); every element ~ N(mu, sigma^2) i.i.d.

    The default reading: one Gaussian per parameter tensor, so the step keeps the tensor's average drift
    and overall spread but forgets which element moved where.
    """

    name = "tensor"

    def fit_flat(self, delta: Tensor, layout: Layout) -> Fit:
        n, mu, _ = moments(delta, layout)
        return {"mu": mu, "sigma": spread(delta, layout, mu, n)[0]}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator) -> Tensor:
        return _gaussian(delta, layout, fit["mu"], fit["sigma"], generator)


class ElementGaussian(Sampler):
    """Per element: step_i ~ N(Delta_i, (c * |Delta_i|)^2); keeps each element's direction, jitters its size.

    c = 0.5 (default) keeps the sign of a step with probability ~98% (2 sigma); c = 0 is ``extrapolate``.
    The reported sigma is c * mean |Delta| per tensor.
    """

    name = "element"

    def __init__(self, c: float = 0.5) -> None:
        if not c >= 0.0 or c == float("inf"):
            raise ConfigError(f"element sampler: c must be a finite number >= 0, got {c!r}")
        self.c = float(c)

    def fit_flat(self, delta: Tensor, layout: Layout) -> Fit:
        _, mu, mean_abs = moments(delta, layout)
        return {"mu": mu, "sigma": self.c * mean_abs}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator) -> Tensor:
        z = torch.randn(delta.shape, generator=generator, dtype=delta.dtype, device=delta.device)
        return torch.addcmul(delta, delta.abs(), z, value=self.c)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c}


class GeneralizedGaussian(Sampler):
    """Per tensor: GGD with location mean(Delta), std equal to std(Delta) and shape beta.

    beta given: 2 is the ``tensor`` sampler, 1 a Laplace (heavier tails). beta None: fitted per tensor by
    matching (E|x-mu|)^2 / E(x-mu)^2, clipped to [0.3, 8] (see ggd.fit_betas).
    """

    name = "ggd"

    def __init__(self, beta: float | None = None) -> None:
        if beta is not None and (not beta > 0.0 or beta == float("inf")):
            raise ConfigError(f"ggd sampler: beta must be a finite number > 0 or null (fit), got {beta!r}")
        self.beta = None if beta is None else float(beta)

    def fit_flat(self, delta: Tensor, layout: Layout) -> Fit:
        n, mu, _ = moments(delta, layout)
        sigma, abs_dev = spread(delta, layout, mu, n)
        if self.beta is not None:
            beta = torch.full_like(mu, self.beta)
        else:
            beta = ggd.fit_betas(abs_dev, sigma.square(), n)
        return {"mu": mu, "sigma": sigma, "beta": beta}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator) -> Tensor:
        scale = ggd.scale_for_std(fit["sigma"], fit["beta"])
        return ggd.sample(fit["mu"], scale, fit["beta"], layout.expand, delta.numel(), generator, delta.dtype)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "beta": "fit" if self.beta is None else self.beta}


class Extrapolate(Sampler):
    """step = Delta exactly: linear extrapolation of the last epoch, no noise (sigma = 0)."""

    name = "extrapolate"

    def draw_flat(self, delta: Tensor, layout: Layout, generator: torch.Generator) -> tuple[Tensor, Fit]:
        return delta, self.fit_flat(delta, layout)  # the step is Delta itself: no copy

    def fit_flat(self, delta: Tensor, layout: Layout) -> Fit:
        mu = moments(delta, layout)[1]
        return {"mu": mu, "sigma": torch.zeros_like(mu)}


class Skip(Sampler):
    """step = 0 exactly (theta_t = theta_{t-1}): the equal-energy control that just drops the epoch."""

    name = "skip"
    moves = False

    def fit_flat(self, delta: Tensor, layout: Layout) -> Fit:
        zeros = torch.zeros(len(layout.numels), dtype=torch.float64, device=delta.device)
        return {"mu": zeros, "sigma": zeros}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator) -> Tensor:
        return torch.zeros_like(delta)


SAMPLERS: dict[str, tuple[Callable[..., Sampler], tuple[str, ...]]] = {
    "tensor": (TensorGaussian, ()),
    "element": (ElementGaussian, ("c",)),
    "ggd": (GeneralizedGaussian, ("beta",)),
    "extrapolate": (Extrapolate, ()),
    "skip": (Skip, ()),
}
"""Sampler name -> (constructor, accepted keyword parameters)."""


def build_sampler(name: str, **params: Any) -> Sampler:
    """The sampler called ``name`` with its parameters; ConfigError naming what is allowed otherwise."""
    if name not in SAMPLERS:
        allowed = ", ".join(sorted(SAMPLERS))
        raise ConfigError(f"unknown GradSamp sampler {name!r}; allowed: {allowed}")
    factory, accepted = SAMPLERS[name]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) if accepted else "none"
        raise ConfigError(f"sampler {name!r} does not take {', '.join(unknown)}; its parameters: {allowed}")
    return factory(**params)
