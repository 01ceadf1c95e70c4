"""A cheaper image forward on CPUs, opt-in (`model_precision: "int8"`): int8 dynamic quantization of the image tower.

`torch.ao.quantization.quantize_dynamic` stores each `nn.Linear`'s weights as int8 and quantizes its input per batch,
so the matrix products run on fbgemm's int8 kernels. Out of the box it reaches only the MLPs of a ViT: open_clip's
blocks use `nn.MultiheadAttention`, whose input projection is a bare parameter and whose `out_proj` is a
`NonDynamicallyQuantizableLinear` (excluded on purpose: MHA's fused path reads `out_proj.weight` as a float tensor).
So each plain self-attention is first rebuilt from two ordinary `nn.Linear`s (qkv, out) around
`scaled_dot_product_attention`, the same arithmetic, and then every linear layer of the tower is quantized.

Only the image tower changes: text vectors (one query at a time) stay fp32. A quantized tower is accepted only after a
probe batch embeds within MIN_PROBE_COSINE of the fp32 tower; the caller records the precision that made a table's
vectors (store.TableInfo.precision), so int8 and fp32 vectors never mix silently. Runs in the model's own process.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
# The bar for "the same vector": measured 0.9997–0.9999 on ViT-B-32 (random weights, BENCHMARKS.md), so a
# probe below this means the int8 kernels misbehave on this CPU, not rounding.
MIN_PROBE_COSINE = 0.99
PROBE_IMAGES = 4  # enough rows to catch a broken kernel; costs one small forward at load
PROBE_SEED = 0
# fbgemm's int8 GEMMs need AVX2; on older x86 they fall back to reference loops slower than fp32, and on ARM the
# qnnpack engine was not measured here. bf16 is never offered: autocast was 10x slower than fp32 on AVX2.
INT8_CPU_CAPABILITIES = frozenset({"AVX2", "AVX512"})


def int8_unavailable_reason(device: str) -> str | None:
    """Why int8 cannot be used for `device` here, or None when it can."""
    if device != "cpu":
        return f"int8 quantization is for CPUs; the model runs on {device}"
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in INT8_CPU_CAPABILITIES:
        return f"int8 needs an AVX2 or AVX-512 CPU (this one reports {capability})"
    engines = torch.backends.quantized.supported_engines
    if "x86" not in engines and "fbgemm" not in engines:
        return f"this torch build has no x86 int8 engine ({', '.join(engines)})"
    return None


def resolve_precision(requested: Precision, device: str) -> Precision:
    """The precision the model will run at: int8 only where it is available, else fp32 (with a log line why)."""
    if requested == "int8":
        reason = int8_unavailable_reason(device)
        if reason is not None:
            log.warning("model_precision int8 not used: %s; running fp32", reason)
            return "fp32"
    return requested


class QuantizableSelfAttention(nn.Module):
    """`nn.MultiheadAttention` for self-attention without a mask bias or dropout, rebuilt from plain linear layers so
    dynamic quantization reaches its projections. Called the way open_clip calls MHA: `(q, k, v, need_weights=False,
    attn_mask=...)[0]`, with k and v the same tensor as q."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        dim = mha.embed_dim
        self.num_heads = mha.num_heads
        self.batch_first = mha.batch_first
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        with torch.no_grad():
            self.qkv.weight.copy_(mha.in_proj_weight)
            self.qkv.bias.copy_(mha.in_proj_bias)
            self.out.weight.copy_(mha.out_proj.weight)
            self.out.bias.copy_(mha.out_proj.bias)

    @staticmethod
    def can_replace(mha: nn.Module) -> bool:
        return (
            isinstance(mha, nn.MultiheadAttention)
            and mha._qkv_same_embed_dim
            and mha.in_proj_bias is not None
            and mha.out_proj.bias is not None
            and mha.bias_k is None
            and not mha.add_zero_attn
        )

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, None]:
        if (key is not None and key is not query) or (value is not None and value is not query) or need_weights:
            raise ValueError("QuantizableSelfAttention only does self-attention without returned weights")
        x = query if self.batch_first else query.transpose(0, 1)
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).view(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
        out = self.out(mixed.transpose(1, 2).reshape(batch, tokens, dim))
        return (out if self.batch_first else out.transpose(0, 1)), None


def with_quantizable_attention(tower: nn.Module) -> int:
    """Swap every plain self-attention under `tower` for its linear-layer form, in place; returns how many."""
    swapped = 0
    for module in list(tower.modules()):
        if hasattr(module, "ln_1_kv"):  # an open_clip cross-attention block: k and v differ from q
            continue
        for name, child in list(module.named_children()):
            if QuantizableSelfAttention.can_replace(child):
                setattr(module, name, QuantizableSelfAttention(child))
                swapped += 1
    return swapped


def quantized_image_tower(model: Any, input_size: tuple[int, int]) -> nn.Module | None:
    """An int8 copy of `model.visual` (the open_clip model is not changed), or None when a probe batch embeds
    further than MIN_PROBE_COSINE from the fp32 tower. Use it as `model.visual = tower` (the fp32 tower is freed)."""
    fp32_tower = model.visual
    generator = torch.Generator().manual_seed(PROBE_SEED)
    probe = torch.randn(PROBE_IMAGES, 3, *input_size, generator=generator)
    with torch.inference_mode():
        reference = F.normalize(fp32_tower(probe).float(), dim=-1)
    tower = copy.deepcopy(fp32_tower).eval()
    swapped = with_quantizable_attention(tower)
    with warnings.catch_warnings():
        # torch marks torch.ao eager quantization deprecated in favour of torchao; the pinned torch still ships it
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        tower = torch.ao.quantization.quantize_dynamic(tower, {nn.Linear}, dtype=torch.qint8)
    with torch.inference_mode():
        cosine = float((F.normalize(tower(probe).float(), dim=-1) * reference).sum(dim=-1).min())
    if cosine < MIN_PROBE_COSINE:
        log.warning("int8 image tower rejected: probe cosine %.4f to fp32 is below %.2f", cosine, MIN_PROBE_COSINE)
        return None
    log.info("int8 image tower: %d attention blocks rebuilt, %d linear layers quantized, probe cosine %.5f",
             swapped, quantized_linear_count(tower), cosine)  # fmt: skip
    return tower


def quantized_linear_count(tower: nn.Module) -> int:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    return sum(1 for module in tower.modules() if isinstance(module, DynamicQuantizedLinear))
