"""SwarmUI: `parameters` holds JSON {sui_image_params, sui_extra_data, sui_models}, not A1111 text. Its ComfyUI
`prompt` graph is kept raw; the JSON already names every setting."""

from __future__ import annotations

from typing import Any

from photomapd.metadata import dates
from photomapd.metadata._values import as_dict, as_float, as_int, as_list, as_str, set_fields
from photomapd.metadata.model import ImageMetadata, LoraRef, ModelRef

# record field -> (sui_image_params key, coercion)
_FIELDS = {
    "app_version": ("swarm_version", as_str),
    "positive_prompt": ("prompt", as_str),
    "negative_prompt": ("negativeprompt", as_str),
    "seed": ("seed", as_int),
    "steps": ("steps", as_int),
    "cfg_scale": ("cfgscale", as_float),
    "scheduler": ("sampler", as_str),
    "schedule_type": ("scheduler", as_str),
    "width": ("width", as_int),
    "height": ("height", as_int),
}


def is_swarmui(raw: dict[str, Any]) -> bool:
    return isinstance(raw.get("parameters"), dict) and "sui_image_params" in raw["parameters"]


def apply_swarmui(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    record.generator = "swarmui"
    parameters = as_dict(raw.get("parameters"))
    params = as_dict(parameters.get("sui_image_params"))
    if not params:
        return ["'sui_image_params' is not a JSON object"]
    set_fields(record, params, _FIELDS)
    model = as_str(params.get("model"))
    if model:
        record.model = ModelRef(name=model, hash=_model_hash(parameters, model))
    weights = as_list(params.get("loraweights"))
    record.loras = [
        LoraRef(name=name, weight=as_float(weights[index]) if index < len(weights) else None)
        for index, name in enumerate(as_str(item) for item in as_list(params.get("loras")))
        if name
    ]
    record.created_at = dates.parse_date(as_dict(parameters.get("sui_extra_data")).get("date"))
    return []


def _model_hash(parameters: dict[str, Any], model: str) -> str | None:
    for entry in as_list(parameters.get("sui_models")):
        item = as_dict(entry)
        name = as_str(item.get("name")) or ""
        if as_str(item.get("param")) == "model" or name.rsplit(".", 1)[0] == model:
            return as_str(item.get("hash"))
    return None
