"""Selections in a real Chromium: the grid's multi-select (mouse and keyboard), the batch bar's actions against a
real daemon and the fake InvokeAI, and the drawer's star and Append buttons. Screenshots in test-output/extension/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import INVOKEAI_6, OUTPUT, Daemon, Servers  # noqa: E402
from test_browser import configure_invokeai  # noqa: E402

Run = Callable[..., dict[str, Any]]


def _board_image_count(servers: Servers, board: str) -> int:
    listing = httpx.get(f"{servers.invokeai_url}/api/v1/images/names", params={"board_id": servers.boards[board]}, timeout=10)
    assert listing.status_code == 200, listing.text
    return int(listing.json()["total_count"])


@pytest.mark.parametrize("width", [320, 420])
def test_grid_multi_select_and_the_batch_bar(run_scenario: Run, daemon: Daemon, servers: Servers, width: int) -> None:
    configure_invokeai(daemon, servers.invokeai_url)
    before = _board_image_count(servers, "Sketches")
    seen = run_scenario(
        "gridSelection", width=width, atLeast=len(daemon.ids), board="Sketches", shotPrefix=str(OUTPUT / "selection")
    )
    order = seen["order"]
    assert seen["barBefore"]["visible"] is False
    assert seen["afterCtrl"] == {"visible": True, "count": "1 selected", "picked": [order[0]], "drawerOpen": False}
    assert seen["afterShift"]["picked"] == sorted(order[:3]) and seen["afterShift"]["count"] == "3 selected"
    assert seen["afterUnpick"]["picked"] == sorted([order[0], order[2]])
    assert seen["afterSpace"]["picked"] == sorted(order[:3])
    assert seen["afterEscape"]["visible"] is False
    assert seen["afterAll"]["count"] == f"{len(order)} selected"
    chosen = sorted(order[:2])
    assert seen["chosen"] == chosen
    assert seen["star"] == {"text": "Starred 2 images", "ok": True}
    assert seen["starredCells"] == chosen and seen["stillPicked"] == chosen
    assert seen["board"]["ok"] and "Uploaded 2 images" in seen["board"]["text"] and "Sketches" in seen["board"]["text"]
    assert _board_image_count(servers, "Sketches") == before + 2, "both files reached the board"
    assert seen["zip"]["ok"] and seen["zipName"] == "gallery-selection.zip"
    assert seen["unstar"]["ok"]
    assert seen["opened"]["cells"] == chosen
    assert seen["opened"]["chip"].startswith("Selection: 2 images") and seen["opened"]["count"] == "2 images"
    assert seen["afterScopeCleared"] >= len(order)
    assert seen["afterClear"]["visible"] is False


def test_drawer_star_and_append_button(run_scenario: Run, daemon: Daemon, servers: Servers) -> None:
    configure_invokeai(daemon, servers.invokeai_url)
    before = len(servers.invokeai_log()["recalls"])
    seen = run_scenario("drawerStarAppend", id=daemon.ids[INVOKEAI_6], shot=str(OUTPUT / "drawer-append.png"))
    assert seen["starBefore"] == "false" and seen["starAfter"] == "true"
    assert seen["append"]["hidden"] is False and seen["append"]["disabled"] is False
    assert seen["appended"]["ok"], seen["appended"]
    assert "reference images" in seen["appended"]["text"], seen["appended"]
    (recall,) = servers.invokeai_log()["recalls"][before:]
    assert recall["query"].get("append") == "true"
    assert list(recall["body"]) == ["reference_images"], "Append touches nothing else of the generation"
