"""Turn pixels and text into L2-normalized CLIP vectors (open_clip). Only model/ imports torch (this module and quantize.py).

`load_embedder` builds the model (weights download once into the cache dir; `pretrained="none"` = random weights for
tests and benchmarks). Images come in as uint8 pixels already fitted to the model's input (model/preprocess.py, done
on the caller's threads so the forward pass never waits on Pillow); only the normalization into a float tensor is
done here. The daemon loads this module only inside its model process (model/worker.py), never in its own.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image

from photomapd import config
from photomapd.errors import ModelUnavailable
from photomapd.model.names import is_random_init
from photomapd.model.preprocess import DecodedImage, InputSpec, decode_file, to_pixels
from photomapd.model.quantize import Precision, quantized_image_tower, resolve_precision

log = logging.getLogger(__name__)

TEXT_BATCH = 64
RANDOM_INIT_SEED = 0  # `pretrained="none"` (tests, benchmarks): the same random weights in every process


def configure_threads() -> int:
    """One intra-op thread per core: more oversubscribes small CPUs once the decode pool runs beside the model."""
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    return cores


class Embedder:
    def __init__(self, model: Any, tokenizer: Any, model_name: str, pretrained: str | None, device: str) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.pretrained = pretrained
        self.device = device
        self.precision: Precision = "fp32"  # the image tower's; the text tower is always fp32
        from open_clip.model import get_model_preprocess_cfg  # local: keeps the top-level import list to torch

        cfg = get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        self.spec = InputSpec(height=height, width=width, squash=cfg.get("resize_mode") == "squash")
        self._mean = torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5)), dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg.get("std", (0.5, 0.5, 0.5)), dtype=torch.float32).view(1, 3, 1, 1)
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["a"]).to(device))
        self.dim = int(probe.shape[-1])

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.size

    # --- preprocessing (thread-safe: no model state) ---------------------------------------------------------------

    def decode_file(self, path: Path) -> DecodedImage:
        """Decode and fit one file (model/preprocess.py); raises ImageUnreadable with the indexer's skip reason."""
        return decode_file(path, self.spec)

    def normalize(self, pixels: np.ndarray) -> torch.Tensor:
        """[N, H, W, 3] uint8 → the model's [N, 3, H, W] float input: scaled to 0..1, then the model's mean/std."""
        batch = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        return batch.sub_(self._mean).div_(self._std)

    # --- model (call from one thread at a time) ---------------------------------------------------------------------

    def encode_pixels(self, pixels: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Unit vectors for fitted uint8 images ([H, W, 3] each, at `spec`'s size)."""
        stacked = pixels if isinstance(pixels, np.ndarray) else np.stack(list(pixels))
        with torch.inference_mode():
            features = self.model.encode_image(self.normalize(stacked).to(self.device))
            return _normalized(features)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_pixels([to_pixels(image, self.spec) for image in images])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), TEXT_BATCH):
                tokens = self.tokenizer(list(texts[start : start + TEXT_BATCH])).to(self.device)
                chunks.append(_normalized(self.model.encode_text(tokens)))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)


def _normalized(features: torch.Tensor) -> np.ndarray:
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)


def pick_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_embedder(
    model_name: str, pretrained: str | None, device: str | None = None, precision: Precision = "fp32"
) -> Embedder:
    """Build the model; real weights come from (and are downloaded once into) the cache dir's models/ folder.
    `precision="int8"` quantizes the image tower where the CPU supports it (model/quantize.py), else stays fp32:
    the Embedder's `precision` says which one it runs."""
    import open_clip

    configure_threads()
    device = device or pick_device()
    if model_name not in open_clip.list_models():
        raise ModelUnavailable(f"Unknown CLIP model '{model_name}' (see open_clip.list_models())")
    random_init = is_random_init(pretrained)
    cache = config.models_dir()
    try:
        if random_init:
            # Seeded, so every process that loads random weights builds the same ones: a CLI and a daemon, the
            # model worker after an idle unload, or Ray actors then embed a file to the same vector.
            with torch.random.fork_rng():
                torch.manual_seed(RANDOM_INIT_SEED)
                model = open_clip.create_model(model_name, pretrained=None)
        else:
            cache.mkdir(parents=True, exist_ok=True)
            _go_offline_unless_hub_reachable()
            model = open_clip.create_model(model_name, pretrained=pretrained, cache_dir=str(cache))
    except RuntimeError as exc:
        if "Pretrained weights" in str(exc) and "not found" in str(exc):
            raise ModelUnavailable(f"Unknown pretrained tag '{pretrained}' for CLIP model '{model_name}'") from exc
        raise ModelUnavailable(_offline_message(model_name, pretrained, cache, exc)) from exc
    except (OSError, ValueError) as exc:  # huggingface_hub's offline/connection errors derive from these
        raise ModelUnavailable(_offline_message(model_name, pretrained, cache, exc)) from exc
    model = _fuse_for_inference(model)
    tokenizer = open_clip.get_tokenizer(model_name)
    log.info("loaded CLIP %s (%s) on %s", model_name, "random weights" if random_init else pretrained, device)
    embedder = Embedder(model, tokenizer, model_name, None if random_init else pretrained, device)
    if resolve_precision(precision, device) == "int8":
        tower = quantized_image_tower(embedder.model, embedder.input_size)
        if tower is not None:  # None: the probe found the int8 kernels off on this CPU, so fp32 it stays
            embedder.model.visual = tower
            embedder.precision = "int8"
    return embedder


def _fuse_for_inference(model: Any) -> Any:
    """MobileCLIP-style blocks train with parallel branches that fold into one conv for inference (3x faster on
    CPU); ViTs have nothing to fold and come back unchanged."""
    try:
        from timm.utils.model import reparameterize_model
    except ImportError:  # timm absent: only MobileCLIP models need it, and they import it themselves
        return model
    return reparameterize_model(model.eval(), inplace=True)  # the default deep copy doubled the load peak


def _go_offline_unless_hub_reachable(timeout_s: float = 3.0) -> None:
    """Without network, the hub client retries for about a minute before failing; one quick connect tells us to use
    only what is already in the cache (which loads normally) and fail at once otherwise."""
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout_s).close()
    except OSError:
        log.info("model hub unreachable; loading weights from the cache only")
        constants.HF_HUB_OFFLINE = True


def _offline_message(model_name: str, pretrained: str | None, cache: Path, exc: BaseException) -> str:
    return (
        f"Could not load CLIP weights for model '{model_name}' ({pretrained}): the download failed or the files are "
        f"not in {cache}. Connect to the internet once so they download there, or copy them there "
        f"({exc.__class__.__name__})."
    )
