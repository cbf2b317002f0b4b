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

import functools
from typing import Any, Mapping

import torch
from torch import Tensor

from dagrad.gradsamp import ggd
from dagrad.run.epochs import EpochOutcome
from dagrad.gradsamp.history import History, Layout, layout_for
from dagrad.registry import Entry, Option, Registry, options_text, value_text

Fit = dict[str, Tensor]
"""Per-tensor summary of the step distribution: float64 vectors 'mu', 'sigma' (and 'beta'), on the device."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a draw is computed in: the tensor's own, or float32 for 16-bit tensors."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _powsums(views: list[Tensor], ord: int) -> list[Tensor]:
    """sum |x|^ord (ord 1 or 2) of each tensor, accumulated in float64, in fused calls.

    CUDA's fused reductions read float32 and accumulate in float64 directly; on a CPU each view is cast
    on its own, which is cheaper than one float64 copy of the whole flat tensor.
    """
    if ord == 2 and hasattr(torch, "_foreach_powsum"):
        return list(torch._foreach_powsum(views, 2, dtype=torch.float64))
    norms = torch._foreach_norm(views, ord, dtype=torch.float64)
    return list(norms) if ord == 1 else list(torch._foreach_mul(norms, norms))  # older torch: within 2 ulps


def tensor_sums(layout: Layout, flats: list[Tensor], ord: int) -> Tensor:
    """sum |x|^ord per tensor of each flat tensor of ``layout``: a float64 (len(flats), tensors) matrix."""
    views = [v for f in flats for v in layout.split(f)]
    if not views:
        return torch.zeros(len(flats), 0, dtype=torch.float64, device=flats[0].device)
    return torch.stack(_powsums(views, ord)).view(len(flats), -1)


def total(flat: Tensor, ord: int) -> Tensor:
    """sum |x|^ord over a whole flat tensor, accumulated in float64 (fused, over fixed 1 Mi-element chunks)."""
    if flat.numel() == 0:
        return torch.zeros((), dtype=torch.float64, device=flat.device)
    return torch.stack(_powsums(list(flat.split(2**20)), ord)).sum()


VARIANCE_FLOOR = 2.0 ** -44
"""A variance below this fraction of the mean square is rounding noise of the float64 sums (a spread of
at most 2 float32 ulps): it is taken as 0, so a constant tensor draws its value exactly."""


class Moments:
    """Per-tensor moments of a flat Delta, float64 vectors on its device, each computed on first use.

    Sums are accumulated in float64 and read from Delta without a centred copy: fused per-tensor norms
    (on a CPU, where launches cost nothing, plain per-view sums for the mean), and the population variance
    (divisor n, so one element has sigma = 0 instead of NaN) is E x^2 - (E x)^2, which float64 keeps
    accurate for float32 data.
    """

    def __init__(self, delta: Tensor, layout: Layout) -> None:
        self.delta, self.layout = delta, layout

    @functools.cached_property
    def count(self) -> Tensor:
        """Elements per tensor, at least 1 (an empty tensor has mean 0 and sigma 0)."""
        return self.layout.counts(self.delta.device, torch.float64).clamp_min(1)

    @functools.cached_property
    def abs_sum(self) -> Tensor:
        return tensor_sums(self.layout, [self.delta], 1)[0]

    @functools.cached_property
    def square_sum(self) -> Tensor:
        return tensor_sums(self.layout, [self.delta], 2)[0]

    @functools.cached_property
    def mean(self) -> Tensor:
        if self.delta.device.type == "cpu":  # per-view sums: no launch cost here, and no clamped copy
            sums = [v.sum(dtype=torch.float64) for v in self.layout.split(self.delta)]
            total_ = torch.stack(sums) if sums else torch.zeros(0, dtype=torch.float64)
        else:  # fused: sum x = sum |x| - 2 sum |min(x, 0)|
            l1 = tensor_sums(self.layout, [self.delta, self.delta.clamp_max(0)], 1)
            self.__dict__.setdefault("abs_sum", l1[0])
            total_ = l1[0] - 2.0 * l1[1]
        return total_ / self.count

    @functools.cached_property
    def mean_abs(self) -> Tensor:
        return self.abs_sum / self.count

    @functools.cached_property
    def std(self) -> Tensor:
        mean_square = self.square_sum / self.count
        variance = mean_square - self.mean.square()
        return torch.where(variance <= VARIANCE_FLOOR * mean_square, 0.0, variance).sqrt()

    def centred_abs_mean(self) -> Tensor:
        """E|x - mean| per tensor (one centred pass over Delta)."""
        centred = self.layout.affine_(self.delta.clone(), None, -self.mean.to(self.delta.dtype))
        return tensor_sums(self.layout, [centred], 1)[0] / self.count


class Sampler:
    """Base class: ``draw_flat`` draws the step of a group of tensors; ``draw``/``fit`` serve one tensor."""

    name: str = "base"
    moves: bool = True
    """False for a sampler whose step is always zero: the orchestrator then writes nothing at all."""
    scale: float = 1.0
    """alpha, the `scale` option: GradSamp multiplies every drawn step by it (set when the entry builds)."""

    def draw_flat(self, delta: Tensor, layout: Layout, generator: torch.Generator, finish: bool = True,
                  moments: Moments | None = None) -> tuple[Tensor, Fit]:
        """(step, fit) for a flat Delta of ``layout``: step flat in Delta's dtype, fit per tensor.

        ``moments``: Delta's, if the caller has them already. ``finish=False`` lets a sampler with a rare
        data-dependent tail (``ggd``'s gamma leftovers) skip the host sync that finishing it needs and report
        instead, as fit['leftover'], how many elements it left unfinished; if that is not 0 the caller must
        draw again from the same seed with ``finish=True``.
        """
        work = delta.to(compute_dtype(delta.dtype))
        fit = self.fit_flat(work, layout, moments if moments is not None and work is delta else None)
        return self._draw(work, layout, fit, generator, finish).to(delta.dtype), fit

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        """Per-tensor summary of the step distribution for a flat Delta."""
        raise NotImplementedError

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator, finish: bool) -> Tensor:
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
        return step.view(delta.shape), {k: v[0] for k, v in fit.items() if k != "leftover"}

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for records."""
        return {"name": self.name}

    @classmethod
    def label(cls, options: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
        """How reports and the study name this reading with these options (`defaults`: its registry
        entry's): "ema α=0.5 decay=0.8", the scale α always, any other option off its default."""
        rest = dict(options)
        scale = f" α={value_text(rest.pop('scale'))}" if "scale" in rest else ""
        return cls.name + scale + options_text(rest, defaults or {})

    def observe(self, history: History, outcome: EpochOutcome) -> None:
        """After the history has recorded an epoch (an EpochOutcome): a sampler that remembers more than
        the last two states updates itself here (see variants.py). The built-in readings keep nothing."""

    def state_dict(self) -> dict[str, Any] | None:
        """What ``observe`` kept, as CPU tensors and plain data (None: nothing to checkpoint)."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore ``state_dict()``'s output."""


def _single(delta: Tensor) -> tuple[Tensor, Layout]:
    return delta.detach().reshape(-1), layout_for(("",), (delta.shape,), delta.dtype)


class TensorGaussian(Sampler):
    """Per tensor: mu = mean(Delta), sigma = population std(Delta); every element ~ N(mu, sigma^2) i.i.d.

    The default reading: one Gaussian per parameter tensor, so the step keeps the tensor's average drift
    and overall spread but forgets which element moved where.
    """

    name = "tensor"

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        m = moments or Moments(delta, layout)
        return {"mu": m.mean, "sigma": m.std}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator, finish: bool) -> Tensor:
        z = torch.randn(delta.shape, generator=generator, dtype=delta.dtype, device=delta.device)
        return layout.affine_(z, fit["sigma"].to(delta.dtype), fit["mu"].to(delta.dtype))


class ElementGaussian(Sampler):
    """Per element: step_i ~ N(Delta_i, (c * |Delta_i|)^2); keeps each element's direction, jitters its size.

    c = 0.5 (default) keeps the sign of a step with probability ~98% (2 sigma); c = 0 is ``extrapolate``.
    The reported sigma is c * mean |Delta| per tensor.
    """

    name = "element"

    def __init__(self, c: float = 0.5) -> None:
        self.c = float(c)  # valid range declared in the registry entry below

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        m = moments or Moments(delta, layout)
        return {"mu": m.mean, "sigma": self.c * m.mean_abs}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator, finish: bool) -> Tensor:
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
        self.beta = None if beta is None else float(beta)  # valid range declared in the registry entry below

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        m = moments or Moments(delta, layout)
        if self.beta is not None:
            beta = torch.full_like(m.mean, self.beta)
        else:
            beta = ggd.fit_betas(m.centred_abs_mean(), m.std.square(), m.count)
        return {"mu": m.mean, "sigma": m.std, "beta": beta}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator, finish: bool) -> Tensor:
        unit, fit["leftover"] = ggd.standard(fit["beta"], layout.expand, delta.numel(), generator, delta.dtype,
                                             finish)
        scale = ggd.scale_for_std(fit["sigma"], fit["beta"])
        return layout.affine_(unit, scale.to(delta.dtype), fit["mu"].to(delta.dtype))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "beta": "fit" if self.beta is None else self.beta}


class Extrapolate(Sampler):
    """step = Delta exactly: linear extrapolation of the last epoch, no noise (sigma = 0)."""

    name = "extrapolate"

    def draw_flat(self, delta: Tensor, layout: Layout, generator: torch.Generator, finish: bool = True,
                  moments: Moments | None = None) -> tuple[Tensor, Fit]:
        return delta, self.fit_flat(delta, layout, moments)  # the step is Delta itself: no copy

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        mu = (moments or Moments(delta, layout)).mean
        return {"mu": mu, "sigma": torch.zeros_like(mu)}


class Skip(Sampler):
    """step = 0 exactly (theta_t = theta_{t-1}): the equal-energy control that just drops the epoch."""

    name = "skip"
    moves = False

    def fit_flat(self, delta: Tensor, layout: Layout, moments: Moments | None = None) -> Fit:
        zeros = torch.zeros(len(layout.numels), dtype=torch.float64, device=delta.device)
        return {"mu": zeros, "sigma": zeros}

    def _draw(self, delta: Tensor, layout: Layout, fit: Fit, generator: torch.Generator, finish: bool) -> Tensor:
        return torch.zeros_like(delta)


def _build(entry: Entry, options: dict[str, Any]) -> Sampler:
    """A sampler from its resolved options: `scale` is kept on it for GradSamp (which applies it), the
    other options go to its constructor. A sampler without the option moves by the whole step."""
    scale = float(options.pop("scale", 1.0))
    sampler = entry.load()(**options)
    sampler.scale = scale
    return sampler


SAMPLERS: Registry[type] = Registry("sampler", "gradsamp.sampler", builtins="dagrad.gradsamp.samplers",
                                    options_key="gradsamp.sampler_options", builder=_build)

SCALE = Option(1.0, float, "alpha: every drawn step is multiplied by it", low=0.0)
SAMPLERS.register("tensor", TensorGaussian, options={"scale": SCALE})
SAMPLERS.register("element", ElementGaussian, options={
    "scale": SCALE, "c": Option(0.5, float, "relative spread: step_i ~ N(delta_i, (c |delta_i|)^2)", low=0.0)})
SAMPLERS.register("ggd", GeneralizedGaussian, options={
    "scale": SCALE, "beta": Option(None, float, "GGD shape (2 Gaussian, 1 Laplace); null fits it per tensor",
                                   low=0.0, low_open=True, nullable=True)})
SAMPLERS.register("extrapolate", Extrapolate, options={"scale": SCALE})
SAMPLERS.register("skip", Skip, description="step = 0: the equal-energy control that simply drops the epoch")
# dagrad's own readings (not the paper's), in variants.py: they also remember earlier epochs' steps
SAMPLERS.register("shrink", "dagrad.gradsamp.variants:Shrink", options={
    "scale": SCALE, "c": Option(0.5, float, "relative spread before damping: step_i ~ N(delta_i, (c rho |delta_i|)^2)",
                                low=0.0)},
    description="dagrad's own: element's draw, its spread damped by rho = min(1, |delta_t| / |delta_t-1|) per tensor")
SAMPLERS.register("ema", "dagrad.gradsamp.variants:ExponentialAverage", options={
    "scale": SCALE,
    "decay": Option(0.5, float, "weight of the older average at each trained epoch (0: extrapolate)", low=0.0,
                    high=1.0, high_open=True),
    "c": Option(1.0, float, "spread: c x RMS of (delta - average) per tensor", low=0.0)},
    description="dagrad's own: the trend of the trained epochs' steps (exponential average) plus their noise")
