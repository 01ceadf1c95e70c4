"""The map's lasso, its selection rings and its clickable cluster labels in a real Chromium (scenarios-map.mjs).
One browser run covers them all: a launch costs seconds on a busy CI box."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from harness import ALBUM, OUTPUT, Daemon, wait_for  # noqa: E402

Run = Callable[..., dict[str, Any]]
SELECTED_RGB = np.array([255, 196, 0])  # map.js's SELECTED_COLOR: the ring around a selected point


def test_lasso_selects_what_it_encloses_and_a_label_filters_the_grid(run_scenario: Run, daemon: Daemon) -> None:
    wait_for(lambda: daemon.call("GET", f"/albums/{ALBUM}/map").content[:4] == b"PMAP", 60, "the map payload")
    lasso_shot, selected_shot = OUTPUT / "map-lasso.png", OUTPUT / "map-lasso-selected.png"
    seen = run_scenario("mapLasso", lassoShot=str(lasso_shot), selectedShot=str(selected_shot))
    everything = len(daemon.ids)
    assert seen["count"] == everything

    # the Lasso button: a loop around the most isolated point selects that point alone; the batch bar counts it
    assert seen["pressed"] == "true"
    assert seen["one"]["lassoed"] == "1" and seen["one"]["selected"] == "1"
    assert seen["one"]["bar"] == "1 selected"
    # a click that wobbles a pixel or two is not a lasso: it opened the drawer and left the selection alone
    assert seen["afterClick"]["selected"] == "1" and seen["afterClick"]["lassoed"] == "1"
    # Esc mid-lasso: the drawn loop was showing, then went, and nothing was selected by it
    assert seen["overlayWhileDrawing"] is True and seen["overlayAfterEsc"] is False
    assert seen["afterEsc"]["lassoed"] == "1" and seen["afterEsc"]["selected"] == "1"

    # Shift+drag outside lasso mode selects all (a fresh lasso replaces the selection) and does not pan the map
    assert seen["released"] == "false"
    assert seen["all"]["lassoed"] == str(everything) and seen["all"]["selected"] == str(everything)
    assert seen["all"]["bar"] == f"{everything} selected"
    assert seen["hoveredAfter"] == seen["target"], "the point is still where it was: the lasso did not pan the view"
    assert seen["tooltipAfterPan"] != seen["target"], "a plain drag still pans the view"

    # the screenshot taken mid-drag shows the loop (amber dashes) around the map. Its 1.5 px stroke lands on pixel
    # edges wherever the layout puts it, so its pixels are amber blended with the map, never the exact colour: count
    # amber-ish ones: the loop makes 2,300-2,800, rings alone ~75 a point (all 9 ringed: ~690).
    with Image.open(lasso_shot) as image:
        red, green, blue = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3).T
    amberish = int(((red > 150) & (green > red * 0.6) & (green < red * 0.9) & (blue < 60)).sum())
    assert amberish >= 1200, f"only {amberish} amber pixels: no lasso drawn in {lasso_shot}"
    # and the selected points are ringed in amber (one ring of 2 px at radius 7 is ~80 pixels)
    with Image.open(selected_shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    ringed = int((np.abs(pixels - SELECTED_RGB).sum(axis=1) < 90).sum())
    assert ringed >= 20 * everything, f"only {ringed} amber pixels for {everything} selected points"

    # a cluster label is a button: the pointer cursor, and a click filters the grid to its cluster with a chip
    assert seen["labels"], "the test album's map has no labelled cluster to click"
    assert seen["labelCursor"] == "pointer"
    # every cluster the label stands for (one, unless the same words label several)
    assert seen["clicked"]["cluster"] == ",".join(map(str, seen["clicked"]["members"])), seen["clicked"]
    # and from the keyboard: a list of every label (with its image count) in the tab order does the same
    options = seen["clusterList"]["options"]
    assert seen["clusterList"]["tabbable"] and options[0] == f"Clusters ({len(seen['labels'])})", options
    assert all(option.endswith(")") for option in options[1:]) and len(options) == len(seen["labels"]) + 1, options
    assert seen["picked"]["cluster"] == ",".join(map(str, seen["picked"]["members"])), seen["picked"]
    scope = [chip["text"] for chip in seen["chips"] if chip["field"] == "scope"]
    assert len(scope) == 1 and scope[0].startswith(f"Cluster: {seen['clicked']['label']}"), seen["chips"]
