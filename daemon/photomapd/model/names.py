"""How a (model, pretrained) pair is spelled in a table's info, shared by the embedder and the model thread.

Torch-free, so the daemon can compare an album's recorded model with its own without loading the model.
"""

from __future__ import annotations

RANDOM_WEIGHTS = "none"  # how a table records "random weights": vectors of no real model, comparable only to each other


def is_random_init(pretrained: str | None) -> bool:
    """`--pretrained none`: the architecture with random weights (tests, benchmarks; nothing to download)."""
    return pretrained is None or pretrained.lower() in {"", "none", "random"}


def embedding_names(model_name: str, pretrained: str | None) -> tuple[str, str]:
    """(model, pretrained) as a table records them: vectors are comparable only between equal pairs."""
    return model_name, RANDOM_WEIGHTS if is_random_init(pretrained) else str(pretrained)
