"""Paths, fixture names and small helpers shared by the browser tests' conftest.py and test_browser.py."""

from __future__ import annotations

import base64
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "extension"
DRIVER = Path(__file__).with_name("driver.mjs")
FIREFOX_DRIVER = Path(__file__).with_name("driver-firefox.mjs")
OUTPUT = REPO / "test-output" / "extension"  # screenshots, one per scenario (git-ignored)
FIXTURE_IMAGES = REPO / "tests" / "fixtures" / "images"
FAKE_INVOKEAI = REPO / "tests" / "daemon" / "fake_invokeai.py"
EXTENSION_ID = "cohnibkfepkdihajabdpbcdbpkfcoaig"  # from the `key` in extension/manifest.json
CHROMIUM = "/usr/bin/chromium"
FIREFOX = "/usr/bin/firefox-esr"  # Debian's ESR, driven over WebDriver BiDi by puppeteer-core
FIREFOX_ADDON_ID = "photomap@photomap.dev"  # extension/manifest.firefox.json browser_specific_settings.gecko.id
ALBUM = "gallery"
# Fixture images the drawer tests know the metadata of (tests/fixtures/images, see shared MANIFEST.md).
INVOKEAI_6 = "invokeai-6.10.0-metadata-graph.png"
INVOKEAI_3_LORAS = "invokeai-3.x-metadata-only-loras.png"
A1111 = "a1111-parameters-01-cropped.png"
NO_METADATA = "plain-nometa.jpg"
ALBUM_FIXTURES = (INVOKEAI_6, INVOKEAI_3_LORAS, A1111, NO_METADATA, "comfyui-01-cropped.png")
STARTUP_S = 180  # the first index loads the model and fits the map (numba compiles): generous on a busy 2-core box
BOARDS = ("PhotoMap Refs", "Sketches")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


def painted_png(path: Path, seed: int) -> None:
    """A small PNG with distinct colour bands, so each file embeds differently."""
    image = Image.new("RGB", (96, 96))
    for y in range(96):
        for x in range(96):
            image.putpixel((x, y), ((x * 3 + seed * 60) % 256, (y * 5 + seed * 35) % 256, (seed * 90 + x + y) % 256))
    image.save(path)


@dataclass
class Daemon:
    port: int
    token: str
    env: dict[str, str]
    album_dir: Path
    ids: dict[str, int] = field(default_factory=dict)  # album file name -> row id

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kwargs)


@dataclass
class Servers:
    invokeai_url: str
    plain_url: str  # a web server that is not InvokeAI; serves ref.png
    boards: dict[str, str]  # board name -> board_id on the fake InvokeAI

    def invokeai_log(self) -> dict[str, Any]:
        return httpx.get(f"{self.invokeai_url}/__test__/requests", timeout=10).json()


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
