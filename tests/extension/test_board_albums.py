"""Board albums in the real side panel (DESIGN §11, issue 13): the Albums form makes an album from the fake InvokeAI's
boards, the card names them, the daemon's messages show as they are, and a server that goes away shows as "Paused"."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, Callable

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from harness import OUTPUT, Daemon, Servers, free_port, painted_png  # noqa: E402
from test_browser import RED, configure_invokeai  # noqa: E402

Run = Callable[..., dict[str, Any]]
# A board of its own, so uploads other tests make (Use as Ref Image, the context menu) never change its count.
BOARD = "Landscapes"
IMAGES = 2  # each one is fetched and embedded: a few seconds of the test's time


def _board_with_images(servers: Servers, tmp_path: Path) -> str:
    """A new board on the fake InvokeAI holding IMAGES real PNGs, uploaded through its API as InvokeAI's UI would."""
    made = httpx.post(f"{servers.invokeai_url}/api/v1/boards/", params={"board_name": BOARD}, timeout=10)
    assert made.status_code == 201, made.text
    board_id: str = made.json()["board_id"]
    for seed in range(IMAGES):
        png = tmp_path / f"landscape-{seed}.png"
        painted_png(png, 20 + seed)
        uploaded = httpx.post(
            f"{servers.invokeai_url}/api/v1/images/upload",
            params={"image_category": "general", "is_intermediate": "false", "board_id": board_id},
            files={"file": (png.name, io.BytesIO(png.read_bytes()), "image/png")},
            timeout=10,
        )
        assert uploaded.status_code == 201, uploaded.text
    return board_id


def test_a_board_album_is_made_in_the_form_named_on_its_card_and_paused_while_invokeai_is_away(
    run_scenario: Run, daemon: Daemon, servers: Servers, tmp_path: Path
) -> None:
    board_id = _board_with_images(servers, tmp_path)
    before = daemon.call("GET", "/settings/invokeai").json()
    configure_invokeai(daemon, "")  # the form must first say that no server is set
    try:
        seen = run_scenario(
            "boardAlbum",
            key="landscapes",
            name="Landscapes",
            boardId=board_id,
            invokeaiUrl=servers.invokeai_url,
            deadUrl=f"http://127.0.0.1:{free_port()}",
            expectedCount=f"{IMAGES} images indexed",
            shotPrefix=str(OUTPUT / "board-album"),
        )
    finally:  # the other browser tests share this daemon and this server
        daemon.call("DELETE", "/albums/landscapes")
        daemon.call("PUT", "/settings/invokeai", json={"url": before["url"]})

    # no URL in Settings: the daemon's message, where to set it, and the choices that need no server
    assert seen["noUrl"]["status"] == "Set the InvokeAI Backend URL in Settings first"
    assert "Open Settings" in seen["noUrl"]["help"] and "Try again" in seen["noUrl"]["help"]
    assert seen["noUrl"]["offered"] == ["all", "none"]
    assert not seen["noUrl"]["foldersShown"], "a board album has no folders"
    assert seen["probe"]["text"].startswith("Connected to InvokeAI"), seen["probe"]
    # with the fake server set, the same form lists its boards by name, Uncategorized first
    assert seen["choices"][:2] == ["All boards (and Uncategorized)", "Uncategorized"]
    assert {"PhotoMap Refs", "Sketches", BOARD} <= set(seen["choices"]), seen["choices"]
    assert seen["statusAfterUrl"] == ""
    # nothing ticked: the daemon's 422 message under the form, as it is
    assert seen["nothingTicked"] == 'A board album needs at least one board: a board id, "none" for Uncategorized, or "all"'
    assert seen["othersDisabledUnderAll"], "All is sent alone: the single boards can't be ticked beside it"
    assert seen["formGone"]
    # the first sync ran on create (the session daemon runs `serve --no-watch`: no poller, and none needed)
    assert seen["indexed"]["text"] == f"Done: {IMAGES} new", seen["indexed"]
    assert seen["card"] == {"boards": f"InvokeAI board: {BOARD}", "count": f"{IMAGES} images indexed", "folderList": False}
    # Edit shows the chosen boards, no folders and no source switch; adding Uncategorized re-syncs
    assert seen["edit"] == {"foldersShown": False, "sourceRadios": 0, "ticked": [board_id]}
    assert seen["edited"]["boards"] == f"InvokeAI boards: {BOARD}, Uncategorized"
    assert seen["edited"]["progress"]["state"] == "done"
    # the server away: "Paused" with the daemon's message, not a red failure; a later run clears it
    assert (seen["deadSaved"], seen["runAsked"]) == (200, 202)
    assert seen["paused"]["text"] == "Paused: Could not reach backend (PhotoMap syncs again once InvokeAI answers)"
    assert seen["paused"]["colour"] != RED
    assert seen["barHiddenWhilePaused"]
    assert seen["resumed"]["text"].startswith(("Nothing new to index", "Done:")), seen["resumed"]
