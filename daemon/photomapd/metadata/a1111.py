"""AUTOMATIC1111 / Forge `parameters` text (PNG text chunk, or JPEG/WebP EXIF UserComment).

    prompt (may span lines, may hold <lora:name:weight> tags)
    Negative prompt: negative (may span lines)
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, Model hash: ..., ...
"""

from __future__ import annotations

import re
from typing import Any

from photomapd.metadata._values import MAX_FIELD_CHARS, as_float, as_int, as_str
from photomapd.metadata.model import ImageMetadata, LoraRef, ModelRef

_PARAM_LINE = re.compile(r"^\s*Steps:\s*\d")
_PARAM = re.compile(r'\s*([A-Za-z][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_NEGATIVE_MARK = "Negative prompt:"
_LORA_TAG = re.compile(r"<(?:lora|lyco):([^:<>]+)(?::([^:<>]*))?[^<>]*>")
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
# The settings line is a few hundred characters; a 64 KiB "line" is not one, and the regex stays linear anyway.
MAX_PARAM_LINE = 64 * 1024


def parameters_text(raw: dict[str, Any]) -> str | None:
    """The A1111 text wherever this file keeps it: PNG `parameters`, EXIF UserComment, or a JPEG comment."""
    exif = raw.get("exif")
    candidates = (
        raw.get("parameters"),
        exif.get("UserComment") if isinstance(exif, dict) else None,
        raw.get("jpeg_comment"),
    )
    for text in candidates:
        if isinstance(text, str) and _looks_like_parameters(text):
            return text
    return None


def _looks_like_parameters(text: str) -> bool:
    return _NEGATIVE_MARK in text or any(_PARAM_LINE.match(line) for line in text.splitlines()[-8:])


def is_a1111(raw: dict[str, Any]) -> bool:
    return parameters_text(raw) is not None


def apply_a1111(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    text = parameters_text(raw)
    record.generator = "a1111"
    if text is None:
        return []
    prompt_part, params = split_parameters(text)
    positive, _, negative = prompt_part.partition(_NEGATIVE_MARK)
    if prompt_part.startswith(_NEGATIVE_MARK):
        positive, negative = "", prompt_part[len(_NEGATIVE_MARK) :]
    record.positive_prompt = positive.strip()[:MAX_FIELD_CHARS]
    record.negative_prompt = negative.strip()[:MAX_FIELD_CHARS] or None
    record.loras = [
        LoraRef(name=name.strip(), weight=as_float(weight) if weight else 1.0)
        for name, weight in _LORA_TAG.findall(record.positive_prompt)
    ]
    _apply_params(record, params)
    return []


def split_parameters(text: str) -> tuple[str, dict[str, str]]:
    """(prompt + negative text, {setting: value}) — the settings line is the last one starting `Steps:`."""
    lines = text.strip().split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if _PARAM_LINE.match(lines[index]):
            params_text = ", ".join(line.strip() for line in lines[index:])[:MAX_PARAM_LINE]
            return "\n".join(lines[:index]), parse_params(params_text)
    return text, {}


def parse_params(line: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in _PARAM.findall(line):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        params.setdefault(key.strip(), value)
    return params


def _apply_params(record: ImageMetadata, params: dict[str, str]) -> None:
    record.steps = as_int(params.get("Steps"))
    record.scheduler = as_str(params.get("Sampler"))
    record.schedule_type = as_str(params.get("Schedule type"))
    record.cfg_scale = as_float(params.get("CFG scale"))
    record.seed = as_int(params.get("Seed"))
    size = _SIZE.match(params.get("Size", ""))
    if size:
        record.width, record.height = as_int(size.group(1)), as_int(size.group(2))
    name, model_hash = params.get("Model"), params.get("Model hash")
    if name or model_hash:
        record.model = ModelRef(name=name or None, hash=model_hash or None)
    vae = params.get("VAE")
    if vae:
        record.vae = ModelRef(name=vae, hash=params.get("VAE hash") or None)
    record.app_version = params.get("Version") or None
    record.clip_skip = as_int(params.get("Clip skip"))
    record.denoise_strength = as_float(params.get("Denoising strength"))
    record.hires_upscale = as_float(params.get("Hires upscale"))
    record.hires_steps = as_int(params.get("Hires steps"))
    record.hires_upscaler = params.get("Hires upscaler") or None
