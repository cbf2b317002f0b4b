"""One-off start-up costs, paid before the first epoch so that they sit in the `setup` window, not in
epoch 0's `train`: the thread pools and autograd's workers starting, the allocator's first blocks, kernel
and primitive caches (oneDNN, cuDNN) for the training shapes, the evaluation loader's workers.

The warm-up is one forward and backward pass of `predict` on a batch of zeros shaped like a training
step's inputs, on the model itself. It leaves no trace in the trained results: every random generator,
every buffer (BatchNorm statistics) and every gradient are put back as they were, and no optimizer steps
(so no optimizer state is created). The training loader's workers start in epoch 0 as before, because
their random seeds are drawn when they start.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from dagrad.run.checkpoint import rng_state, set_rng_state
from dagrad.datasets.loading import to_device


def warm_up(algorithm: nn.Module, input_shape: tuple[int, ...], batch: int, device: torch.device,
            numerics: Any, eval_loader: Optional[Any] = None) -> dict:
    """Run the warm-up (see the module docstring); returns what it did, for the record."""
    state = rng_state()
    buffers = [(b, b.detach().clone()) for b in algorithm.buffers()]
    grads = [(p, p.grad) for p in algorithm.parameters()]
    done: dict[str, Any] = {"batch": [batch, *input_shape]}
    try:
        x = to_device(torch.zeros(batch, *input_shape), device, numerics.channels_last)
        with numerics.autocast():
            out = algorithm.predict(x)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.float().sum().backward()
        done["pass"] = "forward+backward" if isinstance(out, torch.Tensor) and out.requires_grad else "forward"
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # its kernels finish inside the setup window
    except (RuntimeError, TypeError, ValueError) as exc:  # a model that cannot take zeros: its epoch 0 pays
        done["pass"] = f"skipped ({type(exc).__name__}: {str(exc)[:120]})"
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for p, g in grads:
            p.grad = g
        set_rng_state(state)
    if eval_loader is not None and hasattr(eval_loader, "start"):
        done["eval_workers"] = eval_loader.start()
        set_rng_state(state)  # a loader draws its workers' base seed from the global generator
    return done
