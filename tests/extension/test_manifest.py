"""The manifests promise what the issue asks: the pinned id, the permissions, 127.0.0.1 only, a strict CSP, and a
Firefox build that web-ext lint accepts."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from photomapd.config import DEFAULT_EXTENSION_ID

EXTENSION = Path(__file__).resolve().parents[2] / "extension"


def load(name: str) -> dict:
    return json.loads((EXTENSION / name).read_text(encoding="utf-8"))


def extension_id_from_key(key: str) -> str:
    """Chrome's rule: the first 128 bits of SHA-256 over the DER public key, each hex digit 0-f written as a-p."""
    digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
    return "".join(chr(ord("a") + int(digit, 16)) for digit in digest)


def test_manifest_key_pins_the_id_the_daemon_and_native_host_allow() -> None:
    assert extension_id_from_key(load("manifest.json")["key"]) == DEFAULT_EXTENSION_ID


def test_chrome_manifest_declares_panel_worker_menu_native_messaging_and_loopback_only() -> None:
    manifest = load("manifest.json")
    assert manifest["manifest_version"] == 3
    assert manifest["side_panel"]["default_path"] == "sidepanel/sidepanel.html"
    assert manifest["background"] == {"service_worker": "service-worker/service-worker.js"}
    assert {"sidePanel", "contextMenus", "nativeMessaging", "storage"} <= set(manifest["permissions"])
    assert manifest["host_permissions"] == ["http://127.0.0.1/*"]
    csp = manifest["content_security_policy"]["extension_pages"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp and "wasm-unsafe-eval" not in csp


def test_firefox_manifest_uses_the_sidebar_and_the_gecko_id() -> None:
    manifest = load("manifest.firefox.json")
    assert manifest["browser_specific_settings"]["gecko"]["id"] == "photomap@photomap.dev"
    assert manifest["sidebar_action"]["default_panel"] == "sidepanel/sidepanel.html"
    assert "side_panel" not in manifest and "sidePanel" not in manifest["permissions"]
    assert manifest["host_permissions"] == load("manifest.json")["host_permissions"]


def test_firefox_build_passes_web_ext_lint() -> None:
    if shutil.which("node") is None or not (EXTENSION / "node_modules" / "web-ext").is_dir():
        pytest.skip("needs node and `npm ci` in extension/ (./test.sh sets them up)")
    subprocess.run(["node", "build.mjs", "firefox"], cwd=EXTENSION, check=True, capture_output=True)
    lint = subprocess.run(
        ["node", "node_modules/web-ext/bin/web-ext.js", "lint", "--source-dir", "dist/firefox", "--output", "json"],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=180,
    )
    report = json.loads(lint.stdout)
    assert report["errors"] == [], report["errors"]
    assert report["summary"]["errors"] == 0
