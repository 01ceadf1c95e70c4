"""Turn a normalized `ImageMetadata` into the body of InvokeAI's `POST /api/v1/recall/{queue_id}` (DESIGN §4).

A pure function of the record, so every InvokeAI era the parser understands gives a body the same way. The server's
model (`RecallParameter`, the same fields from 6.12 to 6.14.2 plus 6.13's `reference_images`) forbids unknown fields
and checks ranges (steps ≥ 1, sizes ≥ 64, seed ≥ 0, weights within bounds, a few enums), and one bad value rejects
the whole recall, so a value the server would refuse is left out (or a weight clamped) rather than sent.

The answer lists what the server kept (`dropped` compares it with what was sent): it leaves out, silently, models it
can't resolve and images it doesn't have.
"""

from __future__ import annotations

import math
from typing import Any

from photomapd.metadata.model import ControlLayer, ImageMetadata, ReferenceImage

# The server's bounds (its pydantic Field(ge=..., le=...)).
MIN_SIZE_PX = 64
LORA_WEIGHT_RANGE = (-10.0, 10.0)
ADAPTER_WEIGHT_RANGE = (-1.0, 2.0)  # IP adapters and control layers
CONTROL_MODES = frozenset({"balanced", "more_prompt", "more_control"})
IP_ADAPTER_METHODS = frozenset({"full", "style", "composition"})

# InvokeAI 1.x/2.x wrote k-diffusion sampler names; today's scheduler names drop the prefix (and two changed more).
_LEGACY_SCHEDULERS = {
    "k_lms": "lms",
    "k_euler": "euler",
    "k_euler_a": "euler_a",
    "k_heun": "heun",
    "k_dpm_2": "kdpm_2",
    "k_dpm_2_a": "kdpm_2_a",
    "k_dpmpp_2": "dpmpp_2m",
    "k_dpmpp_2_a": "dpmpp_2s",
    "plms": "pndm",
}


def is_recallable(meta: ImageMetadata) -> bool:
    """Remix and Recall are offered only for InvokeAI metadata whose shape the parser understood."""
    return meta.generator == "invokeai" and meta.recallable


# Fields of the recall model that `ImageMetadata` doesn't normalize: read from InvokeAI's own metadata record
# (3.x onwards writes them under these names), with the bounds the server checks. (metadata key, recall field, kind)
_CORE_FIELDS = (
    ("cfg_rescale_multiplier", "cfg_rescale_multiplier", "float"),
    ("refiner_steps", "refiner_steps", "count"),
    ("refiner_cfg_scale", "refiner_cfg_scale", "float"),
    ("refiner_start", "refiner_denoise_start", "fraction"),
    ("refiner_positive_aesthetic_score", "refiner_positive_aesthetic_score", "float"),
    ("refiner_negative_aesthetic_score", "refiner_negative_aesthetic_score", "float"),
)
IMAGE_LISTS = ("control_layers", "ip_adapters", "reference_images")


def build_recall_body(
    meta: ImageMetadata, *, include_seed: bool = True, reference_images: bool = True
) -> dict[str, Any]:
    """Every parameter `meta` carries, named as the recall route names them.

    `include_seed=False` is Remix. `reference_images=False` is for servers before 6.13, whose model has no such field:
    global reference images (ones without an adapter model) are then left out.
    """
    body: dict[str, Any] = {}
    _put(body, "positive_prompt", meta.positive_prompt)
    _put(body, "negative_prompt", meta.negative_prompt)
    _put(body, "model", meta.model.name if meta.model else None)
    _put(body, "scheduler", _scheduler(meta.scheduler))
    _put(body, "steps", meta.steps if meta.steps is not None and meta.steps >= 1 else None)
    _put(body, "cfg_scale", _finite(meta.cfg_scale))
    _put(body, "guidance", _finite(meta.guidance))
    _put(body, "width", _size(meta.width))
    _put(body, "height", _size(meta.height))
    if include_seed:
        _put(body, "seed", meta.seed if meta.seed is not None and meta.seed >= 0 else None)
    _put(body, "vae_model", meta.vae.name if meta.vae else None)
    _put(body, "refiner_model", meta.refiner_model.name if meta.refiner_model else None)
    _put(body, "clip_skip", meta.clip_skip if meta.clip_skip is not None and meta.clip_skip >= 0 else None)
    _put(body, "seamless_x", meta.seamless_x)
    _put(body, "seamless_y", meta.seamless_y)
    strength = _finite(meta.denoise_strength)
    if strength is None and meta.init_image is not None:
        strength = _finite(meta.init_image.strength)
    _put(body, "denoise_strength", strength if strength is not None and 0.0 <= strength <= 1.0 else None)
    for source, field, kind in _CORE_FIELDS:
        _put(body, field, _core_value(meta, source, kind))
    loras = [
        {"model_name": lora.name, "weight": _clamp(lora.weight, LORA_WEIGHT_RANGE, 0.75), "is_enabled": True}
        for lora in meta.loras
        if lora.name
    ]
    _put(body, "loras", loras or None)
    controls = [
        _adapter(layer, "control_mode", layer.control_mode, CONTROL_MODES)
        for layer in meta.control_layers
        if layer.model
    ]
    _put(body, "control_layers", controls or None)
    adapters = [
        _adapter(ref, "method", ref.method, IP_ADAPTER_METHODS) for ref in meta.reference_images if _is_ip_adapter(ref)
    ]
    _put(body, "ip_adapters", adapters or None)
    if reference_images:
        globals_ = [{"image_name": ref.image_name} for ref in meta.reference_images if _is_global_reference(ref)]
        _put(body, "reference_images", globals_ or None)
    return body


def image_names(body: dict[str, Any]) -> list[str]:
    """The InvokeAI image names a recall body points at (the server refuses images it doesn't have)."""
    return [
        item["image_name"]
        for key in IMAGE_LISTS
        for item in body.get(key, [])
        if item.get("image_name")
    ]


def kept_image_names(kept: dict[str, Any]) -> list[str]:
    """The image names in a recall answer's `parameters`: layers carry `{"image": {"image_name", ...}}` there."""
    names = []
    for key in IMAGE_LISTS:
        for item in _list(kept.get(key)):
            image = item.get("image") if isinstance(item, dict) else None
            name = image.get("image_name") if isinstance(image, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names


def dropped(sent: dict[str, Any], kept: dict[str, Any]) -> list[str]:
    """What the server left out of a recall, for the user: "2 reference images", "the model", "1 LoRA"."""
    parts: list[str] = []
    remaining = kept_image_names(kept)
    missing = 0
    for name in image_names(sent):
        if name in remaining:
            remaining.remove(name)
        else:
            missing += 1
    if missing:
        parts.append(counted(missing, "reference image"))
    if sent.get("model") and not kept.get("model"):
        parts.append(f"the model {sent['model']}")
    for key, noun in (("loras", "LoRA"), ("control_layers", "control layer"), ("ip_adapters", "IP adapter")):
        lost = len(sent.get(key) or []) - len(_list(kept.get(key)))
        if lost > 0:
            parts.append(counted(lost, noun))
    return parts


def without_images(body: dict[str, Any]) -> dict[str, Any]:
    """`body` minus every layer that names an image: what is left still recalls the rest of the parameters."""
    trimmed = dict(body)
    for key in IMAGE_LISTS:
        kept = [item for item in body.get(key, []) if not item.get("image_name")]
        if kept:
            trimmed[key] = kept
        else:
            trimmed.pop(key, None)
    return trimmed


# --- helpers --------------------------------------------------------------------------------------------------------


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        body[key] = value


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def counted(n: int, noun: str) -> str:
    """`3 LoRAs`, `1 LoRA`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _core_value(meta: ImageMetadata, key: str, kind: str) -> float | int | None:
    """`key` of the InvokeAI metadata record, if it is a number the recall model accepts for its field."""
    record = meta.raw.get("invokeai_metadata")
    value = record.get(key) if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if kind == "count":
        return value if isinstance(value, int) and value >= 0 else None
    if kind == "fraction":
        return value if 0.0 <= value <= 1.0 else None
    return value


def _size(value: int | None) -> int | None:
    return value if value is not None and value >= MIN_SIZE_PX else None


def _clamp(value: float | None, bounds: tuple[float, float], default: float) -> float:
    finite = _finite(value)
    low, high = bounds
    return default if finite is None else min(max(finite, low), high)


def _scheduler(name: str | None) -> str | None:
    if not name:
        return None
    return _LEGACY_SCHEDULERS.get(name, name)


def _step_percents(item: dict[str, Any], begin: float | None, end: float | None) -> None:
    for key, value in (("begin_step_percent", begin), ("end_step_percent", end)):
        finite = _finite(value)
        if finite is not None and 0.0 <= finite <= 1.0:
            item[key] = finite


def _adapter(
    layer: ControlLayer | ReferenceImage, option: str, value: str | None, allowed: frozenset[str]
) -> dict[str, Any]:
    """A control layer or an IP adapter: model, weight, image, step range, and its one enum (`option`)."""
    item: dict[str, Any] = {"model_name": layer.model, "weight": _clamp(layer.weight, ADAPTER_WEIGHT_RANGE, 1.0)}
    _put(item, "image_name", layer.image_name)
    _step_percents(item, layer.begin_step_percent, layer.end_step_percent)
    _put(item, option, value if value in allowed else None)
    return item


def _is_ip_adapter(ref: ReferenceImage) -> bool:
    """An IP adapter names its adapter model and says how strongly it applies; a global reference image doesn't."""
    return bool(ref.model) and (ref.weight is not None or ref.method is not None or ref.begin_step_percent is not None)


def _is_global_reference(ref: ReferenceImage) -> bool:
    return bool(ref.image_name) and not _is_ip_adapter(ref)
