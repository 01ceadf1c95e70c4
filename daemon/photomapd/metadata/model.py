"""The one normalized metadata record every parser returns (DESIGN §3).

The store row, the image metadata API route, the recall body builder and `photomapd metadata --json` all read this
model, so its field names are a contract: add fields, don't rename them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Generator = Literal["invokeai", "a1111", "comfyui", "novelai", "swarmui", "unknown"]


class ModelRef(BaseModel):
    name: str | None = None
    base: str | None = None
    key: str | None = None
    hash: str | None = None


class LoraRef(BaseModel):
    name: str
    weight: float | None = None


class ReferenceImage(BaseModel):
    image_name: str | None = None
    model: str | None = None
    weight: float | None = None
    method: str | None = None
    begin_step_percent: float | None = None
    end_step_percent: float | None = None


class ControlLayer(BaseModel):
    image_name: str | None = None
    model: str | None = None
    weight: float | None = None
    begin_step_percent: float | None = None
    end_step_percent: float | None = None
    control_mode: str | None = None


class InitImage(BaseModel):
    image_name: str | None = None
    strength: float | None = None


class ImageMetadata(BaseModel):
    generator: Generator | None = None  # None: the file carries no generation metadata at all
    app_version: str | None = None
    created_at: datetime | None = None
    positive_prompt: str | None = None
    negative_prompt: str | None = None
    model: ModelRef | None = None
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    guidance: float | None = None
    scheduler: str | None = None
    width: int | None = None
    height: int | None = None
    loras: list[LoraRef] = Field(default_factory=list)
    reference_images: list[ReferenceImage] = Field(default_factory=list)
    control_layers: list[ControlLayer] = Field(default_factory=list)
    init_image: InitImage | None = None
    # InvokeAI extras the recall body can send (DESIGN §4) and A1111 hires settings.
    vae: ModelRef | None = None
    refiner_model: ModelRef | None = None
    clip_skip: int | None = None
    seamless_x: bool | None = None
    seamless_y: bool | None = None
    denoise_strength: float | None = None  # img2img / hires strength
    generation_mode: str | None = None  # InvokeAI: txt2img, sdxl_img2img, ...
    schedule_type: str | None = None  # A1111 "Schedule type" (Karras, ...), separate from the sampler
    hires_upscale: float | None = None
    hires_steps: int | None = None
    hires_upscaler: str | None = None
    camera: str | None = None  # EXIF Make + Model, for photos
    recallable: bool = False  # True only for InvokeAI metadata whose shape we understand
    raw: dict[str, Any] = Field(default_factory=dict)  # every text chunk, JSON-decoded where it is JSON
    error: str | None = None  # why parsing stopped early (truncated file, bad JSON, ...); never raised
