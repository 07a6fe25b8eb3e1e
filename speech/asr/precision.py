"""Optional faster inference modes for CTC models: bf16 autocast or int8 dynamically quantised linear layers.

Neither is a default: fp32 is exact (transcripts identical to transformers'), these trade agreement for
speed. Measured in benchmarks/hf_pipeline_throughput.py (``modes=fp32,bf16,int8``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "int8")
"""Inference precisions: exact fp32, bf16 autocast (CPUs with native bf16, or CUDA), int8 linear layers (CPU)."""


def with_precision(model: nn.Module, precision: str, device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, Callable[[], contextlib.AbstractContextManager[object]]]:
    """The model to run for ``precision`` and a factory of the context to run it in.

    int8 replaces every ``nn.Linear`` by a dynamically quantised one (weights int8, activations quantised
    per batch); convolutions, norms and the output log-softmax stay fp32. bf16 runs matmuls and convolutions
    in bfloat16 under autocast, with the linear layers' weights cast to bf16 once, in place (autocast would
    otherwise cast all of them again for every batch; the result is the same); the rest stays fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device_type = torch.device(device).type
    if precision == "int8":
        if device_type != "cpu":
            raise ValueError(f"precision=int8 (dynamic quantisation) runs on the CPU, not {device_type}")
        quantized = torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
        return quantized, contextlib.nullcontext
    if precision == "bf16":
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.to(torch.bfloat16)
        return model, lambda: torch.autocast(device_type, dtype=torch.bfloat16)
    return model, contextlib.nullcontext
