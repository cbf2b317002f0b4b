"""How a run computes: its floating-point precision, whether cuDNN must be deterministic, and the memory
layout of images. The defaults reproduce DomainBed's numerics; every record header states what was used.

Precisions (`precision:`):
- `torch_default` (default): PyTorch's own defaults, which DomainBed runs: float32 matmuls; on Ampere and
  newer GPUs cuDNN convolutions may use TF32 (`torch.backends.cudnn.allow_tf32` is True by default).
- `fp32_strict`: float32 everywhere, TF32 off for matmuls and convolutions alike.
- `tf32`: TF32 tensor cores for float32 matmuls and convolutions (about 10 mantissa bits in the products).
- `bf16`: the forward and backward passes under autocast to bfloat16 (matmuls and convolutions in
  bfloat16; reductions and losses stay float32). Parameters, gradients, optimizer state and GradSamp's
  draws and history stay float32. No loss scaling is needed for bfloat16.
TF32 exists only on CUDA GPUs, so on a CPU `torch_default`, `fp32_strict` and `tf32` compute the same.

`deterministic: true` (default, as DomainBed) makes cuDNN pick deterministic algorithms and turns its
autotuner off; `false` lets `cudnn.benchmark` pick the fastest algorithm per input shape. CPU runs are
deterministic either way.

`channels_last: true` stores convolutional backbones' weights and input batches channels-last (NHWC),
the layout tensor cores use without transposing.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ContextManager, NamedTuple, Optional

if TYPE_CHECKING:  # torch is imported where it is used, so the config schema reads PRECISIONS without it
    import torch
    from torch import nn


class Precision(NamedTuple):
    """One precision: what it means, how CUDA computes float32 matmuls and convolutions ("ieee" = true
    float32), and the dtype forwards autocast to (None: no autocast)."""

    meaning: str
    cuda_matmul: str
    cudnn_conv: str
    autocast: Optional[str] = None


#: every precision `precision:` may name, declared here only (the config schema takes its choices from it)
PRECISION_TABLE: dict[str, Precision] = {
    "torch_default": Precision("PyTorch's defaults (DomainBed's numerics): float32 matmuls; cuDNN convolutions may "
                               "use TF32 on Ampere and newer GPUs", "ieee", "tf32"),
    "fp32_strict": Precision("float32 everywhere: TF32 off for matmuls and cuDNN convolutions", "ieee", "ieee"),
    "tf32": Precision("TF32 tensor cores for float32 matmuls and cuDNN convolutions (Ampere and newer GPUs)",
                      "tf32", "tf32"),
    "bf16": Precision("autocast to bfloat16 for matmuls and convolutions; parameters, optimizer state and GradSamp "
                      "in float32", "ieee", "tf32", "bfloat16"),
}
#: precision -> what it means, in words (reports)
PRECISIONS: dict[str, str] = {name: p.meaning for name, p in PRECISION_TABLE.items()}


def _new_tf32_api() -> bool:
    """torch >= 2.9 sets TF32 per backend with `fp32_precision`; mixing it with the legacy flags is an error."""
    import torch

    conv = getattr(torch.backends.cudnn, "conv", None)
    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(conv, "fp32_precision")


def _cuda_flags() -> dict[str, Any]:
    import torch

    cudnn = torch.backends.cudnn
    if _new_tf32_api():
        tf32 = {"cuda_matmul_fp32": torch.backends.cuda.matmul.fp32_precision,
                "cudnn_conv_fp32": cudnn.conv.fp32_precision, "cudnn_rnn_fp32": cudnn.rnn.fp32_precision}
    else:
        tf32 = {"cuda_matmul_fp32": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
                "cudnn_conv_fp32": "tf32" if cudnn.allow_tf32 else "ieee"}
    return {**tf32, "cudnn_deterministic": cudnn.deterministic, "cudnn_benchmark": cudnn.benchmark}


def _set_cuda_flags(flags: dict[str, Any]) -> None:
    import torch

    cudnn = torch.backends.cudnn
    if _new_tf32_api():
        torch.backends.cuda.matmul.fp32_precision = flags["cuda_matmul_fp32"]
        cudnn.conv.fp32_precision = flags["cudnn_conv_fp32"]
        cudnn.rnn.fp32_precision = flags.get("cudnn_rnn_fp32", flags["cudnn_conv_fp32"])
    else:
        torch.backends.cuda.matmul.allow_tf32 = flags["cuda_matmul_fp32"] == "tf32"
        cudnn.allow_tf32 = flags["cudnn_conv_fp32"] == "tf32"
    cudnn.deterministic = flags["cudnn_deterministic"]
    cudnn.benchmark = flags["cudnn_benchmark"]


def has_convolutions(module: nn.Module) -> bool:
    from torch import nn

    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())


@dataclass(frozen=True)
class Numerics:
    """A run's precision, determinism and layout on its device (see the module docstring). The precision is
    one of PRECISION_TABLE, checked once, by the config schema; an Experiment holds its Numerics without a
    device, and the run places it with `on(device)`."""

    device: Optional[torch.device] = None
    precision: str = "torch_default"
    deterministic: bool = True
    channels_last: bool = False

    def on(self, device: torch.device) -> "Numerics":
        """The same numerics on the run's device."""
        return dataclasses.replace(self, device=device)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        import torch

        name = PRECISION_TABLE[self.precision].autocast
        return getattr(torch, name) if name else None

    def apply(self) -> Callable[[], None]:
        """Set the process-wide CUDA flags this run needs; returns a function that puts back the old ones."""
        if not self.cuda:
            return lambda: None
        before = _cuda_flags()
        matmul, conv = PRECISION_TABLE[self.precision][1:3]
        _set_cuda_flags({"cuda_matmul_fp32": matmul, "cudnn_conv_fp32": conv, "cudnn_rnn_fp32": conv,
                         "cudnn_deterministic": self.deterministic, "cudnn_benchmark": not self.deterministic})
        return lambda: _set_cuda_flags(before)

    def autocast(self) -> ContextManager:
        """The context every forward (and the backward it records) runs in."""
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def prepare(self, model: nn.Module) -> bool:
        """Channels-last weights for a convolutional model when asked; returns whether the layout changed."""
        if self.channels_last and has_convolutions(model):
            import torch

            model.to(memory_format=torch.channels_last)
            return True
        return False

    def describe(self, model: nn.Module | None = None) -> dict[str, Any]:
        """What the header records: the settings and the flags actually in force (read back from torch)."""
        out: dict[str, Any] = {
            "precision": self.precision, "meaning": PRECISIONS[self.precision],
            "autocast": str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else None,
            "deterministic": self.deterministic, "channels_last": self.channels_last,
            "device": str(self.device),
        }
        if model is not None:
            out["channels_last_applied"] = self.channels_last and has_convolutions(model)
        if self.cuda:
            out["cuda"] = _cuda_flags()
        else:
            out["note"] = "CPU: no TF32 and no cuDNN; deterministic for a fixed seed"
        return out
