"""Precision and determinism settings: the CUDA flags each one sets (checked without a GPU, through
torch's backend flags), restored afterwards; autocast only for bf16."""

from __future__ import annotations

import pytest
import torch

from dagrad.config.files import load_config
from dagrad.run.numerics import PRECISIONS, Numerics, _cuda_flags
from dagrad.utils.errors import ConfigError

CUDA = torch.device("cuda", 0)
EXPECTED = {  # (float32 matmuls, float32 convolutions)
    "torch_default": ("ieee", "tf32"), "fp32_strict": ("ieee", "ieee"), "tf32": ("tf32", "tf32"),
    "bf16": ("ieee", "tf32"),
}


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("deterministic", [True, False])
def test_each_precision_sets_the_documented_flags_and_restores_them(precision, deterministic):
    before = _cuda_flags()
    restore = Numerics(CUDA, precision, deterministic).apply()
    try:
        flags = _cuda_flags()
        assert (flags["cuda_matmul_fp32"], flags["cudnn_conv_fp32"]) == EXPECTED[precision]
        assert flags["cudnn_deterministic"] is deterministic and flags["cudnn_benchmark"] is (not deterministic)
        described = Numerics(CUDA, precision, deterministic).describe()
        assert described["cuda"] == flags and described["precision"] == precision
    finally:
        restore()
    assert _cuda_flags() == before


def test_the_default_is_pytorchs_own_numerics():
    """torch_default leaves TF32 exactly as a fresh PyTorch process has it (DomainBed's numerics)."""
    import ast
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-c", "from dagrad.run.numerics import _cuda_flags; print(_cuda_flags())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    restore = Numerics(CUDA, "torch_default", True).apply()
    try:
        ours = _cuda_flags()
    finally:
        restore()
    fresh_flags = ast.literal_eval(fresh)
    assert {"none": "ieee"}.get(fresh_flags["cuda_matmul_fp32"], fresh_flags["cuda_matmul_fp32"]) == "ieee"
    assert ours["cuda_matmul_fp32"] == "ieee"  # "none" (unset) means IEEE float32 matmuls
    assert ours["cudnn_conv_fp32"] == fresh_flags["cudnn_conv_fp32"] == "tf32"  # cuDNN may use TF32 by default


def test_cpu_runs_touch_no_flag_and_autocast_only_for_bf16():
    before = _cuda_flags()
    restore = Numerics(torch.device("cpu"), "tf32", False).apply()
    assert _cuda_flags() == before
    restore()
    with Numerics(torch.device("cpu"), "bf16").autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with Numerics(torch.device("cpu"), "torch_default").autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(ConfigError, match="precision: 'fp16' is not allowed; choose one of: torch_default, "
                                          "fp32_strict, tf32, bf16"):  # checked once, by the schema
        load_config(None, ["precision=fp16"])
