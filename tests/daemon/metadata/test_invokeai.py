"""Hand-made InvokeAI metadata for the eras the real fixtures lack, built from the documented shapes (DESIGN §3)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from photomapd.metadata import parse_metadata_bytes
from photomapd.metadata.model import ImageMetadata

MODEL_4X = {"key": "k-main", "hash": "blake3:abc", "name": "juggernautXL_v9", "base": "sdxl", "type": "main"}
LORA_4X = {"key": "k-lora", "hash": "blake3:def", "name": "detail-tweaker", "base": "sdxl", "type": "lora"}
IP_MODEL = {"key": "k-ip", "hash": "blake3:123", "name": "ip_adapter_sdxl_vit_h", "base": "sdxl", "type": "ip_adapter"}
CN_MODEL = {"key": "k-cn", "name": "controlnet-canny-sdxl", "base": "sdxl", "type": "controlnet"}


def metadata_4x(**extra: Any) -> dict[str, Any]:
    return {
        "app_version": "4.2.6",
        "generation_mode": "sdxl_txt2img",
        "positive_prompt": "a lighthouse at dusk",
        "negative_prompt": "blurry",
        "width": 1216,
        "height": 832,
        "seed": 123456789,
        "cfg_scale": 6.5,
        "steps": 30,
        "scheduler": "dpmpp_2m_k",
        "model": MODEL_4X,
        "loras": [{"model": LORA_4X, "weight": 0.6}],
        "vae": {"key": "k-vae", "name": "sdxl-vae-fp16-fix", "base": "sdxl", "type": "vae"},
        "seamless_x": False,
        "seamless_y": True,
        "clip_skip": 2,
        **extra,
    }


def parse(build: SimpleNamespace, texts: dict[str, Any], kind: str = "tEXt") -> ImageMetadata:
    return parse_metadata_bytes(build.png_with_texts(texts, kind))


def test_4x_all_three_chunks_reads_metadata_and_keeps_graph_and_workflow_raw(build: SimpleNamespace) -> None:
    graph = {"id": "sdxl_graph:x", "nodes": {"positive_prompt": {"type": "string", "value": "from the graph"}}}
    workflow = {"name": "", "meta": {"version": "3.0.0"}, "nodes": []}
    record = parse(build, {"invokeai_metadata": metadata_4x(), "invokeai_workflow": workflow, "invokeai_graph": graph})
    assert record.generator == "invokeai" and record.recallable and record.error is None
    assert record.positive_prompt == "a lighthouse at dusk"  # from the metadata, never the graph
    assert record.model is not None and (record.model.name, record.model.key, record.model.base) == (
        "juggernautXL_v9", "k-main", "sdxl")  # fmt: skip
    assert [(lora.name, lora.weight) for lora in record.loras] == [("detail-tweaker", 0.6)]
    assert record.vae is not None and record.vae.name == "sdxl-vae-fp16-fix"
    assert (record.seamless_x, record.seamless_y, record.clip_skip) == (False, True, 2)
    assert (record.width, record.height, record.steps, record.cfg_scale) == (1216, 832, 30, 6.5)
    assert record.raw["invokeai_graph"]["id"] == "sdxl_graph:x"
    assert record.raw["invokeai_workflow"]["meta"]["version"] == "3.0.0"


def test_4x_ip_adapters_and_controlnets_become_reference_images_and_control_layers(build: SimpleNamespace) -> None:
    extra = {
        "ipAdapters": [{"image": {"image_name": "ref.png"}, "ip_adapter_model": IP_MODEL, "weight": 0.7,
                        "begin_step_percent": 0.1, "end_step_percent": 0.9, "method": "style"}],
        "controlnets": [{"image": {"image_name": "edges.png"}, "control_model": CN_MODEL, "control_weight": 0.8,
                         "begin_step_percent": 0, "end_step_percent": 0.5, "control_mode": "balanced"}],
    }  # fmt: skip
    record = parse(build, {"invokeai_metadata": metadata_4x(**extra)})
    ref = record.reference_images[0]
    assert (ref.image_name, ref.model, ref.weight, ref.method) == ("ref.png", "ip_adapter_sdxl_vit_h", 0.7, "style")
    assert (ref.begin_step_percent, ref.end_step_percent) == (0.1, 0.9)
    layer = record.control_layers[0]
    assert (layer.image_name, layer.model, layer.weight, layer.control_mode) == (
        "edges.png", "controlnet-canny-sdxl", 0.8, "balanced")  # fmt: skip
    assert record.recallable


def test_5x_canvas_reference_images_control_layers_and_raster_init_image(build: SimpleNamespace) -> None:
    canvas = {
        "referenceImages": [
            {"id": "r1", "isEnabled": True,
             "ipAdapter": {"image": {"image_name": "face.png"}, "model": IP_MODEL, "weight": 0.5, "method": "full",
                           "beginEndStepPct": [0, 0.8]}},
            {"id": "r2", "isEnabled": False, "ipAdapter": {"image": {"image_name": "off.png"}, "model": IP_MODEL}},
        ],
        "controlLayers": [
            {"id": "c1", "isEnabled": True, "objects": [{"type": "image", "image": {"image_name": "pose.png"}}],
             "controlAdapter": {"type": "controlnet", "model": CN_MODEL, "weight": 0.75, "beginEndStepPct": [0, 1],
                                "controlMode": "more_control"}},
        ],
        "rasterLayers": [
            {"id": "l1", "isEnabled": True, "objects": [{"type": "image", "image": {"image_name": "base.png"}}]},
        ],
    }  # fmt: skip
    meta = metadata_4x(app_version="5.6.0", generation_mode="sdxl_img2img", strength=0.55, canvas_v2_metadata=canvas)
    record = parse(build, {"invokeai_metadata": meta})
    assert [(r.image_name, r.model, r.weight, r.end_step_percent) for r in record.reference_images] == [
        ("face.png", "ip_adapter_sdxl_vit_h", 0.5, 0.8)]  # fmt: skip
    assert [(c.image_name, c.model, c.control_mode) for c in record.control_layers] == [
        ("pose.png", "controlnet-canny-sdxl", "more_control")]  # fmt: skip
    assert record.init_image is not None and (record.init_image.image_name, record.init_image.strength) == (
        "base.png", 0.55)  # fmt: skip
    assert record.denoise_strength == 0.55 and record.recallable


def test_6x_ref_images_in_both_image_shapes(build: SimpleNamespace) -> None:
    refs = [
        {"id": "a", "isEnabled": True, "config": {"type": "ip_adapter", "image": {"image_name": "one.png"},
                                                  "model": IP_MODEL, "weight": 1.0, "method": "full",
                                                  "beginEndStepPct": [0, 1]}},
        {"id": "b", "isEnabled": True, "config": {"type": "flux_redux", "model": {"key": "r", "name": "flux-redux"},
                                                  "image": {"original": {"image": {"image_name": "two.png"}},
                                                            "crop": None}}},
    ]  # fmt: skip
    record = parse(build, {"invokeai_metadata": metadata_4x(app_version="6.9.0", ref_images=refs)})
    assert [(r.image_name, r.model) for r in record.reference_images] == [
        ("one.png", "ip_adapter_sdxl_vit_h"), ("two.png", "flux-redux")]  # fmt: skip
    assert record.recallable


def test_6x_ref_images_wrapped_in_an_extra_list(build: SimpleNamespace) -> None:
    refs = [[{"id": "a", "isEnabled": True, "config": {"image": {"image_name": "x.png"}, "model": IP_MODEL}}]]
    record = parse(build, {"invokeai_metadata": metadata_4x(app_version="6.2.0", ref_images=refs)})
    assert [r.image_name for r in record.reference_images] == ["x.png"]


def test_3x_img2img_init_image_name_and_strength(build: SimpleNamespace) -> None:
    meta = {"app_version": "3.4.0", "positive_prompt": "p", "seed": 1, "init_image": "start.png", "strength": 0.4,
            "model": {"model_name": "sd15", "base_model": "sd-1", "model_type": "main"}}  # fmt: skip
    record = parse(build, {"invokeai_metadata": meta})
    assert record.init_image is not None and (record.init_image.image_name, record.init_image.strength) == (
        "start.png", 0.4)  # fmt: skip
    assert record.model is not None and (record.model.name, record.model.base) == ("sd15", "sd-1")


def test_init_image_gap_filled_from_graph_i2l_node(build: SimpleNamespace) -> None:
    graph = {"id": "g", "nodes": {"i2l": {"id": "i2l", "type": "i2l", "image": {"image_name": "from-graph.png"}}}}
    record = parse(build, {"invokeai_metadata": metadata_4x(strength=0.3), "invokeai_graph": graph})
    assert record.init_image is not None and record.init_image.image_name == "from-graph.png"


def test_init_image_gap_filled_from_workflow_i2l_node(build: SimpleNamespace) -> None:
    workflow = {"nodes": [{"data": {"type": "i2l", "inputs": {"image": {"value": {"image_name": "wf.png"}}}}}]}
    record = parse(build, {"invokeai_metadata": metadata_4x(), "invokeai_workflow": workflow})
    assert record.init_image is not None and record.init_image.image_name == "wf.png"


def test_30_beta_invokeai_chunk(build: SimpleNamespace) -> None:
    chunk = {"session_id": "s1", "node": {"id": "1", "type": "img2img", "prompt": "castle [fog]", "seed": 99,
             "steps": 25, "width": 768, "height": 512, "cfg_scale": 7.0, "scheduler": "k_euler",
             "model": "stable-diffusion-1.5", "strength": 0.6, "image": {"image_type": "results",
             "image_name": "init.png"}}}  # fmt: skip
    record = parse(build, {"invokeai": chunk})
    assert record.generator == "invokeai" and record.recallable
    assert (record.positive_prompt, record.negative_prompt, record.seed) == ("castle", "fog", 99)
    assert record.model is not None and record.model.name == "stable-diffusion-1.5"
    assert record.init_image is not None and (record.init_image.image_name, record.init_image.strength) == (
        "init.png", 0.6)  # fmt: skip


def test_30_beta_chunk_of_unknown_shape_is_not_recallable(build: SimpleNamespace) -> None:
    record = parse(build, {"invokeai": {"session_id": "s1", "something_else": {}}})
    assert record.generator == "invokeai" and not record.recallable
    assert record.error is not None and "invokeai" in record.error
    assert record.raw["invokeai"] == {"session_id": "s1", "something_else": {}}


def test_metadata_in_compressed_itxt_and_ztxt_chunks(build: SimpleNamespace) -> None:
    for kind in ("iTXt-z", "zTXt", "iTXt"):
        record = parse(build, {"invokeai_metadata": metadata_4x()}, kind)
        assert record.positive_prompt == "a lighthouse at dusk" and record.recallable, kind


def test_unknown_future_major_version_keeps_raw_but_is_not_recallable(build: SimpleNamespace) -> None:
    record = parse(build, {"invokeai_metadata": metadata_4x(app_version="7.0.0")})
    assert record.generator == "invokeai" and not record.recallable
    assert record.positive_prompt == "a lighthouse at dusk"  # still shown in the drawer
    assert record.raw["invokeai_metadata"]["app_version"] == "7.0.0"
    assert record.error is not None and "7.0.0" in record.error


def test_wrong_types_are_not_recallable_and_never_raise(build: SimpleNamespace) -> None:
    cases: list[dict[str, Any]] = [
        metadata_4x(model="juggernaut"),  # a string where an object belongs
        metadata_4x(seed="12"),
        metadata_4x(seed=10**30),
        metadata_4x(steps=None, positive_prompt=["not", "text"]),
        metadata_4x(loras={"model": LORA_4X}),
        metadata_4x(loras=[{"weight": 1}]),
        metadata_4x(ipAdapters="none"),
    ]
    for meta in cases:
        record = parse(build, {"invokeai_metadata": meta})
        assert record.generator == "invokeai" and not record.recallable, meta
        assert record.error, meta
    record = parse(build, {"invokeai_metadata": "just a string"})
    assert record.generator == "invokeai" and not record.recallable
    assert record.raw["invokeai_metadata"] == "just a string"


def test_invokeai_metadata_that_is_not_json_keeps_text_and_reports_it(build: SimpleNamespace) -> None:
    record = parse(build, {"invokeai_metadata": '{"positive_prompt": "cut off'})
    assert record.generator == "invokeai" and not record.recallable
    assert record.raw["invokeai_metadata"] == '{"positive_prompt": "cut off'
    assert record.error is not None and "invalid JSON" in record.error


def test_workflow_only_is_invokeai_but_not_recallable(build: SimpleNamespace) -> None:
    record = parse(build, {"invokeai_workflow": {"name": "w", "nodes": []}})
    assert record.generator == "invokeai" and not record.recallable and record.positive_prompt is None
