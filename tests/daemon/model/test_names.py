"""The (model, pretrained) names a table records, and the torch-free import boundary of the model package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from photomapd.model.names import embedding_names, is_random_init
from photomapd.model.runner import ModelRunner


@pytest.mark.parametrize("pretrained", [None, "", "none", "None", "random", "RANDOM"])
def test_random_weights_are_recorded_as_none(pretrained: str | None) -> None:
    assert is_random_init(pretrained)
    assert embedding_names("ViT-B-32", pretrained) == ("ViT-B-32", "none")


def test_real_weights_keep_their_tag() -> None:
    assert not is_random_init("laion2b_s34b_b79k")
    assert embedding_names("ViT-B-32", "laion2b_s34b_b79k") == ("ViT-B-32", "laion2b_s34b_b79k")


def test_the_runner_reports_the_same_names_without_loading_the_model() -> None:
    runner = ModelRunner("ViT-B-16", "Random")
    try:
        assert runner.embedding_names == ("ViT-B-16", "none")
    finally:
        runner.close()


def test_decoding_searching_and_the_model_thread_import_without_torch() -> None:
    # serve starts fast because torch loads only with the model; these modules sit on the request path.
    code = (
        "import sys; import photomapd.images, photomapd.thumbs, photomapd.model.names, photomapd.model.runner, "
        "photomapd.search.query; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False", result.stderr
