"""`photomapd metadata FILE... [--json]` prints the normalized record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photomapd.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"


def test_json_for_one_file_is_the_record_with_raw(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metadata", str(FIXTURES / "invokeai-6.10.0-metadata-graph.png"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for field in ("generator", "app_version", "created_at", "positive_prompt", "negative_prompt", "model", "seed",
                  "steps", "cfg_scale", "scheduler", "width", "height", "loras", "reference_images",
                  "control_layers", "init_image", "recallable", "raw"):  # fmt: skip
        assert field in record, field
    assert record["model"] == {
        "name": "waiIllustriousSDXL_v160",
        "base": "sdxl",
        "key": "179d02bf-f5e5-4b5b-a4df-f386f3e70e93",
        "hash": "blake3:7c1631b481e1566448f49db7e3b67a8a9d04742fa3c7d4548a0c81b619160c56",
    }
    assert record["seed"] == 1860920704 and record["recallable"] is True
    assert record["raw"]["invokeai_graph"]["id"] == "sdxl_graph:zTYussRcEP"


def test_json_for_several_files_is_keyed_by_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = [str(FIXTURES / "a1111-parameters-01-cropped.png"), str(tmp_path / "missing.png")]
    assert main(["metadata", *names, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records[names[0]]["generator"] == "a1111" and records[names[0]]["seed"] == 235284042
    assert "could not read" in records[names[1]]["error"]


def test_text_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metadata", str(FIXTURES / "invokeai-3.x-metadata-only-loras.png")]) == 0
    out = capsys.readouterr().out
    assert "generator: invokeai" in out and "lora: CC-Dream-Shaper_vBeta1 @ 0.0" in out
    assert "model: CCXL-One_vB5b (sdxl)" in out
