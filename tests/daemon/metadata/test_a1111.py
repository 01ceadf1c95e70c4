"""A1111/Forge `parameters` text: prompt sections, settings line, LoRA tags, hires fields, quoted values."""

from __future__ import annotations

from types import SimpleNamespace

from photomapd.metadata import parse_metadata_bytes
from photomapd.metadata.a1111 import parse_params

FORGE = (
    "portrait of a knight <lora:armor_v2:0.8>, <lora:lighting:1.1>\nwet stone\n"
    "Negative prompt: lowres,\nbad hands\n"
    "Steps: 28, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 4.5, Seed: 1234567890123, "
    'Size: 832x1216, Model hash: 1a2b3c4d5e, Model: ponyV6, VAE: sdxl_vae.safetensors, Clip skip: 2, '
    'Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: 4x-UltraSharp, '
    'Lora hashes: "armor_v2: aaa, lighting: bbb", Version: f2.0.1v1.10.1-previous-313-g8a042934'
)


def test_forge_text_with_loras_and_hires_fields(build: SimpleNamespace) -> None:
    record = parse_metadata_bytes(build.png_with_texts({"parameters": FORGE}, "iTXt"))
    assert record.generator == "a1111" and not record.recallable
    assert record.positive_prompt == "portrait of a knight <lora:armor_v2:0.8>, <lora:lighting:1.1>\nwet stone"
    assert record.negative_prompt == "lowres,\nbad hands"
    assert [(lora.name, lora.weight) for lora in record.loras] == [("armor_v2", 0.8), ("lighting", 1.1)]
    assert (record.steps, record.scheduler, record.schedule_type) == (28, "DPM++ 2M SDE", "Karras")
    assert record.cfg_scale == 4.5
    assert (record.seed, record.width, record.height, record.clip_skip) == (1234567890123, 832, 1216, 2)
    assert record.model is not None and (record.model.name, record.model.hash) == ("ponyV6", "1a2b3c4d5e")
    assert record.vae is not None and record.vae.name == "sdxl_vae.safetensors"
    assert (record.denoise_strength, record.hires_upscale, record.hires_steps, record.hires_upscaler) == (
        0.45, 1.5, 12, "4x-UltraSharp")  # fmt: skip
    assert record.app_version == "f2.0.1v1.10.1-previous-313-g8a042934"


def test_quoted_values_keep_their_commas() -> None:
    params = parse_params('Steps: 5, Lora hashes: "a: 1, b: 2", Seed: 9')
    assert params == {"Steps": "5", "Lora hashes": "a: 1, b: 2", "Seed": "9"}


def test_prompt_only_with_negative_and_lora_without_weight(build: SimpleNamespace) -> None:
    record = parse_metadata_bytes(build.png_with_texts({"parameters": "<lora:x> a cat\nNegative prompt: dog"}))
    assert record.generator == "a1111" and record.positive_prompt == "<lora:x> a cat"
    assert record.negative_prompt == "dog" and [(lora.name, lora.weight) for lora in record.loras] == [("x", 1.0)]


def test_parameters_that_are_not_a1111_text_are_unknown_generation_metadata(build: SimpleNamespace) -> None:
    record = parse_metadata_bytes(build.png_with_texts({"parameters": "something else entirely"}))
    assert record.generator == "unknown" and record.raw["parameters"] == "something else entirely"


def test_garbage_numbers_in_the_settings_line_become_none(build: SimpleNamespace) -> None:
    text = "x\nSteps: 9999999999999999999999999, Seed: -, CFG scale: nan, Size: 12 by 40"
    record = parse_metadata_bytes(build.png_with_texts({"parameters": text}))
    assert (record.steps, record.seed, record.cfg_scale, record.width) == (None, None, None, None)
