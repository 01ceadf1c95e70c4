"""The Firefox build in a real Firefox: Debian's firefox-esr, headless, over WebDriver BiDi (puppeteer-core), the add-on
installed as a temporary add-on, the real native host found through a temp HOME. The same scenarios as the Chromium
tests (scenarios.mjs), run in one browser launch. Screenshots land in test-output/extension/firefox-*.png."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))

from harness import ALBUM, INVOKEAI_6, Daemon, Servers, data_url, free_port, painted_png  # noqa: E402
from test_browser import INVOKEAI_6_PROMPT, RED, configure_invokeai  # noqa: E402

RunGroup = Callable[..., dict[str, Any]]


def test_firefox_connects_searches_opens_the_drawer_sends_ref_images_and_probes_urls(
    run_firefox: RunGroup, daemon: Daemon, servers: Servers, tmp_path: Path
) -> None:
    configure_invokeai(daemon, servers.invokeai_url, servers.boards["Sketches"])
    image = tmp_path / "menu.png"
    painted_png(image, 5)
    before = len(servers.invokeai_log()["requests"])
    urls = ["ftp://localhost:9090", f"http://127.0.0.1:{free_port()}", servers.plain_url]
    seen = run_firefox(
        [
            ("connect", {}),
            ("search", {"text": "a colourful picture", "minResults": len(daemon.ids)}),
            ("drawer", {"id": daemon.ids[INVOKEAI_6]}),
            ("contextMenu", {"srcUrls": [data_url(image), f"{servers.plain_url}/ref.png"]}),
            ("urlMessages", {"urls": urls}),  # last: it leaves the saved URL pointing at the plain server
        ]
    )

    connect = seen["connect"]
    assert connect["state"] == "connected" and connect["port"] == daemon.port and connect["hasToken"]
    assert ALBUM in connect["albums"]
    assert connect["afterRestart"] == "connected"
    assert connect["recoveredToken"], "after a 401 the panel got the daemon's real token again"

    search = seen["search"]
    assert sorted(search["ids"]) == sorted(daemon.ids.values())
    assert all(src.startswith("blob:moz-extension://") for src in search["srcs"])
    assert not any(daemon.token in url for url in search["urls"]), "the bearer token leaked into a URL"
    assert search["count"].startswith(f"{len(daemon.ids)} images")
    assert search["selected"] == search["ids"][1]

    drawer = seen["drawer"]["fields"]
    assert drawer["positive_prompt"].startswith(INVOKEAI_6_PROMPT)
    assert drawer["model"] == "waiIllustriousSDXL_v160" and drawer["seed"] == "1860920704"

    sent, local = seen["contextMenu"]["results"]
    assert sent["ok"] and sent["board_name"] == "Sketches", sent
    assert not local["ok"] and "private network" in local["message"], local
    uploads = [r for r in servers.invokeai_log()["requests"][before:] if r["path"] == "/api/v1/images/upload"]
    assert len(uploads) == 1 and uploads[0]["upload"]["size"] == image.stat().st_size

    hints = seen["urlMessages"]["hints"]
    assert [hint["text"] for hint in hints] == [
        "InvokeAI URL must use http:// or https://",
        "Could not reach backend",
        "Server is reachable but doesn't appear to be an InvokeAI backend",
    ]
    for hint in hints:
        assert hint["isError"] and hint["color"] == RED and "⚠" in hint["icon"]
