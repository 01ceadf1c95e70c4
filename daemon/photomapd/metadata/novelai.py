"""NovelAI: `Software` = "NovelAI", `Description` = prompt, `Comment` = JSON {seed, steps, scale, sampler, uc, ...}."""

from __future__ import annotations

from typing import Any

from photomapd.metadata._values import as_dict, as_float, as_int, as_str
from photomapd.metadata.model import ImageMetadata, ModelRef


def is_novelai(raw: dict[str, Any]) -> bool:
    software = raw.get("Software")
    return isinstance(software, str) and software.startswith("NovelAI")


def apply_novelai(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    record.generator = "novelai"
    comment = raw.get("Comment")
    settings = as_dict(comment)
    record.positive_prompt = as_str(raw.get("Description")) or as_str(settings.get("prompt"))
    record.negative_prompt = as_str(settings.get("uc"))
    record.seed = as_int(settings.get("seed"))
    record.steps = as_int(settings.get("steps"))
    record.cfg_scale = as_float(settings.get("scale"))
    record.scheduler = as_str(settings.get("sampler"))
    record.width = as_int(settings.get("width"))
    record.height = as_int(settings.get("height"))
    record.denoise_strength = as_float(settings.get("strength"))
    source = as_str(raw.get("Source"))
    if source:
        record.model = ModelRef(name=source)
    if comment is not None and not settings:
        return ["the NovelAI 'Comment' chunk is not a JSON object"]
    return []
