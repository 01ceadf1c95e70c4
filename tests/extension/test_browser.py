"""The extension in a real browser: Debian's chromium (headless=new) with the unpacked extension, the real native host,
a real daemon with an indexed album, the fake InvokeAI. Screenshots land in test-output/extension/."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from harness import (  # noqa: E402
    A1111,
    ALBUM,
    BOARDS,
    INVOKEAI_3_LORAS,
    INVOKEAI_6,
    NO_METADATA,
    OUTPUT,
    Daemon,
    Servers,
    data_url,
    free_port,
    painted_png,
    wait_for,
)

Run = Callable[..., dict[str, Any]]
RED = "rgb(255, 92, 92)"  # --bad in sidepanel.css

# From shared/fixtures/MANIFEST.md (prompts are the files' first 80 characters).
INVOKEAI_6_PROMPT = "general, masterpiece, best quality, amazing quality, \n1girl, solo, hatsune miku,"
INVOKEAI_6_NEGATIVE = "bad quality, worst quality, worst detail, sketch, censor, \n"


def configure_invokeai(daemon: Daemon, url: str, board_id: str | None = None) -> None:
    saved = daemon.call("PUT", "/settings/invokeai", json={"url": url, "username": "", "password": ""})
    assert saved.status_code == 200, saved.text
    chosen = daemon.call("PUT", "/invokeai/board", json={"board_id": board_id})
    assert chosen.status_code == 200, chosen.text


def test_panel_connects_through_native_host_and_survives_worker_and_token_changes(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("connect")
    assert seen["state"] == "connected"
    assert seen["port"] == daemon.port and seen["hasToken"]
    assert ALBUM in seen["albums"]
    assert seen["afterRestart"] == "connected"
    assert seen["recoveredToken"], "after a 401 the panel got the daemon's real token again"
    assert "connected" in seen["dot"]


def test_panel_without_native_host_names_the_install_command(run_scenario: Run) -> None:
    seen = run_scenario("notInstalled", with_native_host=False)
    assert seen["state"] == "not_installed"
    assert "not installed" in seen["message"]
    assert seen["command"] == "photomapd install"


def test_a_daemon_that_cannot_start_shows_its_cause_and_exact_command_within_seconds(
    run_scenario: Run, daemon: Daemon, tmp_path: Path
) -> None:
    broken = {**daemon.env}
    for name in ("config", "data", "cache"):
        folder = tmp_path / f"broken-{name}"
        folder.mkdir()
        broken[f"PHOTOMAP_{name.upper()}_DIR"] = str(folder)
    (tmp_path / "broken-config" / "config.json").write_text("{not json")
    seen = run_scenario("failedStart", host_env=broken)
    assert seen["state"] == "not_running"
    assert "config.json is invalid" in seen["message"], seen["message"]
    assert "-m photomapd serve" in seen["command"], "the host's exact command, not a bare `photomapd serve`"
    assert seen["elapsedMs"] < 15_000, f"the cause took {seen['elapsedMs']} ms to show"


def test_invokeai_tab_gets_the_panel_and_the_toolbar_opens_it_anywhere(run_scenario: Run, servers: Servers) -> None:
    seen = run_scenario("invokeaiTab", invokeaiUrl=servers.invokeai_url + "/")
    assert seen["options"]["enabled"] is True
    assert seen["options"]["path"].endswith("sidepanel/sidepanel.html")
    assert seen["behavior"]["openPanelOnActionClick"] is True


def test_more_like_this_and_a_dropped_image_search_by_image(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("moreLikeThis", id=daemon.ids[INVOKEAI_6])
    assert seen["first"] == str(daemon.ids[INVOKEAI_6])
    assert seen["label"] == f"Like {INVOKEAI_6}", "the query is named by its file, not a row id"
    dropped = daemon.album_dir / "painted-2.png"
    b64 = base64.b64encode(dropped.read_bytes()).decode()
    seen = run_scenario("dropImage", b64=b64, name="query.png", expectFirst=daemon.ids["painted-2.png"])
    assert seen["label"] == "query.png"


def test_search_fills_grid_with_thumbnails_fetched_without_token_in_urls(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("search", text="a colourful picture", minResults=len(daemon.ids))
    assert sorted(seen["ids"]) == sorted(daemon.ids.values())
    assert all(src.startswith("blob:chrome-extension://") for src in seen["srcs"])
    assert not any(daemon.token in url for url in seen["urls"]), "the bearer token leaked into a URL"
    assert any("/thumb" in url for url in seen["urls"])
    assert seen["count"].startswith(f"{len(daemon.ids)} images")
    assert seen["selected"] == seen["ids"][1], "ArrowRight selects the first image, the next one moves to the second"


def test_grid_of_100k_results_keeps_the_dom_and_requests_small(run_scenario: Run, daemon: Daemon) -> None:
    thumb = daemon.album_dir / "painted-1.png"
    total = 100_000
    seen = run_scenario("bigGrid", total=total, thumbB64=base64.b64encode(thumb.read_bytes()).decode())
    assert seen["scrollHeight"] > 1_000_000, "the scroll area spans every result"
    assert seen["cells"] < 200, f"{seen['cells']} cells in the DOM for {total} results"
    assert seen["maxIndex"] == total - 1, "End jumps to the last result"
    offsets = seen["offsets"]
    assert len(offsets) <= 8 and 0 in offsets, offsets
    assert any(abs(offset - total // 2) <= 200 for offset in offsets), "the middle page was fetched on scroll"
    assert max(offsets) == (total - 1) // 200 * 200, "the last page (of 200, grid.js PAGE_SIZE) was fetched for End"
    assert seen["thumbs"] < 300, "only thumbnails near the viewport were fetched"


def test_drawer_shows_the_fixture_metadata(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("drawer", id=daemon.ids[INVOKEAI_6])
    fields = seen["fields"]
    assert fields["positive_prompt"].startswith(INVOKEAI_6_PROMPT)
    assert fields["negative_prompt"].startswith(INVOKEAI_6_NEGATIVE)
    assert fields["model"] == "waiIllustriousSDXL_v160"
    assert fields["seed"] == "1860920704"
    assert "created_at" in fields
    assert fields["file_name"] == INVOKEAI_6 and fields["path"].endswith(INVOKEAI_6)
    assert fields["generator"].startswith("InvokeAI"), fields["generator"]
    assert " × " in fields["dimensions"] and fields["size"].endswith(("KB", "MB"))
    assert {"steps", "cfg_scale", "scheduler"} <= set(fields), "parsed settings are shown, not only in the raw JSON"
    no_copy = {"size", "dimensions", "generator"}
    assert set(seen["copyButtons"]) == set(fields) - no_copy, "every field worth copying has its copy icon"

    loras = run_scenario("drawer", id=daemon.ids[INVOKEAI_3_LORAS])["fields"]
    assert loras["positive_prompt"] == "Anime version of Rami Malek as a martial artist"
    assert loras["negative_prompt"] == "<bad_wax>"
    assert loras["model"] == "CCXL-One_vB5b"
    assert loras["seed"] == "2863850868"
    assert loras["loras"].startswith("CC-Dream-Shaper_vBeta1 (")


def test_copy_icon_puts_the_value_on_the_clipboard(run_scenario: Run, daemon: Daemon, servers: Servers) -> None:
    seen = run_scenario("copy", id=daemon.ids[INVOKEAI_6], field="positive_prompt", readerUrl=servers.plain_url + "/")
    assert seen["clipboard"] == seen["shown"]
    assert seen["clipboard"].startswith(INVOKEAI_6_PROMPT)


def test_view_full_metadata_shows_every_raw_chunk(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("fullMetadata", id=daemon.ids[INVOKEAI_6])
    assert seen["hiddenBefore"] is True
    text = seen["text"]
    assert '"invokeai_metadata"' in text and '"invokeai_graph"' in text
    assert '"generation_mode": "sdxl_txt2img"' in text  # a field the drawer's summary does not show
    assert "sdxl_graph:zTYussRcEP" in text


def test_recall_and_remix_send_the_right_bodies_to_invokeai(run_scenario: Run, daemon: Daemon, servers: Servers) -> None:
    configure_invokeai(daemon, servers.invokeai_url)
    before = len(servers.invokeai_log()["recalls"])
    seen = run_scenario("recallRemix", id=daemon.ids[INVOKEAI_6])
    assert seen["recall"]["ok"] and "press Invoke" in seen["recall"]["text"]
    assert seen["remix"]["ok"] and "press Invoke" in seen["remix"]["text"]
    recall, remix = servers.invokeai_log()["recalls"][before:]
    assert recall["body"]["seed"] == 1860920704
    assert recall["body"]["positive_prompt"].startswith(INVOKEAI_6_PROMPT)
    assert recall["body"]["model"] == "waiIllustriousSDXL_v160"
    assert recall["query"].get("strict") == "true"
    assert "seed" not in remix["body"]
    assert remix["body"]["positive_prompt"] == recall["body"]["positive_prompt"]


@pytest.mark.parametrize("name", [A1111, NO_METADATA])
def test_recall_and_remix_are_greyed_for_images_without_invokeai_metadata(
    run_scenario: Run, daemon: Daemon, servers: Servers, name: str
) -> None:
    configure_invokeai(daemon, servers.invokeai_url, servers.boards["Sketches"])
    seen = run_scenario("greyed", id=daemon.ids[name])
    for action in ("recall", "remix"):
        assert seen[action]["disabled"] is True
        assert "InvokeAI generation metadata" in seen[action]["title"]
        if name == A1111:
            assert "A1111" in seen[action]["title"], "the tooltip names the generator the image was made with"
    assert seen["ref"]["disabled"] is False
    assert seen["refOutcome"]["ok"] and "Sketches" in seen["refOutcome"]["text"]


def test_the_four_url_problems_show_red_under_the_field(run_scenario: Run, daemon: Daemon, servers: Servers) -> None:
    urls = ["ftp://localhost:9090", "http://", f"http://127.0.0.1:{free_port()}", servers.plain_url]
    seen = run_scenario("urlMessages", urls=urls)
    messages = [hint["text"] for hint in seen["hints"]]
    assert messages == [
        "InvokeAI URL must use http:// or https://",
        "InvokeAI URL must include a host",
        "Could not reach backend",
        "Server is reachable but doesn't appear to be an InvokeAI backend",
    ]
    for hint in seen["hints"]:
        assert hint["isError"] and hint["color"] == RED and "⚠" in hint["icon"]
        assert hint["rowsVisible"] is False
    saved = daemon.call("GET", "/settings/invokeai").json()
    assert saved["url"] == servers.plain_url, "the URL is saved as typed even when the probe fails"


def test_good_probe_reveals_username_password_and_boards(run_scenario: Run, daemon: Daemon, servers: Servers) -> None:
    configure_invokeai(daemon, "")
    saved = daemon.call("PUT", "/settings/invokeai", json={"url": "", "password": "hunter2"})
    assert saved.json()["password_set"] is True
    seen = run_scenario("rowsAfterProbe", url=servers.invokeai_url + "/")
    assert seen["before"] is True
    assert seen["hint"]["rowsVisible"] and not seen["hint"]["isError"]
    # the fake's own boards, Uncategorized first (other tests may add boards of their own to this shared server)
    boards = [b["text"] for b in seen["boards"]]
    assert boards[0] == "Uncategorized" and [name for name in boards if name in BOARDS] == list(BOARDS), boards
    assert seen["password"]["value"] == "" and seen["password"]["placeholder"] == "set"
    assert daemon.call("GET", "/settings/invokeai").json()["url"] == servers.invokeai_url + "/"


def test_board_choice_persists(run_scenario: Run, daemon: Daemon, servers: Servers) -> None:
    configure_invokeai(daemon, servers.invokeai_url)
    daemon.call("PUT", "/settings/invokeai", json={"url": servers.invokeai_url, "attach_ref_images": False})
    seen = run_scenario("boardPersists", board="PhotoMap Refs")
    assert seen["chosen"] == "PhotoMap Refs" and seen["attach"] is True
    saved = daemon.call("GET", "/settings/invokeai").json()
    assert saved["board_id"] == servers.boards["PhotoMap Refs"] and saved["attach_ref_images"] is True
    daemon.call("PUT", "/settings/invokeai", json={"url": servers.invokeai_url, "attach_ref_images": False})


def test_album_add_then_update_index_reaches_100_percent(run_scenario: Run, daemon: Daemon, tmp_path: Path) -> None:
    folder = tmp_path / "new-album"
    folder.mkdir()
    for seed in range(3):
        painted_png(folder / f"new-{seed}.png", seed + 10)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    seen = run_scenario("albumProgress", key="fresh", name="Fresh Album", folder=str(folder))
    # the second run found nothing new, and says so in words (not "Done: 0/0 images — 100 %")
    assert seen["progress"].startswith("Nothing new to index"), seen["progress"]
    assert seen["bar"] == 100
    assert any("broken.png" in line for line in seen["skipped"]), seen["skipped"]
    assert "fresh" in seen["albums"]
    assert seen["count"] == "3 images indexed"
    assert seen["renamed"].startswith("Fresh Album (renamed)")
    # then renamed through Edit, and deleted through the inline confirmation: the album goes, its files stay
    assert "Images stay on disk" in seen["confirmText"]
    assert "fresh" not in seen["albumsAfterDelete"]
    assert "fresh" not in {album["key"] for album in daemon.call("GET", "/albums").json()}
    assert sorted(p.name for p in folder.iterdir()) == ["broken.png", "new-0.png", "new-1.png", "new-2.png"]


def test_map_renders_the_album_points(run_scenario: Run, daemon: Daemon) -> None:
    wait_for(lambda: daemon.call("GET", f"/albums/{ALBUM}/map").content[:4] == b"PMAP", 60, "the map payload")
    shot = OUTPUT / "map-canvas.png"
    seen = run_scenario("map", mapShot=str(shot), generator="invokeai", generatorCount=2)
    assert f"{len(daemon.ids)} images" in seen["status"]
    assert "layout updated" in seen["relayout"]
    job = daemon.call("GET", f"/albums/{ALBUM}/map/relayout").json()
    assert job["state"] == "done" and job["layout_version"] >= 1
    assert seen["filtered"].startswith("2 images"), "the map shows only the two InvokeAI images when filtered"
    assert seen["hovered"] == seen["expected"], "hovering a point previews that image; clicking opened the drawer"
    names = {image_id: name for name, image_id in daemon.ids.items()}
    assert seen["tooltipName"] == names[seen["expected"]], "the tooltip names the file, not a row id"
    assert seen["highlighted"] > 0, "the search's hits are highlighted on the map"
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    painted = int((np.abs(pixels - background).sum(axis=1) > 60).sum())
    assert painted >= 20, f"only {painted} non-background pixels: the map drew no points"


def test_context_menu_sends_data_url_bytes_and_http_urls_to_the_chosen_board(
    run_scenario: Run, daemon: Daemon, servers: Servers, tmp_path: Path
) -> None:
    configure_invokeai(daemon, servers.invokeai_url, servers.boards["Sketches"])
    image = tmp_path / "menu.png"
    painted_png(image, 3)
    # An image shown by the InvokeAI tab itself: its host is the configured InvokeAI, the one local address allowed.
    with image.open("rb") as handle:
        uploaded = httpx.post(
            f"{servers.invokeai_url}/api/v1/images/upload",
            params={"image_category": "user", "is_intermediate": "false"},
            files={"file": ("shown.png", handle, "image/png")},
            timeout=10,
        ).json()
    shown = f"{servers.invokeai_url}/api/v1/images/i/{uploaded['image_name']}/full"
    before = len(servers.invokeai_log()["requests"])
    seen = run_scenario("contextMenu", srcUrls=[data_url(image), shown, f"{servers.plain_url}/ref.png"])
    sent, fetched, local = seen["results"]
    for result in (sent, fetched):
        assert result["ok"], result["message"]
        assert result["board_name"] == "Sketches"
    # Any other address on this machine or a private network is refused: a web page can't aim the daemon at them.
    assert not local["ok"] and "private network" in local["message"], local
    uploads = [r for r in servers.invokeai_log()["requests"][before:] if r["path"] == "/api/v1/images/upload"]
    assert len(uploads) == 2
    assert all(r["query"].get("board_id") == servers.boards["Sketches"] for r in uploads)
    assert uploads[0]["upload"]["size"] == image.stat().st_size


def test_every_view_fits_320_420_and_700_px_without_sideways_scrolling(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("layout", widths=[320, 420, 700], id=daemon.ids[INVOKEAI_6], shotPrefix=str(OUTPUT / "layout"))
    assert set(seen["widths"]) == {"320", "420", "700"}
    assert seen["light"] == "rgb(246, 247, 249)" and seen["dark"] == "rgb(22, 24, 29)", "light theme when preferred"
    for width, at in seen["widths"].items():
        assert at["tabsRight"] <= at["width"], f"at {width} px a tab or the status dot is off-screen"
        for view, found in at["views"].items():
            assert not found["scrollsSideways"], f"the page scrolls sideways at {width} px in {view}"
            assert found["out"] == [], f"at {width} px, {view}: {found['out']}"


def _noise_pngs(folder: Path, count: int) -> None:
    """`count` small distinct PNGs, fast (numpy noise rather than painted bands)."""
    rng = np.random.default_rng(15)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / f"noise-{i:03}.png")


def test_a_new_album_fills_the_grid_by_itself_cancels_and_rebuilds_behind_a_confirmation(
    run_scenario: Run, daemon: Daemon, tmp_path: Path
) -> None:
    folder = tmp_path / "first-run"
    folder.mkdir()
    count = 160  # five commits of 32: time to press Cancel after the first one shows
    _noise_pngs(folder, count)
    seen = run_scenario(
        "indexRun", key="firstrun", name="First Run", folder=str(folder), count=count, shotPrefix=str(OUTPUT / "index-run")
    )
    during = seen["duringRun"]["buttons"]
    assert during["update"]["disabled"] and during["rebuild"]["disabled"], "Update/Rebuild are off during a run"
    assert not during["cancel"]["hidden"], "Cancel shows during a run"
    assert "loading_model" not in seen["duringRun"]["text"] and "0/0" not in seen["duringRun"]["text"]
    assert seen["midRun"]["cells"] > 0, "committed images appear in the grid before the run ends, without Search"
    texts = seen["texts"]
    assert not any("press Update Index first" in text for text in texts), texts
    assert any(text.startswith("#album-progress Indexing: ") for text in texts), texts
    cancelled = seen["cancelled"]
    assert cancelled["text"].startswith("Cancelled") and "kept" in cancelled["text"], cancelled
    assert not cancelled["buttons"]["update"]["disabled"] and cancelled["buttons"]["cancel"]["hidden"]
    kept = int(cancelled["count"].split()[0])
    assert 0 < kept < count, f"the batches committed before Cancel stay ({cancelled['count']})"
    assert "current index stays searchable" in seen["question"]
    assert not seen["afterNo"].startswith("Starting"), "answering Cancel to the question starts nothing"
    kept_text = f"{kept} image{'s' if kept != 1 else ''}"
    assert seen["duringRebuild"]["count"] == kept_text, "the old index stays on screen during a rebuild"
    assert seen["duringRebuild"]["cells"] > 0
    assert seen["afterRebuildCancel"] == kept_text, "a cancelled rebuild keeps the old index"
    assert daemon.call("DELETE", "/albums/firstrun").status_code == 204


def test_deleting_the_last_album_leaves_empty_views_that_say_what_to_do(run_scenario: Run, daemon: Daemon) -> None:
    try:
        seen = run_scenario("lastAlbumDeleted", shotPrefix=str(OUTPUT / "no-albums"))
    finally:  # the other tests need the gallery back (new row ids); a scenario that failed early may have left it
        if all(album["key"] != ALBUM for album in daemon.call("GET", "/albums").json()):
            created = daemon.call("POST", "/albums", json={"key": ALBUM, "display_name": "Gallery", "folders": [str(daemon.album_dir)]})
            assert created.status_code == 201, created.text
            wait_for(lambda: _indexed(daemon), 180, "the gallery's index")
            daemon.ids = _ids(daemon)
    assert "No albums yet" in seen["albumsNote"]
    assert seen["grid"]["cells"] == 0, "no thumbnails of a deleted album stay in the grid"
    assert "No albums yet" in seen["grid"]["text"] and seen["grid"]["action"] == "Add an album"
    assert seen["map"]["shown"] and "No albums yet" in seen["map"]["text"] and seen["map"]["relayoutDisabled"]
    assert seen["formOpened"], "the empty grid's button opens the Add Album form"


def _indexed(daemon: Daemon) -> bool:
    album = next(a for a in daemon.call("GET", "/albums").json() if a["key"] == ALBUM)
    return bool(album["progress"]["state"] == "done")


def _ids(daemon: Daemon) -> dict[str, int]:
    page = daemon.call("POST", f"/albums/{ALBUM}/search", json={"offset": 0, "limit": 100}).json()
    return {Path(daemon.call("GET", f"/images/{ALBUM}/{r['id']}").json()["path"]).name: r["id"] for r in page["results"]}


def test_filters_pick_lists_chips_errors_sort_and_scores(run_scenario: Run, daemon: Daemon) -> None:
    total = len(daemon.ids)
    seen = run_scenario(
        "filtersAndScores", modelPart="waiillustrious", keyword="hatsune", total=total, shotPrefix=str(OUTPUT / "filters")
    )
    assert "waiIllustriousSDXL_v160" in seen["models"], "the album's own models are offered"
    assert "unknown" in seen["generators"]
    assert seen["sortNoQuery"] == {"value": "newest", "bestDisabled": True}
    assert seen["model"]["ids"] == [daemon.ids[INVOKEAI_6]], "a lower-case part of the model name finds it"
    assert seen["chipsFolded"] == ["Model: waiillustrious ✕"] and "(1 active)" in seen["summary"]
    assert seen["afterClear"] == {"count": f"{total} images", "chipsHidden": True}
    facets = daemon.call("GET", f"/albums/{ALBUM}/facets").json()
    unknown = next(g["count"] for g in facets["generators"] if g["value"] == "unknown")
    assert unknown > 0 and seen["unknown"] == f"{unknown} image{'s' if unknown != 1 else ''}"
    assert seen["seedError"] == {"text": "Seed must be a whole number, e.g. 1234567890", "invalid": True}
    assert seen["keyword"] == [daemon.ids[INVOKEAI_6]]
    ranked = seen["ranked"]
    assert ranked["sort"] == "best" and ranked["scores"], "a text query ranks best first and shows scores"
    assert ranked["scores"] == sorted(ranked["scores"], reverse=True)
    assert ranked["count"].endswith(f"of {total}") == ranked["showAll"], ranked
    assert seen["minScoreAll"] == f"{total} images"


def test_lightbox_shows_the_full_file_walks_results_and_closes_with_esc(run_scenario: Run, daemon: Daemon) -> None:
    seen = run_scenario("lightbox", id=daemon.ids[INVOKEAI_6], shot=str(OUTPUT / "lightbox-420px.png"))
    with Image.open(daemon.album_dir / INVOKEAI_6) as image:
        assert seen["natural"] == list(image.size), "the lightbox shows the file itself, not the 256 px thumbnail"
    assert seen["previewNatural"] == list(image.size), "the drawer preview is the full file too"
    assert seen["caption"].startswith(INVOKEAI_6)
    assert seen["nextName"] != INVOKEAI_6 and seen["drawerName"] == seen["nextName"], "→ moved to the next result"
    assert seen["afterEsc"] == {"lightbox": True, "drawer": False}, "Esc closes the lightbox, not the drawer"


def test_settings_clear_stale_errors_hint_single_user_and_grey_recall_on_old_servers(
    run_scenario: Run, daemon: Daemon, servers: Servers, tmp_path: Path
) -> None:
    import subprocess

    from harness import FAKE_INVOKEAI

    # No upload board chosen by an earlier test: a board of the other server would (rightly) be reported as gone here.
    configure_invokeai(daemon, servers.invokeai_url)
    port = free_port()
    log = (tmp_path / "old-fake.log").open("wb")
    old = subprocess.Popen(
        [sys.executable, str(FAKE_INVOKEAI), "--port", str(port), "--multiuser", "--version", "6.10.0", "--board", "Old Board"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/api/v1/app/version", timeout=2).status_code == 200, 30, "the old fake InvokeAI")
        seen = run_scenario(
            "settingsStates",
            multiUrl=url,
            singleUrl=servers.invokeai_url,
            user="alice@example.com",
            wrongPassword="wrong",
            rightPassword="correct horse battery staple",
            board="Old Board",
            id=daemon.ids[INVOKEAI_6],
            shotPrefix=str(OUTPUT / "settings"),
        )
    finally:
        old.terminate()
        old.wait(timeout=15)
        log.close()
        configure_invokeai(daemon, servers.invokeai_url)
    assert seen["multi"]["rowsVisible"] and "user accounts" in seen["multi"]["account"]
    assert any("Recall needs InvokeAI 6.12" in line for line in seen["multi"]["actions"]), seen["multi"]["actions"]
    assert "rejected" in seen["rejected"], seen["rejected"]
    assert seen["afterRight"]["isError"] is False and "rejected" not in seen["afterRight"]["text"], seen["afterRight"]
    for action in ("recall", "remix"):
        assert seen["drawer"][action]["disabled"] and "6.12" in seen["drawer"][action]["title"], seen["drawer"]
    assert seen["drawer"]["ref"]["disabled"] is False
    assert "leave username and password blank" in seen["single"]["account"]
    assert seen["single"]["actions"] == []
    assert seen["unconfigured"]["ref"]["disabled"] and "Settings" in seen["unconfigured"]["ref"]["title"]
    assert "Settings" in seen["unconfigured"]["hint"]
