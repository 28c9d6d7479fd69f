"""Model FLOPs utilisation (MFU): the share of the device's peak FLOP/s that training turns into
model arithmetic (PaLM, Chowdhery et al. 2022, appendix B; nanoGPT's estimate_mfu).
"""

from __future__ import annotations

import torch

from pipeline.train.model import GPTConfig

# bf16 dense tensor-core peaks (vendor datasheets), matched against torch's device name in order.
GPU_PEAK_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
    ("L4", 121e12),
)
# fp32 per CPU thread: AVX2 has 2 FMA units x 8 fp32 lanes x 2 FLOPs a cycle, at ~2.5 GHz.
CPU_PEAK_FLOPS_PER_THREAD = 80e9


def flops_per_token(config: GPTConfig, num_params: int) -> float:
    """Training FLOPs per token: 6N for the matmuls over N weights (forward 2N, backward 4N) plus
    the attention scores and their weighted sum, 12 * n_layer * n_embd * block_size.

    N counts the tied embedding once: as the output layer it is a matmul, as the input a lookup.
    """
    return 6 * num_params + 12 * config.n_layer * config.n_embd * config.block_size


def peak_flops(device: torch.device, configured: float) -> float | None:
    """Peak FLOP/s of the device: the configured value, a known GPU's, or the CPU estimate;
    None for an unknown GPU (no MFU rather than a made-up one)."""
    if configured:
        return configured
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((flops for key, flops in GPU_PEAK_FLOPS if key in name), None)
    return CPU_PEAK_FLOPS_PER_THREAD * torch.get_num_threads()
