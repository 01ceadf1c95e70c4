"""The near-duplicates screen in a real browser, on albums made for it: two copies of one image under two names (plus
a different image) must show as one group side by side; an album without copies shows the empty state."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Callable

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from harness import FIXTURE_IMAGES, OUTPUT, STARTUP_S, Daemon, painted_png, wait_for  # noqa: E402

Run = Callable[..., dict[str, Any]]
COPIED = "plain-nometa.jpg"  # 832 x 1216; the two copies are byte-identical, so their vectors are the same
# The tests' random-weight model finds most pairs alike; this painting scores about 0.59 against the photo, well
# below the screen's loosest threshold (0.90).
PAINTED_SEED = 0


def _add_album(daemon: Daemon, key: str, name: str, folder: Path) -> None:
    created = daemon.call("POST", "/albums", json={"key": key, "display_name": name, "folders": [str(folder)]})
    assert created.status_code == 201, created.text


def _ids_once_committed(daemon: Daemon, key: str, count: int) -> dict[str, int]:
    """File name -> row id once all `count` rows are committed ({} before). The run's map fit after the commit is
    not waited for: the screen needs only the vectors, and the fit costs tens of seconds on a busy 2-core box."""
    page = daemon.call("POST", f"/albums/{key}/search", json={"offset": 0, "limit": 10})
    if page.status_code != 200 or page.json()["total"] != count:
        return {}
    results = page.json()["results"]
    return {Path(daemon.call("GET", f"/images/{key}/{r['id']}").json()["path"]).name: r["id"] for r in results}


def test_near_duplicates_show_side_by_side_open_the_drawer_and_say_when_there_are_none(
    run_scenario: Run, daemon: Daemon, tmp_path: Path
) -> None:
    with_copies, without = tmp_path / "with-copies", tmp_path / "without"
    for folder in (with_copies, without):
        folder.mkdir()
        painted_png(folder / "painted.png", PAINTED_SEED)
    shutil.copy(FIXTURE_IMAGES / COPIED, with_copies / "photo.jpg")
    shutil.copy(FIXTURE_IMAGES / COPIED, with_copies / "photo-copy.jpg")
    shutil.copy(FIXTURE_IMAGES / COPIED, without / "photo.jpg")
    width, height = Image.open(FIXTURE_IMAGES / COPIED).size
    try:
        _add_album(daemon, "dupes", "Copies", with_copies)
        _add_album(daemon, "nodupes", "No copies", without)
        ids = wait_for(lambda: _ids_once_committed(daemon, "dupes", 3), STARTUP_S, "the copies album's rows")
        wait_for(lambda: _ids_once_committed(daemon, "nodupes", 2), STARTUP_S, "the other album's rows")
        assert set(ids) == {"photo.jpg", "photo-copy.jpg", "painted.png"}
        seen = run_scenario("duplicates", album="dupes", otherAlbum="nodupes", shotPrefix=str(OUTPUT / "duplicates"))
    finally:  # the session daemon is shared: leave only the gallery behind (a delete stops a run still going)
        for key in ("dupes", "nodupes"):
            daemon.call("DELETE", f"/albums/{key}")

    copies = sorted([ids["photo.jpg"], ids["photo-copy.jpg"]])
    first = seen["first"]
    assert first["threshold"] == "0.95" and first["shownValue"] == "0.95", "the slider starts at the daemon's default"
    assert [group["ids"] for group in first["groups"]] == [copies], "one group: both copies, not the painted image"
    assert first["summary"] == "1 group of near-duplicates, 2 images, at similarity ≥ 0.95"
    assert first["empty"] is None and first["error"] is None and not first["more"]
    group = seen["captioned"]["groups"][0]
    assert sorted(group["names"]) == ["photo-copy.jpg", "photo.jpg"]
    assert all(f"{width} × {height}" in details for details in group["details"]), group["details"]
    assert "2 images" in group["head"] and "identical" in group["head"], group["head"]
    for width_px in (320, 700):
        overflow = seen[f"overflow{width_px}"]
        assert not overflow["scrollsSideways"] and overflow["out"] == [], f"at {width_px} px: {overflow}"
        assert seen[f"columns{width_px}"]["sameRow"], f"the two copies sit side by side at {width_px} px"
    assert seen["columns320"]["thumbWidth"] >= 100, "thumbnails stay large enough to compare at 320 px"

    names = {image_id: name for name, image_id in ids.items()}
    assert seen["drawer"]["file"] == names[seen["drawer"]["id"]], "a thumbnail opens that image in the drawer"
    assert seen["stepped"]["file"] == names[seen["stepped"]["id"]], "← opens the copy beside it on this screen"
    assert seen["stayedOnScreen"], "walking the drawer keeps the near-duplicates screen"
    strict = seen["strict"]
    assert strict["summary"].endswith("≥ 0.99") and [g["ids"] for g in strict["groups"]] == [copies]

    other = seen["other"]
    assert other["groups"] == [] and other["summary"] == ""
    assert other["empty"] and "No near-duplicates at this similarity" in other["empty"], other
    assert other["lower"] == "Try 0.90", "the empty state offers a looser threshold"
    assert seen["staleGroups"] == 0, "the held answer for the album left behind never reached the screen"
    lowered = seen["lowered"]
    assert lowered["threshold"] == "0.9" and lowered["empty"] and "looks different enough" in lowered["empty"]
