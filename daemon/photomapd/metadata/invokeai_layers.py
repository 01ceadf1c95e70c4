"""InvokeAI's list-valued settings in every historical shape: LoRAs, reference images / IP adapters, control
layers, and the init image (from the metadata, the canvas, or as a last resort the graph/workflow).

Each reader returns (items, understood): `understood` is False when a list holds entries of a shape we don't know,
so the caller can turn recall off rather than send half a setting.
"""

from __future__ import annotations

from typing import Any

from photomapd.metadata._values import as_bool, as_dict, as_float, as_list, as_str, dig
from photomapd.metadata.model import ControlLayer, InitImage, LoraRef, ModelRef, ReferenceImage


def model_ref(value: Any) -> ModelRef | None:
    """3.x {model_name, base_model, model_type} or 4.x+ {key, hash, name, base, type}; None for anything else."""
    ref = as_dict(value)
    name = as_str(ref.get("name")) or as_str(ref.get("model_name"))
    if name is None:
        return None
    return ModelRef(
        name=name,
        base=as_str(ref.get("base")) or as_str(ref.get("base_model")),
        key=as_str(ref.get("key")),
        hash=as_str(ref.get("hash")),
    )


def image_name(value: Any) -> str | None:
    """An image reference: a bare name, {image_name}, or 6.x's {original: {image: {image_name}}, crop: ...}."""
    if isinstance(value, str):
        return as_str(value)
    return (
        as_str(dig(value, "image_name"))
        or as_str(dig(value, "original", "image", "image_name"))
        or as_str(dig(value, "image", "image_name"))
    )


def _enabled(entry: dict[str, Any]) -> bool:
    return as_bool(entry.get("isEnabled")) is not False and as_bool(entry.get("is_enabled")) is not False


def read_loras(value: Any) -> tuple[list[LoraRef], bool]:
    """3.x [{lora: {model_name, ...}, weight}] and 4.x+ [{model: {key, name, ...}, weight}]."""
    loras: list[LoraRef] = []
    understood = isinstance(value, list) or value is None
    for entry in as_list(value):
        item = as_dict(entry)
        ref = model_ref(item.get("lora") if "lora" in item else item.get("model"))
        if ref is None or ref.name is None:
            understood = False
            continue
        if _enabled(item):
            loras.append(LoraRef(name=ref.name, weight=as_float(item.get("weight"))))
    return loras, understood


def _step_range(config: dict[str, Any]) -> tuple[float | None, float | None]:
    """3.x/4.x: begin/end_step_percent; 5.x+: beginEndStepPct [begin, end]."""
    pair = as_list(config.get("beginEndStepPct"))
    if len(pair) == 2:
        return as_float(pair[0]), as_float(pair[1])
    return as_float(config.get("begin_step_percent")), as_float(config.get("end_step_percent"))


def _flat(value: Any) -> list[Any]:
    """A list, with some 6.x writers' extra list-of-lists wrapper removed."""
    items = as_list(value)
    return as_list(items[0]) if len(items) == 1 and isinstance(items[0], list) else items


def _layers(metadata: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """4.x `control_layers: {version, layers: [...]}`: the enabled layers whose type mentions `kind`."""
    layers = [as_dict(layer) for layer in as_list(dig(metadata, "control_layers", "layers"))]
    return [layer for layer in layers if kind in (as_str(layer.get("type")) or "") and _enabled(layer)]


def read_reference_images(metadata: dict[str, Any]) -> tuple[list[ReferenceImage], bool]:
    """ipAdapters (3.x–4.1), control_layers ip_adapter layers (4.x), canvas_v2_metadata.referenceImages (5.x),
    ref_images (6.x)."""
    images: list[ReferenceImage] = []
    understood = True
    for value in (metadata.get("ipAdapters"), dig(metadata, "canvas_v2_metadata", "referenceImages")):
        if value is not None and not isinstance(value, list):
            understood = False
    entries = [(entry, False) for entry in as_list(metadata.get("ipAdapters"))]
    entries += [(entry, True) for entry in _layers(metadata, "ip_adapter")]
    entries += [(entry, True) for entry in as_list(dig(metadata, "canvas_v2_metadata", "referenceImages"))]
    entries += [(entry, True) for entry in _flat(metadata.get("ref_images"))]
    for entry, is_layer in entries:
        item = as_dict(entry)
        if not item:
            understood = False
            continue
        if not _enabled(item):
            continue
        # 4.x/5.x/6.x layers wrap the adapter settings in `ipAdapter` or `config`.
        config = (as_dict(item.get("config")) or as_dict(item.get("ipAdapter"))) if is_layer else item
        model = model_ref(config.get("model") or config.get("ip_adapter_model"))
        begin, end = _step_range(config)
        images.append(
            ReferenceImage(
                image_name=image_name(config.get("image")),
                model=model.name if model else None,
                weight=as_float(config.get("weight")),
                method=as_str(config.get("method")),
                begin_step_percent=begin,
                end_step_percent=end,
            )
        )
    return images, understood


def read_control_layers(metadata: dict[str, Any]) -> tuple[list[ControlLayer], bool]:
    """controlnets / t2iAdapters (3.x–4.x), control_layers control adapter layers (4.x) and
    canvas_v2_metadata.controlLayers (5.x+)."""
    layers: list[ControlLayer] = []
    understood = True
    for key, model_key in (("controlnets", "control_model"), ("t2iAdapters", "t2i_adapter_model")):
        value = metadata.get(key)
        if value is not None and not isinstance(value, list):
            understood = False
        for entry in as_list(value):
            item = as_dict(entry)
            model = model_ref(item.get(model_key) or item.get("model"))
            if model is None:
                understood = False
                continue
            layers.append(_control_layer(item, model, image_name(item.get("image"))))
    canvas_layers = as_list(dig(metadata, "canvas_v2_metadata", "controlLayers")) + _layers(metadata, "control_adapter")
    for entry in canvas_layers:
        item = as_dict(entry)
        adapter = as_dict(item.get("controlAdapter"))
        if not adapter or not _enabled(item):
            continue
        image = (
            _first_object_image(item) or image_name(adapter.get("image")) or image_name(adapter.get("processedImage"))
        )
        layers.append(_control_layer(adapter, model_ref(adapter.get("model")), image))
    return layers, understood


def _control_layer(settings: dict[str, Any], model: ModelRef | None, image: str | None) -> ControlLayer:
    begin, end = _step_range(settings)
    weight = settings.get("control_weight") if "control_weight" in settings else settings.get("weight")
    return ControlLayer(
        image_name=image,
        model=model.name if model else None,
        weight=as_float(weight),
        begin_step_percent=begin,
        end_step_percent=end,
        control_mode=as_str(settings.get("control_mode")) or as_str(settings.get("controlMode")),
    )


def _first_object_image(layer: dict[str, Any]) -> str | None:
    for obj in as_list(layer.get("objects")):
        name = image_name(dig(obj, "image"))
        if name:
            return name
    return None


def read_init_image(metadata: dict[str, Any], graph: Any, workflow: Any) -> InitImage | None:
    """`init_image` (a name or {image_name}) + `strength`; else the first canvas raster layer image; else the
    image feeding an `i2l` node in the graph or workflow (the only gap the graph/workflow are used for)."""
    strength = as_float(metadata.get("strength"))
    name = image_name(metadata.get("init_image"))
    if name is None:
        for layer in _layers(metadata, "initial_image"):
            name = image_name(layer.get("image"))
            if name:
                break
    if name is None:
        for layer in as_list(dig(metadata, "canvas_v2_metadata", "rasterLayers")):
            if _enabled(as_dict(layer)):
                name = _first_object_image(as_dict(layer))
                if name:
                    break
    if name is None:
        name = _graph_init_image(graph) or _workflow_init_image(workflow)
    if name is None:
        return None
    return InitImage(image_name=name, strength=strength)


def _graph_init_image(graph: Any) -> str | None:
    nodes = dig(graph, "nodes")
    for node in nodes.values() if isinstance(nodes, dict) else as_list(nodes):
        if as_str(dig(node, "type")) == "i2l":
            name = image_name(dig(node, "image"))
            if name:
                return name
    return None


def _workflow_init_image(workflow: Any) -> str | None:
    for node in as_list(dig(workflow, "nodes")):
        if as_str(dig(node, "data", "type")) == "i2l":
            name = image_name(dig(node, "data", "inputs", "image", "value"))
            if name:
                return name
    return None
