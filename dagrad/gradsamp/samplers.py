"""GradSamp update rules: readings of how a sampled epoch's step is drawn from Delta = theta_{t-1} - theta_{t-2}.

The paper (arXiv 2406.07332) draws each parameter's step element-wise from a Gaussian estimated from the
last two epochs' difference; its exact estimator is not published, so each plausible reading is a named
sampler. A sampler only draws the step for one tensor; the orchestrator (gradsamp.py) applies the scale,
checks finiteness and writes theta_t = theta_{t-1} + scale * step.

All samplers compute in float64 and return a tensor of Delta's shape and dtype, drawn with the given
generator only (never the global RNG), so a draw is a pure function of (Delta, generator seed).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from dagrad.errors import ConfigError
from dagrad.gradsamp import ggd
from dagrad.registry import Option, Registry


def _moments(delta: Tensor) -> tuple[float, float]:
    """Mean and population standard deviation (divisor n) of a tensor; (0, 0) for an empty one.

    Population std, not the unbiased one, so a one-element tensor has sigma = 0 instead of NaN.
    """
    d = delta.detach().reshape(-1).to(torch.float64)
    if d.numel() == 0:
        return 0.0, 0.0
    return float(d.mean()), float(d.std(correction=0))


class Sampler:
    """Base class: ``draw`` returns the step for one tensor; ``fit`` the distribution it draws from."""

    name: str = "base"

    def fit(self, delta: Tensor) -> dict[str, float]:
        """Summary of the step distribution for this Delta: 'mu' and 'sigma' (plus sampler-specific keys)."""
        raise NotImplementedError

    def draw(self, delta: Tensor, generator: torch.Generator) -> Tensor:
        """A step with Delta's shape and dtype, drawn using only ``generator``."""
        return self.draw_fitted(delta, generator)[0]

    def draw_fitted(self, delta: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        """(step, fit): the draw together with the distribution summary it was drawn from, fitted once."""
        fit = self.fit(delta)
        return self._draw(delta, fit, generator), fit

    def _draw(self, delta: Tensor, fit: dict[str, float], generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for records."""
        return {"name": self.name}


class TensorGaussian(Sampler):
    """Per tensor: mu = mean(Delta), sigma = population std(Delta); every element ~ N(mu, sigma^2) i.i.d.

    The default reading: one Gaussian per parameter tensor, so the step keeps the tensor's average drift
    and overall spread but forgets which element moved where.
    """

    name = "tensor"

    def fit(self, delta: Tensor) -> dict[str, float]:
        mu, sigma = _moments(delta)
        return {"mu": mu, "sigma": sigma}

    def _draw(self, delta: Tensor, fit: dict[str, float], generator: torch.Generator) -> Tensor:
        z = torch.randn(delta.shape, generator=generator, dtype=torch.float64)
        return (fit["mu"] + fit["sigma"] * z).to(delta.dtype)


class ElementGaussian(Sampler):
    """Per element: step_i ~ N(Delta_i, (c * |Delta_i|)^2); keeps each element's direction, jitters its size.

    c = 0.5 (default) keeps the sign of a step with probability ~98% (2 sigma); c = 0 is ``extrapolate``.
    """

    name = "element"

    def __init__(self, c: float = 0.5) -> None:
        if not c >= 0.0 or c == float("inf"):
            raise ConfigError(f"element sampler: c must be a finite number >= 0, got {c!r}")
        self.c = float(c)

    def fit(self, delta: Tensor) -> dict[str, float]:
        d = delta.detach().to(torch.float64)
        if d.numel() == 0:
            return {"mu": 0.0, "sigma": 0.0}
        return {"mu": float(d.mean()), "sigma": self.c * float(d.abs().mean())}

    def _draw(self, delta: Tensor, fit: dict[str, float], generator: torch.Generator) -> Tensor:
        d = delta.detach().to(torch.float64)
        z = torch.randn(delta.shape, generator=generator, dtype=torch.float64)
        return (d + self.c * d.abs() * z).to(delta.dtype)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c}


class GeneralizedGaussian(Sampler):
    """Per tensor: GGD with location mean(Delta), std equal to std(Delta) and shape beta.

    beta given: 2 is the ``tensor`` sampler, 1 a Laplace (heavier tails). beta None: fitted per tensor by
    matching (E|x-mu|)^2 / E(x-mu)^2, clipped to [0.3, 8] (see ggd.fit_beta).
    """

    name = "ggd"

    def __init__(self, beta: float | None = None) -> None:
        if beta is not None and (not beta > 0.0 or beta == float("inf")):
            raise ConfigError(f"ggd sampler: beta must be a finite number > 0 or null (fit), got {beta!r}")
        self.beta = None if beta is None else float(beta)

    def fit(self, delta: Tensor) -> dict[str, float]:
        mu, sigma = _moments(delta)
        beta = self.beta if self.beta is not None else ggd.fit_beta(delta)
        return {"mu": mu, "sigma": sigma, "beta": beta}

    def _draw(self, delta: Tensor, p: dict[str, float], generator: torch.Generator) -> Tensor:
        scale = ggd.scale_for_std(p["sigma"], p["beta"])
        return ggd.sample_ggd(delta.shape, p["mu"], scale, p["beta"], generator).to(delta.dtype)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "beta": "fit" if self.beta is None else self.beta}


class Extrapolate(Sampler):
    """step = Delta exactly: linear extrapolation of the last epoch, no noise (sigma = 0)."""

    name = "extrapolate"

    def fit(self, delta: Tensor) -> dict[str, float]:
        return {"mu": _moments(delta)[0], "sigma": 0.0}

    def _draw(self, delta: Tensor, fit: dict[str, float], generator: torch.Generator) -> Tensor:
        return delta.detach().clone()


class Skip(Sampler):
    """step = 0 exactly (theta_t = theta_{t-1}): the equal-energy control that just drops the epoch."""

    name = "skip"

    def fit(self, delta: Tensor) -> dict[str, float]:
        return {"mu": 0.0, "sigma": 0.0}

    def _draw(self, delta: Tensor, fit: dict[str, float], generator: torch.Generator) -> Tensor:
        return torch.zeros_like(delta)


SAMPLERS: Registry[type] = Registry("sampler", "gradsamp.sampler", builtins="dagrad.gradsamp.samplers")

SCALE = Option(1.0, float, "alpha: every drawn step is multiplied by it", low=0.0)
SAMPLERS.register("tensor", TensorGaussian, options={"scale": SCALE})
SAMPLERS.register("element", ElementGaussian, options={
    "scale": SCALE, "c": Option(0.5, float, "relative spread: step_i ~ N(delta_i, (c |delta_i|)^2)", low=0.0)})
SAMPLERS.register("ggd", GeneralizedGaussian, options={
    "scale": SCALE, "beta": Option(None, float, "GGD shape (2 Gaussian, 1 Laplace); null fits it per tensor",
                                   low=0.0, low_open=True, nullable=True)})
SAMPLERS.register("extrapolate", Extrapolate, options={"scale": SCALE})
SAMPLERS.register("skip", Skip, description="step = 0: the equal-energy control that simply drops the epoch")


def sampler_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sampler's options with defaults filled in, each checked (`scale` included where it applies)."""
    return SAMPLERS.get(name).resolve(options, "gradsamp.sampler_options")


def build_sampler(name: str, **options: Any) -> Sampler:
    """The sampler called `name` with its options (`scale` is applied by GradSamp, not the sampler)."""
    resolved = sampler_options(name, options)
    resolved.pop("scale", None)
    return SAMPLERS.load(name)(**resolved)
