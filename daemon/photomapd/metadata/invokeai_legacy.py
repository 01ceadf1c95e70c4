"""InvokeAI before the node engine: the 1.x/2.x `Dream` command line and `sd-metadata` JSON, and the 3.0 betas'
`invokeai` chunk ({session_id, node}).
"""

from __future__ import annotations

import re
from typing import Any

from photomapd.metadata._values import MAX_FIELD_CHARS, as_dict, as_float, as_int, as_list, as_str, dig
from photomapd.metadata.model import ImageMetadata, InitImage, ModelRef

# Dream switches (short and long spellings) -> the field they set.
_DREAM_SWITCHES = {
    "s": "steps", "steps": "steps",
    "S": "seed", "seed": "seed",
    "W": "width", "width": "width",
    "H": "height", "height": "height",
    "C": "cfg_scale", "cfg_scale": "cfg_scale",
    "A": "sampler", "sampler": "sampler",
    "I": "init_img", "init_img": "init_img",
    "f": "strength", "strength": "strength",
    "V": "variations", "with_variations": "variations",
}  # fmt: skip
_SWITCH_START = re.compile(r"\s-{1,2}[A-Za-z]")
_NEGATIVE = re.compile(r"\[([^\[\]]*)\]")
_SPACES = re.compile(r"[ \t]{2,}")
_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|\S+")


def parse_dream(text: str) -> dict[str, str]:
    """`"prompt" -s 50 -S 42 ...` (quoted or not, `-s50` or `-s 50`) -> {"prompt": ..., "steps": "50", ...}."""
    text = text.strip()
    if text.startswith('"'):
        end = re.search(r'"(?=\s+-|\s*$)', text[1:])
        cut = end.start() + 1 if end else len(text)
        prompt, rest = text[1:cut], text[cut + 1 :]
    else:
        start = _SWITCH_START.search(text)
        cut = start.start() if start else len(text)
        prompt, rest = text[:cut], text[cut:]
    fields: dict[str, str] = {"prompt": prompt[:MAX_FIELD_CHARS]}
    # A regex tokenizer, not shlex: a 1.x init image can be a 1 MB data URI, which shlex walks char by char.
    tokens = [token.strip("\"'") for token in _TOKEN.findall(rest)]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("-") or len(token) < 2:
            continue
        name, value = _split_switch(token)
        field = _DREAM_SWITCHES.get(name)
        if field is None:
            continue
        if not value and index < len(tokens) and not tokens[index].startswith("-"):
            value = tokens[index]
            index += 1
        if value:
            fields.setdefault(field, value)
    return fields


def _split_switch(token: str) -> tuple[str, str]:
    if token.startswith("--"):
        name, _, value = token[2:].partition("=")
        return name, value
    return token[1], token[2:]


def split_negative(prompt: str) -> tuple[str, str | None]:
    """InvokeAI 1.x–2.x write the negative prompt inside the prompt, in [brackets]."""
    negatives = [part.strip() for part in _NEGATIVE.findall(prompt) if part.strip()]
    if not negatives:
        return prompt.strip(), None
    positive = _SPACES.sub(" ", _NEGATIVE.sub("", prompt)).strip()
    return positive, ", ".join(negatives)


def apply_legacy(record: ImageMetadata, dream: str | None, sd_metadata: Any) -> None:
    """Fill `record` from `sd-metadata` (preferred, it is structured) with gaps filled from the `Dream` line."""
    meta = as_dict(sd_metadata)
    image = as_dict(meta.get("image"))
    fields = parse_dream(dream) if dream else {}
    prompt = _sd_prompt(image.get("prompt"))
    if prompt is None:
        prompt = fields.get("prompt")
    if prompt is not None:
        record.positive_prompt, record.negative_prompt = split_negative(prompt)
    record.app_version = as_str(meta.get("app_version"))
    name = as_str(meta.get("model_weights")) or as_str(meta.get("model_id"))
    model_hash = as_str(meta.get("model_hash"))
    if name or model_hash:
        record.model = ModelRef(name=name, hash=model_hash)
    record.seed = _pick(as_int, image.get("seed"), fields.get("seed"))
    record.steps = _pick(as_int, image.get("steps"), fields.get("steps"))
    record.cfg_scale = _pick(as_float, image.get("cfg_scale"), fields.get("cfg_scale"))
    record.width = _pick(as_int, image.get("width"), fields.get("width"))
    record.height = _pick(as_int, image.get("height"), fields.get("height"))
    record.scheduler = as_str(image.get("sampler")) or fields.get("sampler")
    record.generation_mode = as_str(image.get("type"))
    init = as_str(image.get("init_image_path")) or as_str(image.get("init_img")) or fields.get("init_img")
    strength = _pick(as_float, image.get("strength"), fields.get("strength"))
    if init:
        # A 1.x inline data URI is image bytes, not a name InvokeAI could recall.
        record.init_image = InitImage(image_name=None if init.startswith("data:") else init, strength=strength)
        record.denoise_strength = strength
    record.recallable = record.positive_prompt is not None


def _sd_prompt(value: Any) -> str | None:
    """`image.prompt` is a string, or a list of {prompt, weight}: several entries are a blend `a:0.5 b:0.5`."""
    if isinstance(value, str):
        return value[:MAX_FIELD_CHARS]
    parts = [as_dict(item) for item in as_list(value)]
    texts = [(as_str(part.get("prompt")), as_float(part.get("weight"))) for part in parts]
    texts = [(text, weight) for text, weight in texts if text is not None]
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0][0]
    return " ".join(f"{text}:{weight:g}" if weight is not None else text for text, weight in texts)


def _pick(coerce: Any, *values: Any) -> Any:
    for value in values:
        result = coerce(value)
        if result is not None:
            return result
    return None


def apply_beta(record: ImageMetadata, chunk: Any) -> bool:
    """InvokeAI 3.0 betas: `invokeai` = {session_id, node | invocation: {type, prompt, seed, ...}}. Understood?"""
    node = as_dict(dig(chunk, "node")) or as_dict(dig(chunk, "invocation"))
    prompt = as_str(node.get("prompt"))
    if prompt is None:
        return False
    record.positive_prompt, record.negative_prompt = split_negative(prompt)
    record.seed = as_int(node.get("seed"))
    record.steps = as_int(node.get("steps"))
    record.cfg_scale = as_float(node.get("cfg_scale"))
    record.width = as_int(node.get("width"))
    record.height = as_int(node.get("height"))
    record.scheduler = as_str(node.get("scheduler")) or as_str(node.get("sampler_name"))
    record.generation_mode = as_str(node.get("type"))
    model = as_str(node.get("model"))
    if model:
        record.model = ModelRef(name=model)
    init = as_str(dig(node, "image", "image_name"))
    if init:
        strength = as_float(node.get("strength"))
        record.init_image = InitImage(image_name=init, strength=strength)
        record.denoise_strength = strength
    return True
