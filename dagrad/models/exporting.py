"""`dagrad export`: a kept model as TorchScript (always) or ONNX (with the `export` extra: onnx and
onnxruntime), checked against the eager model on a batch of the run's input shape before it is kept."""

from __future__ import annotations

import importlib.util
import io
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from dagrad.utils.atomic import write_atomic
from dagrad.utils.errors import ConfigError, DagradError
from dagrad.models.loading import LoadedModel, load_model

FORMATS = ("torchscript", "onnx")
SUFFIX = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}
EXPORT_DIR = "exported"
#: how far an exported model's logits may be from the eager model's (float32 reassociation)
ATOL, RTOL = 1e-4, 1e-4


def example_input(loaded: LoadedModel, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *loaded.input_shape), generator=g)


def to_torchscript(loaded: LoadedModel, example: torch.Tensor) -> bytes:
    """The model traced to TorchScript (its `forward` returns logits), as bytes of a torch.jit file."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes and tracer hints; outputs are checked below
        traced = torch.jit.trace(loaded.model, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def run_torchscript(data: bytes, x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    with torch.no_grad():
        return module(x)


def require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"--format onnx needs the export extra ({' and '.join(missing)} not installed): "
                          f"pip install 'dagrad[export]'")


def to_onnx(loaded: LoadedModel, example: torch.Tensor) -> bytes:
    """The model as ONNX (TorchScript-based exporter, batch dimension dynamic)."""
    require_onnx()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(loaded.model, (example,), str(path), input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
        return path.read_bytes()


def run_onnx(data: bytes, x: torch.Tensor) -> torch.Tensor:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def export(run: Any, fmt: str = "torchscript", which: str | int = "best", out: Optional[str | Path] = None,
           plugins: Any = ()) -> tuple[Path, float]:
    """Write the kept model `which` of `run` in `fmt`; returns the file and the largest absolute difference
    from the eager model's logits (checked within ATOL/RTOL before anything is written)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not a format; choose one of: {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    loaded = load_model(run, which, device="cpu", plugins=plugins)
    example = example_input(loaded)
    with torch.no_grad():
        eager = loaded.model(example)
    try:
        data = to_torchscript(loaded, example) if fmt == "torchscript" else to_onnx(loaded, example)
    except DagradError:
        raise
    except Exception as exc:  # noqa: BLE001 - tracer/exporter failures name the network's unsupported part
        raise ConfigError(f"cannot export this model to {fmt}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    check = example_input(loaded, batch=3, seed=1)
    with torch.no_grad():
        reference = loaded.model(check)
    got = run_torchscript(data, check) if fmt == "torchscript" else run_onnx(data, check)
    diff = float((got - reference).abs().max())
    if not torch.allclose(got, reference, atol=ATOL, rtol=RTOL) or not torch.allclose(
            run_torchscript(data, example) if fmt == "torchscript" else run_onnx(data, example), eager,
            atol=ATOL, rtol=RTOL):
        raise ConfigError(f"the {fmt} export differs from the eager model (max |difference| {diff:.3g}); "
                          f"nothing was written")
    path = Path(out) if out else loaded.file.parent.parent / EXPORT_DIR / f"{loaded.which}{SUFFIX[fmt]}"
    write_atomic(path, lambda f: f.write(data))
    return path, diff
