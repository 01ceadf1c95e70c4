"""Every real InvokeAI fixture image: its Recall body passes the server's validation, and Remix is it minus seed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import FakeInvokeAI  # noqa: E402

from photomapd.invokeai.client import InvokeAIClient  # noqa: E402
from photomapd.metadata import read_metadata  # noqa: E402
from photomapd.invokeai.recall import build_recall_body, image_names  # noqa: E402

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "images"
INVOKEAI_FIXTURES = sorted(FIXTURE_DIR.glob("invokeai-*"))


def test_the_fixtures_are_there() -> None:
    assert len(INVOKEAI_FIXTURES) >= 10, f"expected the InvokeAI fixture images in {FIXTURE_DIR}"


@pytest.mark.parametrize("version", ["6.14.2", "6.12.0"])
@pytest.mark.parametrize("path", INVOKEAI_FIXTURES, ids=lambda p: p.name)
async def test_recall_body_of_every_invokeai_fixture_is_accepted(aiohttp_server: Any, path: Path, version: str) -> None:
    meta = read_metadata(path)
    assert meta.generator == "invokeai"
    fake = FakeInvokeAI(version)
    server = await aiohttp_server(fake.app())
    new_server = fake.has_strict
    recall = build_recall_body(meta, reference_images=new_server)
    remix = build_recall_body(meta, include_seed=False, reference_images=new_server)
    for name in image_names(recall):  # the images a layer names live on the user's own server
        fake.add_image(name)
    async with InvokeAIClient(str(server.make_url("/"))) as client:
        await client.recall(recall, strict=new_server)
        await client.recall(remix, strict=new_server)
    accepted_recall, accepted_remix = (entry["body"] for entry in fake.recalls)
    assert accepted_recall == recall and accepted_remix == remix  # nothing dropped or coerced by the server
    assert {**remix, **({"seed": meta.seed} if "seed" in recall else {})} == recall and "seed" not in remix
    if meta.recallable:
        assert recall.get("positive_prompt") and recall.get("seed") is not None
