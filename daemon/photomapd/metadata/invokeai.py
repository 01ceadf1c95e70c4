"""InvokeAI metadata, every era: picks the chunk that carries the generation settings and fills the record.

1.x/2.x `Dream` + `sd-metadata`, 3.0 betas `invokeai`, 3.0+ `invokeai_metadata` (with `invokeai_graph` and/or
`invokeai_workflow` kept raw, used only for the init image). Prompts and seed come from `invokeai_metadata`, never
from the graph. `recallable` is set only when the settings' shape is one we know.
"""

from __future__ import annotations

import re
from typing import Any

from photomapd.metadata._values import as_bool, as_float, as_int, as_str, set_fields
from photomapd.metadata.invokeai_layers import (
    model_ref,
    read_control_layers,
    read_init_image,
    read_loras,
    read_reference_images,
)
from photomapd.metadata.invokeai_legacy import apply_beta, apply_legacy
from photomapd.metadata.model import ImageMetadata

INVOKEAI_KEYS = ("invokeai_metadata", "invokeai", "sd-metadata", "Dream", "invokeai_graph", "invokeai_workflow")
# The app versions whose `invokeai_metadata` we have seen; a later major may have changed the shape.
KNOWN_MAJORS = range(3, 7)
_MAJOR = re.compile(r"v?(\d+)\.")
# Keys whose value type we check before trusting a recall: a wrong type means a shape we don't know.
_STR_KEYS = ("positive_prompt", "negative_prompt", "scheduler", "generation_mode")
_NUM_KEYS = ("seed", "steps", "cfg_scale", "width", "height")
# record field -> (invokeai_metadata key, coercion); the same keys in 3.x through 6.x
_FIELDS = {
    "app_version": ("app_version", as_str),
    "positive_prompt": ("positive_prompt", as_str),
    "negative_prompt": ("negative_prompt", as_str),
    "seed": ("seed", as_int),
    "steps": ("steps", as_int),
    "cfg_scale": ("cfg_scale", as_float),
    "guidance": ("guidance", as_float),
    "scheduler": ("scheduler", as_str),
    "width": ("width", as_int),
    "height": ("height", as_int),
    "clip_skip": ("clip_skip", as_int),
    "seamless_x": ("seamless_x", as_bool),
    "seamless_y": ("seamless_y", as_bool),
    "generation_mode": ("generation_mode", as_str),
    "denoise_strength": ("strength", as_float),
    "model": ("model", model_ref),
    "vae": ("vae", model_ref),
    "refiner_model": ("refiner_model", model_ref),
}


def is_invokeai(raw: dict[str, Any]) -> bool:
    return any(key in raw for key in INVOKEAI_KEYS)


def apply_invokeai(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    """Fill `record` from the InvokeAI chunks in `raw`; returns notes on shapes we didn't understand."""
    record.generator = "invokeai"
    metadata = raw.get("invokeai_metadata")
    if metadata is not None:
        return _apply_metadata(record, metadata, raw.get("invokeai_graph"), raw.get("invokeai_workflow"))
    if "invokeai" in raw:
        if apply_beta(record, raw["invokeai"]):
            record.recallable = True
            return []
        return ["the 'invokeai' chunk has a shape this version does not know"]
    if "sd-metadata" in raw or "Dream" in raw:
        sd_metadata = raw.get("sd-metadata")
        dream = raw.get("Dream") if isinstance(raw.get("Dream"), str) else None
        apply_legacy(record, dream, sd_metadata)
        if sd_metadata is not None and not isinstance(sd_metadata, dict):
            record.recallable = False
            return ["the 'sd-metadata' chunk is not a JSON object"]
        return []
    # Graph or workflow only (node-editor output): nothing to recall, everything stays in raw.
    return []


def _apply_metadata(record: ImageMetadata, metadata: Any, graph: Any, workflow: Any) -> list[str]:
    if not isinstance(metadata, dict):
        return ["the 'invokeai_metadata' chunk is not a JSON object"]
    notes: list[str] = []
    set_fields(record, metadata, _FIELDS)
    if metadata.get("model") is not None and record.model is None:
        notes.append("the model reference has an unknown shape")
    record.loras, loras_ok = read_loras(metadata.get("loras"))
    record.reference_images, refs_ok = read_reference_images(metadata)
    record.control_layers, controls_ok = read_control_layers(metadata)
    for ok, what in ((loras_ok, "LoRA"), (refs_ok, "reference image"), (controls_ok, "control layer")):
        if not ok:
            notes.append(f"a {what} entry has an unknown shape")
    record.init_image = read_init_image(metadata, graph, workflow)
    notes.extend(_type_notes(metadata))
    version_ok = _is_known_version(record.app_version)
    if not version_ok:
        notes.append(f"InvokeAI {record.app_version} is newer than the metadata shapes this version knows")
    has_settings = record.positive_prompt is not None or record.model is not None or record.seed is not None
    record.recallable = has_settings and not notes
    return notes


def _type_notes(metadata: dict[str, Any]) -> list[str]:
    notes = []
    for key in _STR_KEYS:
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            notes.append(f"'{key}' is not text")
    for key in _NUM_KEYS:
        value = metadata.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            notes.append(f"'{key}' is not a number")
    if metadata.get("seed") is not None and as_int(metadata.get("seed")) is None:
        notes.append("'seed' is out of range")
    return notes


def _is_known_version(version: str | None) -> bool:
    if version is None:
        return True  # 3.x metadata written by workflow nodes often has no version
    match = _MAJOR.match(version.strip())
    return match is not None and int(match.group(1)) in KNOWN_MAJORS
