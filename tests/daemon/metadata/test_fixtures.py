"""Every fixture in tests/fixtures/MANIFEST.md, asserted field by field against the shared MANIFEST's expected values.

Text fields in the manifest are the first 80 characters: an 80-character expectation is a prefix, a shorter one is
the whole value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from photomapd.metadata import read_metadata
from photomapd.metadata.invokeai_legacy import parse_dream
from photomapd.metadata.model import ImageMetadata

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"

DIGITS_50 = "fe4efff1e174c627256e44ec2991ba279b3816e364b49f9be2abc0b3ff3f8556"
DIGITS_CC = "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516"
MIKU = "general, masterpiece, best quality, amazing quality, \n1girl, solo, hatsune miku,"
MIKU_NEG = "bad quality, worst quality, worst detail, sketch, censor,"

EXPECTED: dict[str, dict[str, Any]] = {
    "invokeai-1.x-dream-only-variations.png": {
        "generator": "invokeai",
        "dream.prompt": "lucy lawless as xena, warrior princess, character portrait, high resolution",
        "dream.seed": "3357757885", "dream.variations": "3647897225,0.1;1614299449,0.1", "dream.sampler": "k_lms",
        "seed": 3357757885, "scheduler": "k_lms", "positive_prompt": "lucy lawless as xena, warrior princess, "
        "character portrait, high resolution", "model": None, "recallable": True,
    },
    "invokeai-1.x-dream-only-initimage-datauri.png": {
        "generator": "invokeai",
        "dream.prompt": "a young attractive smiling man, face, illustration, oil painting, art by greg ru",
        "dream.seed": "2439087110", "dream.init_img^": "data:image/png;base64,iVBORw0K", "dream.sampler": "k_lms",
        "seed": 2439087110, "init_image.strength": 0.46, "init_image.image_name": None,
    },
    "invokeai-1.15-dream-sdmeta-weighted.png": {
        "generator": "invokeai", "dream.prompt": "blue sphere:0.5 red cube:0.5", "dream.seed": "3054592274",
        "dream.sampler": "k_lms", "app_version": "v1.15", "raw.sd-metadata.app_id": "lstein/stable-diffusion",
        "raw.sd-metadata.image.prompt.0.prompt": "blue sphere", "len:raw.sd-metadata.image.prompt": 2,
        "weights:raw.sd-metadata.image.prompt": [0.5, 0.5], "positive_prompt": "blue sphere:0.5 red cube:0.5",
        "seed": 3054592274, "model.name": "stable-diffusion-1.4", "model.hash": DIGITS_50, "scheduler": "k_lms",
        "steps": 50, "recallable": True,
    },
    "invokeai-1.15-sdmeta-only-outcrop.png": {
        "generator": "invokeai", "app_version": "v1.15", "raw.sd-metadata.app_id": "lstein/stable-diffusion",
        "positive_prompt": "pretty curly-haired redhead woman", "len:raw.sd-metadata.image.prompt": 1,
        "seed": 942491079, "model.name": "stable-diffusion-1.4", "model.hash": DIGITS_50,
        "raw.sd-metadata.image.postprocessing.0.tool": "outcrop", "scheduler": "k_lms", "steps": 50,
    },
    "invokeai-2.0.2-dream-sdmeta-variation.png": {
        "generator": "invokeai", "dream.prompt": "banana sushi", "dream.seed": "42", "dream.variations":
        "2407640369:0.1", "dream.sampler": "k_lms", "app_version": "v2.02", "raw.sd-metadata.app_id":
        "invoke-ai/InvokeAI", "positive_prompt": "banana sushi", "len:raw.sd-metadata.image.prompt": 1, "seed": 42,
        "model.name": None, "model.hash": DIGITS_CC,
        "raw.sd-metadata.image.variations": [{"seed": 2407640369, "weight": 0.1}], "scheduler": "k_lms", "steps": 50,
    },
    "invokeai-2.2.0-dream-sdmeta-ztxt.png": {
        "generator": "invokeai", "dream.prompt": "Japanese gardener <ghibli-face>", "dream.seed": "54236737",
        "dream.sampler": "k_euler_a", "app_version": "v2.2.0", "raw.sd-metadata.app_id": "invoke-ai/InvokeAI",
        "positive_prompt": "Japanese gardener <ghibli-face>", "seed": 54236737, "model.name": None,
        "model.hash": DIGITS_CC, "scheduler": "k_euler_a", "steps": 30, "created_at": "2022-11-28T19:36:58Z",
    },
    "invokeai-2.3.0-dream-sdmeta-cropped.png": {
        "generator": "invokeai",
        "dream.prompt": "professional full body photo of young woman, hyper long brunette hair, elegant h",
        "dream.seed": "2980747362", "dream.sampler": "k_lms", "app_version": "2.3.0",
        "raw.sd-metadata.app_id": "invoke-ai/InvokeAI",
        "positive_prompt": "professional full body photo of young woman, hyper long brunette hair, elegant h",
        "negative_prompt": "rendering, glowing eyes, skinny", "seed": 2980747362,
        "model.name": "deliberateForInvoke_v08",
        "model.hash": "56d1442a0feefd64836a19ac8e3527ec71c884fc962e246ddf67b03e42921272",
        "raw.sd-metadata.image.postprocessing.0.type": "codeformer",
        "raw.sd-metadata.image.postprocessing.1.type": "esrgan", "scheduler": "k_lms", "steps": 50,
    },
    "invokeai-3.0.2-metadata-graph.png": {
        "generator": "invokeai", "app_version": "3.0.2post1", "positive_prompt": "blue sphere, red cube, hybrid",
        "negative_prompt": "", "seed": 754100013, "model.name": "stable-diffusion-v1-5", "model.base": "sd-1",
        "loras": [], "len:reference_images": 0, "generation_mode": "txt2img", "steps": 15, "size": "512x512",
        "raw.invokeai_graph.id": "text_to_image_graph", "len:raw.invokeai_graph.nodes": 9, "recallable": True,
    },
    "invokeai-3.x-metadata-only-ipadapter-cropped.png": {
        "generator": "invokeai", "app_version": None,
        "positive_prompt": "digital artwork, oil painting. painterly brushstrokes, holidays,",
        "negative_prompt": "grainy+, photo, oversaturated, overexposed, blurry, compressed jpg+, noisy++, un",
        "seed": 3293022630, "model.name": "juggernautXL", "model.base": "sdxl", "loras": [],
        "len:reference_images": 1, "reference_models": ["ip-adapter-plus_sdxl_vit-h"], "vae.name": "VAEFix",
        "reference_images.0.image_name": "21b3ddb9-089b-49fd-b074-0b9fdac3ab3e.png",
        "reference_images.0.weight": 0.45, "generation_mode": "sdxl_txt2img", "steps": 35, "size": "1024x1024",
        "recallable": True,
    },
    "invokeai-3.x-metadata-only-loras.png": {
        "generator": "invokeai", "app_version": None,
        "positive_prompt": "Anime version of Rami Malek as a martial artist", "negative_prompt": "<bad_wax>",
        "seed": 2863850868, "model.name": "CCXL-One_vB5b", "model.base": "sdxl",
        "loras": ["CC-Dream-Shaper_vBeta1"], "loras.0.weight": 0.0, "len:reference_images": 0,
        "vae.name": "sdxl-fix-test-fp16-du", "generation_mode": "sdxl_txt2img", "steps": 35, "size": "1344x768",
        "recallable": True,
    },
    "invokeai-3.x-workflow-only.png": {
        "generator": "invokeai", "raw.invokeai_workflow.name": "", "raw.invokeai_workflow.meta.version": "2.0.0",
        "len:raw.invokeai_workflow.nodes": 7, "positive_prompt": None, "seed": None, "recallable": False,
    },
    "invokeai-3.6.0-metadata-workflow.png": {
        "generator": "invokeai", "app_version": "3.6.0",
        "positive_prompt": "(armour-plated tarantula )1.3,0.4, best quality, realistic, beautiful, cinematic",
        "negative_prompt": "NSFW, ", "seed": 608215531, "model.name": "CCXL-One_vB5b", "model.base": "sdxl",
        "loras": [], "len:reference_images": 0, "steps": None, "size": "1344x768",
        "raw.invokeai_workflow.name": "nightmare-sdxl-random-size", "raw.invokeai_workflow.meta.version": "2.0.0",
        "len:raw.invokeai_workflow.nodes": 28, "recallable": True,
    },
    "invokeai-6.10.0-metadata-graph.png": {
        "generator": "invokeai", "app_version": "6.10.0", "positive_prompt": MIKU + " \n",
        "negative_prompt": "bad quality, worst quality, worst detail, sketch, censor, \n",
        "seed": 1860920704, "model.name": "waiIllustriousSDXL_v160", "model.base": "sdxl",
        "model.key": "179d02bf-f5e5-4b5b-a4df-f386f3e70e93", "loras": [], "len:reference_images": 0,
        "generation_mode": "sdxl_txt2img", "steps": 24, "size": "1024x1024", "scheduler": "euler_a",
        "raw.invokeai_graph.id": "sdxl_graph:zTYussRcEP", "len:raw.invokeai_graph.nodes": 11, "recallable": True,
    },
    "a1111-parameters-01-cropped.png": {
        "generator": "a1111", "positive_prompt": "photo of a duck", "negative_prompt": "monochrome",
        "seed": 235284042, "model.name": "realistic_realisticVisionV20_v20", "model.hash": "c0d1994c73",
        "loras": [], "app_version": None, "steps": 15, "scheduler": "UniPC", "recallable": False,
    },
    "a1111-parameters-02-itxt.png": {
        "generator": "a1111", "positive_prompt": MIKU, "negative_prompt": MIKU_NEG, "seed": 3782896554,
        "model.name": "waiIllustriousSDXL_v160", "model.hash": "45a21ea00a", "loras": [], "app_version": "v1.10.1",
        "steps": 20, "scheduler": "DPM++ 2M", "schedule_type": "Karras",
    },
    "a1111-parameters-ztxt-after-idat.png": {
        "generator": "a1111", "positive_prompt": "photo of a duck", "negative_prompt": "monochrome",
        "seed": 235284042, "model.name": "realistic_realisticVisionV20_v20", "model.hash": "c0d1994c73",
        "loras": [], "app_version": None, "steps": 15, "scheduler": "UniPC",
    },
    "a1111-exif-usercomment.jpg": {
        "generator": "a1111", "positive_prompt": MIKU, "negative_prompt": MIKU_NEG, "seed": 3623174757,
        "model.name": "waiIllustriousSDXL_v160", "model.hash": "45a21ea00a", "loras": [], "app_version": "v1.10.1",
        "steps": 20, "scheduler": "DPM++ 2M",
    },
    "comfyui-01-cropped.png": {
        "generator": "comfyui", "len:raw.prompt": 8, "model.name": "v1-5-pruned-emaonly.ckpt", "loras": [],
        "seed": 280823642470253,
        "positive_prompt": "photograph of victorian woman with wings, sky clouds, meadow grass\n",
        "negative_prompt": "watermark, text\n", "len:raw.workflow.nodes": 8,
        "init_image.image_name": "example.png", "recallable": False,
    },
    "comfyui-02.png": {
        "generator": "comfyui", "len:raw.prompt": 21, "loras": [], "len:raw.workflow.nodes": 21,
        "positive_prompt": MIKU, "negative_prompt": "bad quality, worst quality, worst detail, sketch, censor, \n",
        "seed": 662066908990052, "model.name": "anima-preview.safetensors",
        "raw.prompt.559.inputs.clip_name": "qwen_3_06b_base.safetensors",
    },
    "comfyui-03.png": {
        "generator": "comfyui", "len:raw.prompt": 9, "model.name": "waiIllustriousSDXL_v160.safetensors",
        "loras": [], "seed": 779742380066441, "positive_prompt": MIKU,
        "negative_prompt": "bad quality, worst quality, worst detail, sketch, censor, \n", "len:raw.workflow.nodes": 9,
        "raw.prompt.Sampler.class_type": "KSampler",
    },
    "swarmui-01.png": {
        "generator": "swarmui", "positive_prompt": MIKU,
        "negative_prompt": "bad quality, worst quality, worst detail, sketch, censor, ", "seed": 2083100758,
        "model.name": "waiIllustriousSDXL_v160", "app_version": "0.9.7.4", "loras": [], "recallable": False,
    },
    "novelai-01-cropped.png": {
        "generator": "novelai", "positive_prompt": "masterpiece, best quality,  cat, space, icon",
        "negative_prompt": "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer",
        "seed": 2253955223, "model.name": "Stable Diffusion 1D44365E", "raw.Source": "Stable Diffusion 1D44365E",
        "scheduler": "k_euler_ancestral",
    },
    "plain-nometa.jpg": {"generator": None, "positive_prompt": None, "raw": {}, "error": None, "recallable": False},
    "gimp-resaved-nometa.png": {
        "generator": None, "positive_prompt": None, "raw.Comment": "Created with GIMP", "recallable": False,
    },
}  # fmt: skip


def lookup(record: ImageMetadata, path: str) -> Any:
    data = record.model_dump(mode="json")
    if path.startswith("dream."):
        key = path[len("dream.") :].rstrip("^")
        return parse_dream(data["raw"]["Dream"]).get(key)
    if path == "size":
        return f"{record.width}x{record.height}"
    if path == "loras":
        return [lora.name for lora in record.loras]
    if path == "reference_models":
        return [ref.model for ref in record.reference_images]
    for prefix in ("len:", "weights:"):
        if path.startswith(prefix):
            value = lookup(record, path[len(prefix) :])
            return len(value) if prefix == "len:" else [item["weight"] for item in value]
    value: Any = data
    for step in path.split("."):
        if isinstance(value, list):
            value = value[int(step)]
        else:
            value = value.get(step) if isinstance(value, dict) else None
    return value


def test_every_fixture_has_expectations() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in FIXTURES.iterdir())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fields_match_manifest(name: str) -> None:
    record = read_metadata(FIXTURES / name)
    for path, expected in EXPECTED[name].items():
        actual = lookup(record, path)
        if isinstance(expected, str) and isinstance(actual, str) and (len(expected) == 80 or path.endswith("^")):
            assert actual.startswith(expected), (name, path, actual)
        else:
            assert actual == expected, (name, path, actual)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_without_error_notes(name: str) -> None:
    assert read_metadata(FIXTURES / name).error is None
