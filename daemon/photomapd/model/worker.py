"""The model lives in its own process, so the daemon's never imports torch: when the model has been idle, that process
exits and every byte it held (torch's libraries, the weights, allocator caches: ~1 GB that an in-process unload could
not give back) goes with it.

`ModelProcess` is the daemon's handle on one such process; the module-level functions below run inside it. Only
plain data crosses: texts in, uint8 pixels in (decoded and fitted by the daemon's threads, model/preprocess.py), unit
vectors out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image

from photomapd.errors import ModelCrashed, ModelUnavailable
from photomapd.memory import release_memory
from photomapd.model.preprocess import DecodedImage, InputSpec, decode_file, to_pixels
from photomapd.spawned import spawn_pool

if TYPE_CHECKING:
    from photomapd.model.embed import Embedder
    from photomapd.model.quantize import Precision

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ModelInfo:
    dim: int
    spec: InputSpec
    device: str
    precision: str  # what the image tower runs at: "fp32", or "int8" where it was asked for and the CPU has it
    pid: int


class ModelProcess:
    """One model process: started and loaded by the constructor (which raises ModelUnavailable when the weights can't
    be had), used from one thread at a time (ModelRunner's model thread), stopped by `close`."""

    def __init__(self, model_name: str, pretrained: str | None, precision: str = "fp32") -> None:
        self._pool = spawn_pool()
        self._broken = False
        try:
            info = self._call(_load, model_name, pretrained, precision)
        except BaseException:
            self.close()
            raise
        self.dim, self.spec, self.device, self.pid = info.dim, info.spec, info.device, info.pid
        self.precision = info.precision

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.size

    @property
    def alive(self) -> bool:
        """False once the process died under a call: the runner then starts a fresh one for the next call."""
        return not self._broken

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return self._pool.submit(fn, *args).result()
        except BrokenProcessPool as exc:
            self._broken = True
            raise ModelCrashed() from exc

    # --- what the daemon asks of the model ------------------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._call(_encode_texts, list(texts))

    def encode_pixels(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Unit vectors for fitted uint8 images ([H, W, 3] each, at `spec`'s size)."""
        return self._call(_encode_pixels, np.stack(list(pixels)))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_pixels([to_pixels(image, self.spec) for image in images])

    def decode_file(self, path: Path) -> DecodedImage:
        """Thread-safe and runs in the caller's process: only the model's input size is needed to fit an image."""
        return decode_file(path, self.spec)

    def close(self) -> None:
        """Stop the process (after the call in progress, if any): the OS takes back all it held."""
        self._pool.shutdown(wait=True, cancel_futures=True)


# --- inside the model process ---------------------------------------------------------------------------------------

_embedder: Embedder | None = None
def _load(model_name: str, pretrained: str | None, precision: Precision) -> ModelInfo:
    global _embedder
    if not logging.root.handlers:  # a spawned process starts with none; its stderr is the daemon's (daemon.log)
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("photomapd").setLevel(logging.INFO)  # open_clip logs every config step at INFO
    from photomapd.model.embed import load_embedder

    _embedder = load_embedder(model_name, pretrained, precision=precision)
    # Building the model leaves a discarded copy of its weights in malloc's free lists (the inference
    # re-parametrization copies the model): trimming keeps a loaded ViT-B-32 at ~1.36 GB, not up to 1.84.
    release_memory()
    return ModelInfo(
        dim=_embedder.dim, spec=_embedder.spec, device=_embedder.device, precision=_embedder.precision, pid=os.getpid()
    )


def _loaded() -> Embedder:
    if _embedder is None:  # only if a call overtook _load, which the one-worker pool never lets happen
        raise ModelUnavailable("The model process has no model loaded")
    return _embedder


def _encode_texts(texts: list[str]) -> np.ndarray:
    return _loaded().encode_texts(texts)


def _encode_pixels(batch: np.ndarray) -> np.ndarray:
    return _loaded().encode_pixels(batch)
