"""The recall body builder: every parameter the metadata has, named and bounded as the server's model wants."""

from __future__ import annotations

import sys
from pathlib import Path

from photomapd.invokeai.recall import (
    build_recall_body,
    dropped,
    image_names,
    is_recallable,
    kept_image_names,
    without_images,
)
from photomapd.metadata import read_metadata
from photomapd.metadata.model import (
    ControlLayer,
    ImageMetadata,
    InitImage,
    LoraRef,
    ModelRef,
    ReferenceImage,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server's recall model
from fake_invokeai import Recall613  # noqa: E402

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "images"


def _six_x() -> ImageMetadata:
    """A 6.x record with every kind of parameter: LoRAs, an IP adapter, a global ref image, a control layer."""
    return ImageMetadata(
        generator="invokeai",
        app_version="6.14.2",
        positive_prompt="a lighthouse at dusk",
        negative_prompt="blurry",
        model=ModelRef(name="juggernautXL", base="sdxl", key="k-1", hash="blake3:00"),
        seed=1234,
        steps=30,
        cfg_scale=6.5,
        guidance=3.5,
        scheduler="dpmpp_2m",
        width=1024,
        height=768,
        loras=[LoraRef(name="detail-tweaker", weight=0.6), LoraRef(name="film-grain", weight=None)],
        reference_images=[
            ReferenceImage(image_name="ip.png", model="ip-adapter-plus", weight=0.8, method="style",
                           begin_step_percent=0.0, end_step_percent=0.9),
            ReferenceImage(image_name="kontext.png"),
        ],
        control_layers=[ControlLayer(image_name="pose.png", model="openpose-xl", weight=0.75, control_mode="balanced",
                                     begin_step_percent=0.1, end_step_percent=1.0)],
        init_image=InitImage(image_name="init.png", strength=0.4),
        recallable=True,
    )


def test_recall_body_has_every_parameter_under_the_servers_names() -> None:
    body = build_recall_body(_six_x())
    assert body == {
        "positive_prompt": "a lighthouse at dusk",
        "negative_prompt": "blurry",
        "model": "juggernautXL",
        "scheduler": "dpmpp_2m",
        "steps": 30,
        "cfg_scale": 6.5,
        "guidance": 3.5,
        "width": 1024,
        "height": 768,
        "seed": 1234,
        "denoise_strength": 0.4,
        "loras": [
            {"model_name": "detail-tweaker", "weight": 0.6, "is_enabled": True},
            {"model_name": "film-grain", "weight": 0.75, "is_enabled": True},
        ],
        "control_layers": [
            {"model_name": "openpose-xl", "weight": 0.75, "image_name": "pose.png", "begin_step_percent": 0.1,
             "end_step_percent": 1.0, "control_mode": "balanced"}
        ],
        "ip_adapters": [
            {"model_name": "ip-adapter-plus", "weight": 0.8, "image_name": "ip.png", "begin_step_percent": 0.0,
             "end_step_percent": 0.9, "method": "style"}
        ],
        "reference_images": [{"image_name": "kontext.png"}],
    }


def test_remix_body_is_the_recall_body_minus_the_seed() -> None:
    meta = _six_x()
    recall, remix = build_recall_body(meta), build_recall_body(meta, include_seed=False)
    assert "seed" not in remix
    assert {**remix, "seed": meta.seed} == recall


def test_servers_before_6_13_get_no_reference_images_field() -> None:
    body = build_recall_body(_six_x(), reference_images=False)
    assert "reference_images" not in body
    assert body["ip_adapters"][0]["image_name"] == "ip.png"  # IP adapters existed before 6.13


def test_3x_record_with_legacy_scheduler_and_only_some_fields() -> None:
    meta = ImageMetadata(
        generator="invokeai", positive_prompt="spider", model=ModelRef(name="CCXL-One_vB5b", base="sdxl"),
        seed=608215531, width=1344, height=768, scheduler="k_euler_a", recallable=True,
    )
    assert build_recall_body(meta) == {
        "positive_prompt": "spider", "model": "CCXL-One_vB5b", "scheduler": "euler_a", "width": 1344, "height": 768,
        "seed": 608215531,
    }


def test_values_the_server_would_refuse_are_left_out_or_clamped() -> None:
    meta = ImageMetadata(
        generator="invokeai", steps=0, width=32, height=48, seed=-1, cfg_scale=float("nan"), positive_prompt="",
        loras=[LoraRef(name="huge", weight=25.0), LoraRef(name="", weight=1.0)],
        control_layers=[ControlLayer(image_name="c.png", model=None), ControlLayer(model="canny", weight=-3.0,
                                                                                    control_mode="sideways")],
        reference_images=[ReferenceImage(image_name="r.png", model="ip", weight=1.0, method="everything",
                                         begin_step_percent=1.5)],
        init_image=InitImage(image_name="i.png", strength=1.7),
        recallable=True,
    )
    assert build_recall_body(meta) == {
        "loras": [{"model_name": "huge", "weight": 10.0, "is_enabled": True}],
        "control_layers": [{"model_name": "canny", "weight": -1.0}],
        "ip_adapters": [{"model_name": "ip", "weight": 1.0, "image_name": "r.png"}],
    }


def test_image_names_and_without_images() -> None:
    body = build_recall_body(_six_x())
    assert sorted(image_names(body)) == ["ip.png", "kontext.png", "pose.png"]
    trimmed = without_images(body)
    assert image_names(trimmed) == []
    assert not {"control_layers", "ip_adapters", "reference_images"} & trimmed.keys()
    assert trimmed["loras"] == body["loras"] and trimmed["seed"] == 1234


def test_only_understood_invokeai_metadata_is_recallable() -> None:
    assert is_recallable(_six_x())
    assert not is_recallable(ImageMetadata(generator="invokeai", recallable=False))
    assert not is_recallable(ImageMetadata(generator="a1111", recallable=True, positive_prompt="duck"))
    assert not is_recallable(ImageMetadata())


# --- fields the recall model takes that ImageMetadata doesn't normalize --------------------------------------------


def test_cfg_rescale_multiplier_of_a_3x_fixture_is_sent() -> None:
    # 3.x wrote it; 6.12+'s recall model accepts it, and `strict=true` would clear it if it were left out.
    meta = read_metadata(FIXTURE_DIR / "invokeai-3.x-metadata-only-loras.png")
    assert build_recall_body(meta)["cfg_rescale_multiplier"] == 0.0


def test_refiner_fields_from_the_invokeai_record_are_sent_within_the_servers_bounds() -> None:
    record = {"cfg_rescale_multiplier": 0.7, "refiner_steps": 12, "refiner_cfg_scale": 5.5, "refiner_start": 0.8,
              "refiner_positive_aesthetic_score": 6.0, "refiner_negative_aesthetic_score": 2.5,
              "refiner_scheduler": "euler", "positive_style_prompt": "not a recall field"}
    meta = ImageMetadata(generator="invokeai", recallable=True, raw={"invokeai_metadata": record})
    assert build_recall_body(meta) == {
        "cfg_rescale_multiplier": 0.7, "refiner_steps": 12, "refiner_cfg_scale": 5.5, "refiner_denoise_start": 0.8,
        "refiner_positive_aesthetic_score": 6.0, "refiner_negative_aesthetic_score": 2.5,
    }
    refused = {"cfg_rescale_multiplier": "0.7", "refiner_steps": -1, "refiner_start": 1.5,
               "refiner_cfg_scale": float("inf"), "refiner_positive_aesthetic_score": True}
    meta = ImageMetadata(generator="invokeai", recallable=True, raw={"invokeai_metadata": refused})
    assert build_recall_body(meta) == {}


def test_every_recall_field_we_send_is_in_the_servers_model() -> None:
    record = {key: 0.5 for key in ("cfg_rescale_multiplier", "refiner_cfg_scale", "refiner_start",
                                   "refiner_positive_aesthetic_score", "refiner_negative_aesthetic_score")}
    meta = _six_x().model_copy(update={"raw": {"invokeai_metadata": {**record, "refiner_steps": 3}}})
    body = build_recall_body(meta)
    assert set(body) <= set(Recall613.model_fields)
    # every scalar field of the server's model is one the builder can fill
    scalars = {name for name, field in Recall613.model_fields.items() if "list" not in str(field.annotation)}
    assert scalars - set(body) == {"refiner_model", "vae_model", "clip_skip", "seamless_x", "seamless_y"}


# --- what the server's answer left out ------------------------------------------------------------------------------


def test_dropped_compares_what_was_sent_with_what_was_kept() -> None:
    sent = build_recall_body(_six_x())
    kept = {**sent, "model": None, "loras": [{"model_key": "k", "weight": 0.6, "is_enabled": True}],
            "control_layers": [], "ip_adapters": [{"model_key": "k", "weight": 0.8, "image": {"image_name": "ip.png",
                                                                                              "width": 64,
                                                                                              "height": 64}}],
            "reference_images": []}
    assert kept_image_names(kept) == ["ip.png"]
    assert dropped(sent, kept) == ["2 reference images", "the model juggernautXL", "1 LoRA", "1 control layer"]
    everything = {**sent, "reference_images": [{"image": {"image_name": "kontext.png"}}],
                  "control_layers": [{"model_key": "c", "image": {"image_name": "pose.png"}}],
                  "ip_adapters": [{"model_key": "k", "image": {"image_name": "ip.png"}}]}
    assert dropped(sent, everything) == []
