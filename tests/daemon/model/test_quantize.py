"""The int8 image tower on a real open_clip ViT (random weights): every linear layer quantized, vectors still the
same image's vectors, the text tower untouched."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from photomapd.model import quantize
from photomapd.model.quantize import (
    QuantizableSelfAttention,
    int8_unavailable_reason,
    quantized_image_tower,
    quantized_linear_count,
    resolve_precision,
)

pytestmark = pytest.mark.skipif(int8_unavailable_reason("cpu") is not None, reason="no int8 engine on this CPU")


@pytest.fixture(scope="module")
def clip() -> Any:
    import open_clip

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return open_clip.create_model("ViT-B-32", pretrained=None).eval()


@pytest.fixture(scope="module")
def int8_tower(clip: Any) -> nn.Module:
    tower = quantized_image_tower(clip, (224, 224))
    assert tower is not None
    return tower


def images(count: int, seed: int) -> torch.Tensor:
    """Distinct normalized inputs: smooth random fields (image-like, unlike white noise) plus a little texture."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 3, 7, 7, generator=generator)
    smooth = F.interpolate(coarse, size=(224, 224), mode="bicubic", align_corners=False)
    return smooth + 0.1 * torch.randn(count, 3, 224, 224, generator=generator)


def test_the_int8_tower_quantizes_every_linear_layer_and_leaves_the_model_alone(clip: Any, int8_tower: Any) -> None:
    tower = int8_tower
    # 12 blocks × (qkv, out, c_fc, c_proj): the attention projections too, not only the MLPs
    assert quantized_linear_count(tower) == 48
    assert not any(isinstance(module, nn.MultiheadAttention) for module in tower.modules())
    assert quantized_linear_count(clip.visual) == 0  # a copy: the fp32 model still works as it did
    assert any(isinstance(module, nn.MultiheadAttention) for module in clip.transformer.modules())


def test_int8_vectors_stay_the_same_images_vectors(clip: Any, int8_tower: Any) -> None:
    batch = images(8, seed=3)
    with torch.inference_mode():
        fp32 = F.normalize(clip.visual(batch), dim=-1)
        int8 = F.normalize(int8_tower(batch), dim=-1)
    same = (fp32 * int8).sum(dim=-1)
    assert float(same.min()) >= 0.99  # the bar; measured ~0.9998
    # What a user sees: each image's int8 vector finds that image first among the fp32 ones
    assert torch.equal((int8 @ fp32.T).argmax(dim=1), torch.arange(8))


def test_rebuilt_attention_computes_what_multihead_attention_does() -> None:
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    rebuilt = QuantizableSelfAttention(mha).eval()
    x = torch.randn(3, 10, 64)
    with torch.inference_mode():
        expected = mha(x, x, x, need_weights=False)[0]
        got = rebuilt(x, x, x, need_weights=False)[0]
    assert float((expected - got).abs().max()) < 1e-4 * float(expected.abs().max())  # fp32 rounding, not a bug
    with pytest.raises(ValueError):
        rebuilt(x, torch.randn(3, 10, 64), torch.randn(3, 10, 64))  # cross-attention is not what it was built for


def test_a_tower_that_misses_the_probe_bar_is_refused(clip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantize, "MIN_PROBE_COSINE", 1.01)  # no int8 tower can be this close: the refusal path
    assert quantized_image_tower(clip, (224, 224)) is None


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_int8_is_never_used_off_the_cpu(device: str) -> None:
    assert resolve_precision("int8", device) == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("int8", "cpu") == "int8"  # this module is skipped where the CPU can't


def test_a_table_keeps_the_precision_that_made_it(tmp_path: Any) -> None:
    from photomapd.store import Store, TableInfo

    Store(tmp_path / "index").create("a", TableInfo(model="ViT-B-32", pretrained="none", dim=512, precision="int8"))
    info = Store(tmp_path / "index").open("a").info  # type: ignore[union-attr]  # reopened: read from the schema
    assert info.precision == "int8"
    assert info.is_made_by(("ViT-B-32", "none"))  # searching it: text vectors are comparable at either precision
    assert info.is_made_by(("ViT-B-32", "none"), "int8")
    assert not info.is_made_by(("ViT-B-32", "none"), "fp32")  # an fp32 run must rebuild, never add fp32 rows to it
    old = TableInfo.from_schema_metadata({b"photomap.model": b"m", b"photomap.pretrained": b"p", b"photomap.dim": b"8"})
    assert old is not None and old.precision == "fp32"  # tables from before the field: fp32 vectors
