"""NovelAI: `Software` = "NovelAI", `Description` = prompt, `Comment` = JSON {seed, steps, scale, sampler, uc, ...}."""

from __future__ import annotations

from typing import Any

from photomapd.metadata._values import as_dict, as_float, as_int, as_str, set_fields
from photomapd.metadata.model import ImageMetadata, ModelRef

# record field -> (Comment JSON key, coercion)
_FIELDS = {
    "positive_prompt": ("prompt", as_str),
    "negative_prompt": ("uc", as_str),
    "seed": ("seed", as_int),
    "steps": ("steps", as_int),
    "cfg_scale": ("scale", as_float),
    "scheduler": ("sampler", as_str),
    "width": ("width", as_int),
    "height": ("height", as_int),
    "denoise_strength": ("strength", as_float),
}


def is_novelai(raw: dict[str, Any]) -> bool:
    software = raw.get("Software")
    return isinstance(software, str) and software.startswith("NovelAI")


def apply_novelai(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    record.generator = "novelai"
    comment = raw.get("Comment")
    settings = as_dict(comment)
    set_fields(record, settings, _FIELDS)
    record.positive_prompt = as_str(raw.get("Description")) or record.positive_prompt
    source = as_str(raw.get("Source"))
    if source:
        record.model = ModelRef(name=source)
    if comment is not None and not settings:
        return ["the NovelAI 'Comment' chunk is not a JSON object"]
    return []
