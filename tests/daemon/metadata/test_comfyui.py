"""ComfyUI API graphs: sampler-driven walks to prompts, seed, model and LoRA loaders; bounded on hostile graphs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from photomapd.metadata import parse_metadata_bytes

GRAPH: dict[str, Any] = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl_base.safetensors"}},
    "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors", "strength_model": 0.7,
                                                 "strength_clip": 1.0, "model": ["1", 0], "clip": ["1", 1]}},
    "3": {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": "detail.safetensors", "strength_model": 0.3,
                                                          "model": ["2", 0]}},
    "4": {"class_type": "PrimitiveNode", "inputs": {"value": 31337}},
    "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a misty forest", "clip": ["2", 1]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["2", 1]}},
    "7": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["5", 0], "conditioning_2": ["6", 0]}},
    "8": {"class_type": "EmptyLatentImage", "inputs": {"width": 896, "height": 1152, "batch_size": 1}},
    "9": {"class_type": "KSampler", "inputs": {"seed": ["4", 0], "steps": 30, "cfg": 5.5, "sampler_name": "dpmpp_2m",
                                               "scheduler": "karras", "denoise": 1.0, "model": ["3", 0],
                                               "positive": ["7", 0], "negative": ["6", 0], "latent_image": ["8", 0]}},
    "10": {"class_type": "LatentUpscale", "inputs": {"samples": ["9", 0], "width": 1344, "height": 1728}},
    "11": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 10, "cfg": 5.5, "sampler_name": "euler",
                                                "scheduler": "normal", "denoise": 0.4, "model": ["3", 0],
                                                "positive": ["7", 0], "negative": ["6", 0], "latent_image": ["10", 0]}},
}  # fmt: skip


def test_first_pass_sampler_links_give_prompts_seed_model_and_loras(build: SimpleNamespace) -> None:
    record = parse_metadata_bytes(build.png_with_texts({"prompt": GRAPH, "workflow": {"nodes": []}}))
    assert record.generator == "comfyui" and not record.recallable
    assert (record.positive_prompt, record.negative_prompt) == ("a misty forest", "text, watermark")
    assert (record.seed, record.steps, record.cfg_scale, record.scheduler) == (31337, 30, 5.5, "dpmpp_2m")
    assert (record.width, record.height) == (896, 1152)
    assert record.model is not None and record.model.name == "sdxl_base.safetensors"
    loras = [(lora.name, lora.weight) for lora in record.loras]
    assert loras == [("detail.safetensors", 0.3), ("style.safetensors", 0.7)]  # nearest the sampler first
    assert record.raw["workflow"] == {"nodes": []}


def test_cyclic_and_dangling_links_stay_bounded(build: SimpleNamespace) -> None:
    graph = {
        "1": {"class_type": "KSampler", "inputs": {"seed": ["2", 0], "model": ["3", 0], "positive": ["4", 0],
                                                   "negative": ["99", 0], "latent_image": ["1", 0]}},
        "2": {"class_type": "Seed", "inputs": {"seed": ["2", 0]}},
        "3": {"class_type": "ModelPatch", "inputs": {"model": ["3", 0]}},
        "4": {"class_type": "Concat", "inputs": {"a": ["5", 0]}},
        "5": {"class_type": "Concat", "inputs": {"b": ["4", 0]}},
    }  # fmt: skip
    record = parse_metadata_bytes(build.png_with_texts({"prompt": graph}))
    assert record.generator == "comfyui" and record.error is None
    assert (record.seed, record.model, record.positive_prompt, record.negative_prompt) == (None, None, None, None)


def test_wrong_types_inside_the_graph(build: SimpleNamespace) -> None:
    graph = {"1": {"class_type": "KSampler", "inputs": {"seed": "abc", "positive": [None, 0], "model": [[], 0],
                                                        "latent_image": {"x": 1}, "negative": [True, 0]}},
             "2": "not a node", "3": {"class_type": 5, "inputs": []}}  # fmt: skip
    record = parse_metadata_bytes(build.png_with_texts({"prompt": graph}))
    assert record.generator == "comfyui" and record.seed is None and record.error is None


def test_workflow_only_is_comfyui(build: SimpleNamespace) -> None:
    record = parse_metadata_bytes(build.png_with_texts({"workflow": {"nodes": [{"id": 1}], "links": []}}))
    assert record.generator == "comfyui" and record.positive_prompt is None


def test_graph_in_webp_exif_model_tag(build: SimpleNamespace) -> None:
    import json

    exif = build.tiff([(0x0110, 2, b"prompt:" + json.dumps(GRAPH).encode() + b"\0")], [])
    record = parse_metadata_bytes(build.webp((b"EXIF", exif)))
    assert record.generator == "comfyui" and record.seed == 31337
