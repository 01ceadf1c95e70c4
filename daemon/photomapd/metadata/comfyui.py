"""ComfyUI: the `prompt` chunk is the API graph {node_id: {class_type, inputs}}; an input is a value or a link
[node_id, output]. We pick the first-pass sampler and follow its links to the prompts, model, LoRAs and size.
`workflow` (the UI graph) is kept raw only.

Graphs are untrusted: every walk has a hop cap and a visited set, so cycles and huge graphs stay bounded.
"""

from __future__ import annotations

import re
from typing import Any

from photomapd.metadata._values import as_dict, as_float, as_int, as_str, decode_json
from photomapd.metadata.model import ImageMetadata, InitImage, LoraRef, ModelRef

Graph = dict[str, dict[str, Any]]

# Past this many nodes we stop looking: real graphs have tens to a few hundred.
MAX_NODES = 5000
MAX_HOPS = 64
_SAMPLER_TYPES = {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"}
_MODEL_NAME_INPUTS = ("ckpt_name", "unet_name", "model_name", "model_path")
_TEXT_INPUTS = ("text", "text_g", "prompt", "string", "value", "text_positive")
# Links a prompt walk never follows: they lead to models and images, not to conditioning text.
_NOT_TEXT_LINKS = {"clip", "model", "vae", "clip_vision", "control_net", "image", "pixels", "mask", "samples"}
_DIMENSIONS = re.compile(r"(\d{2,5})\s*x\s*(\d{2,5})")


def prompt_graph(raw: dict[str, Any]) -> Graph | None:
    """The API graph from the `prompt` chunk, or from EXIF Model "prompt:{...}" (ComfyUI's WebP/JPEG save)."""
    value = raw.get("prompt")
    exif = raw.get("exif")
    if value is None and isinstance(exif, dict) and str(exif.get("Model", "")).startswith("prompt:"):
        value, _ = decode_json(exif["Model"][len("prompt:") :])
    if not isinstance(value, dict):
        return None
    nodes = {str(key): node for key, node in list(value.items())[:MAX_NODES] if isinstance(node, dict)}
    if not any(isinstance(node.get("class_type"), str) for node in nodes.values()):
        return None
    return nodes


def is_comfyui(raw: dict[str, Any]) -> bool:
    workflow = raw.get("workflow")
    return prompt_graph(raw) is not None or (isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list))


def apply_comfyui(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    record.generator = "comfyui"
    graph = prompt_graph(raw)
    if graph is None:
        return []  # workflow only: nothing to normalize
    sampler_id = _first_pass_sampler(graph)
    if sampler_id is None:
        return []
    sampler = _inputs(graph, sampler_id)
    guider = _inputs(graph, _link_target(sampler.get("guider")))
    sigmas = _inputs(graph, _link_target(sampler.get("sigmas")))
    record.seed = as_int(_resolve(graph, sampler.get("seed", sampler.get("noise_seed"))))
    if record.seed is None:
        noise = _inputs(graph, _link_target(sampler.get("noise")))
        record.seed = as_int(_resolve(graph, noise.get("noise_seed", noise.get("seed"))))
    record.steps = as_int(_resolve(graph, sampler.get("steps", sigmas.get("steps"))))
    record.cfg_scale = as_float(_resolve(graph, sampler.get("cfg", guider.get("cfg"))))
    sampler_name = sampler.get("sampler_name")
    if sampler_name is None:
        sampler_name = _inputs(graph, _link_target(sampler.get("sampler"))).get("sampler_name")
    record.scheduler = as_str(_resolve(graph, sampler_name))
    record.schedule_type = as_str(_resolve(graph, sampler.get("scheduler", sigmas.get("scheduler"))))
    positive = sampler.get("positive", guider.get("positive", guider.get("conditioning")))
    record.positive_prompt = as_str(_find_text(graph, positive))
    record.negative_prompt = as_str(_find_text(graph, sampler.get("negative", guider.get("negative"))))
    model_link = sampler.get("model", guider.get("model", sigmas.get("model")))
    name, record.loras = _follow_model(graph, model_link)
    if name:
        record.model = ModelRef(name=name)
    _apply_latent(record, graph, sampler.get("latent_image"), as_float(_resolve(graph, sampler.get("denoise"))))
    return []


def _inputs(graph: Graph, node_id: str | None) -> dict[str, Any]:
    return as_dict(graph.get(node_id, {}).get("inputs")) if node_id is not None else {}


def _link_target(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) != 2 or isinstance(value[0], bool):
        return None
    return str(value[0]) if isinstance(value[0], (str, int)) else None


def _is_sampler(node: dict[str, Any]) -> bool:
    inputs = as_dict(node.get("inputs"))
    if as_str(node.get("class_type")) in _SAMPLER_TYPES:
        return True
    return ("positive" in inputs and "negative" in inputs and "latent_image" in inputs) or (
        "guider" in inputs and "noise" in inputs
    )


def _first_pass_sampler(graph: Graph) -> str | None:
    """The sampler whose latent does not come from another sampler (hires/upscale passes do); else the first."""
    samplers = [node_id for node_id, node in graph.items() if _is_sampler(node)]
    for node_id in samplers:
        upstream = _upstream(graph, _link_target(_inputs(graph, node_id).get("latent_image")))
        if not any(other in upstream for other in samplers):
            return node_id
    return samplers[0] if samplers else None


def _upstream(graph: Graph, start: str | None) -> set[str]:
    seen: set[str] = set()
    stack = [start] if start else []
    while stack and len(seen) < MAX_HOPS * 4:
        node_id = stack.pop()
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        stack.extend(target for value in _inputs(graph, node_id).values() if (target := _link_target(value)))
    return seen


def _resolve(graph: Graph, value: Any) -> Any:
    """A literal input, or the literal behind a link to a primitive node (seed/int/string widgets)."""
    for _ in range(8):
        target = _link_target(value)
        if target is None:
            return value
        inputs = _inputs(graph, target)
        value = next((inputs[key] for key in ("seed", "noise_seed", "value", "int", "number", "string", "text")
                      if key in inputs), None)  # fmt: skip
    return None


def _find_text(graph: Graph, link: Any) -> str | None:
    """Depth-first from a conditioning link to the first text widget (through combine/concat/style nodes)."""
    stack = [target] if (target := _link_target(link)) else []
    seen: set[str] = set()
    while stack and len(seen) < MAX_HOPS:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        inputs = _inputs(graph, node_id)
        for key in _TEXT_INPUTS:
            text = _resolve(graph, inputs.get(key))
            if isinstance(text, str):
                return text
        links = [t for key, value in inputs.items() if key not in _NOT_TEXT_LINKS and (t := _link_target(value))]
        stack.extend(reversed(links))  # keep input order: the first conditioning input is searched first
    return None


def _follow_model(graph: Graph, link: Any) -> tuple[str | None, list[LoraRef]]:
    """Walk `model` links up to the loader, collecting LoRA loaders on the way."""
    loras: list[LoraRef] = []
    node_id = _link_target(link)
    for _ in range(MAX_HOPS):
        if node_id is None:
            break
        inputs = _inputs(graph, node_id)
        lora = as_str(_resolve(graph, inputs.get("lora_name")))
        if lora:
            loras.append(LoraRef(name=lora, weight=as_float(_resolve(graph, inputs.get("strength_model")))))
        for key in _MODEL_NAME_INPUTS:
            name = as_str(_resolve(graph, inputs.get(key)))
            if name:
                return name, loras
        node_id = _link_target(inputs.get("model"))
    return None, loras


def _apply_latent(record: ImageMetadata, graph: Graph, link: Any, denoise: float | None) -> None:
    """Size from the empty-latent node; for img2img (VAEEncode of a LoadImage) the init image and strength."""
    node_id = _link_target(link)
    for _ in range(MAX_HOPS):
        if node_id is None:
            return
        inputs = _inputs(graph, node_id)
        width, height = as_int(_resolve(graph, inputs.get("width"))), as_int(_resolve(graph, inputs.get("height")))
        dims = _DIMENSIONS.search(str(inputs.get("dimensions", "")))
        if width and height:
            record.width, record.height = width, height
            return
        if dims:
            record.width, record.height = int(dims.group(1)), int(dims.group(2))
            return
        pixels = _link_target(inputs.get("pixels"))
        if pixels is not None:
            name = as_str(_resolve(graph, _inputs(graph, pixels).get("image")))
            if name:
                record.init_image = InitImage(image_name=name, strength=denoise)
                record.denoise_strength = denoise
            return
        node_id = _link_target(inputs.get("samples", inputs.get("latent", inputs.get("latent_image"))))
