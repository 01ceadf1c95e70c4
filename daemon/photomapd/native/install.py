"""`photomapd install` / `uninstall`: register the native-messaging host with each browser, plus the login start.

The browser runs the file a host manifest's "path" names, with no arguments we choose, so that path is a launcher
script written next to the data dir: it runs this install's own interpreter (venv or pipx) with
`-m photomapd native-host`. Manifests go to each browser's per-user folder on Linux and macOS; on Windows they live
in the data dir and an HKCU key per browser points at them. Everything is idempotent, and uninstall removes all of
it, folders it left empty included.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Iterable, Literal, Sequence

from photomapd import config
from photomapd.native import autostart
from photomapd.native._target import Target, fill, quote_cmd, quote_sh, read_template

__all__ = ["BROWSERS", "HOST_NAME", "Target", "install", "uninstall", "write_host_manifest", "write_launcher"]
from photomapd.errors import InstallFailed

log = logging.getLogger(__name__)

HOST_NAME = "com.photomap.daemon"
FIREFOX_EXTENSION_ID = "photomap@photomap.dev"  # extension/manifest.firefox.json browser_specific_settings.gecko.id
Browser = Literal["chrome", "chromium", "edge", "brave", "firefox"]
CHROME_FAMILY: tuple[Browser, ...] = ("chrome", "chromium", "edge", "brave")
BROWSERS: tuple[Browser, ...] = (*CHROME_FAMILY, "firefox")

# Per-user manifest folders, from each browser's documentation / source.
_LINUX_CONFIG_SUBDIR = {
    "chrome": "google-chrome",
    "chromium": "chromium",
    "edge": "microsoft-edge",
    "brave": "BraveSoftware/Brave-Browser",
}
_MAC_SUPPORT_SUBDIR = {
    "chrome": "Google/Chrome",
    "chromium": "Chromium",
    "edge": "Microsoft Edge",
    "brave": "BraveSoftware/Brave-Browser",
    "firefox": "Mozilla",
}
_WINDOWS_KEY = {
    "chrome": r"Software\Google\Chrome",
    "chromium": r"Software\Chromium",
    "edge": r"Software\Microsoft\Edge",
    "brave": r"Software\BraveSoftware\Brave-Browser",
    "firefox": r"Software\Mozilla",
}
_CHROME_ID = re.compile(r"[a-p]{32}")  # Chrome ids: 32 letters a–p, derived from the manifest key
_FIREFOX_ID = re.compile(r"[^@\s]+@[^@\s]+|\{[0-9a-fA-F-]{36}\}")  # name@domain or {uuid}


def manifest_dir(target: Target, browser: Browser) -> Path:
    """The folder whose `com.photomap.daemon.json` this browser reads."""
    if target.system == "win32":  # any folder works: the registry names the file
        return target.data_dir / "native-messaging" / ("firefox" if browser == "firefox" else "chrome")
    if target.system == "darwin":
        return target.app_support() / _MAC_SUPPORT_SUBDIR[browser] / "NativeMessagingHosts"
    if browser == "firefox":
        return target.home / ".mozilla" / "native-messaging-hosts"
    return target.config_home() / _LINUX_CONFIG_SUBDIR[browser] / "NativeMessagingHosts"


def registry_key(browser: Browser) -> str:
    return f"{_WINDOWS_KEY[browser]}\\NativeMessagingHosts\\{HOST_NAME}"


def launcher_dir(target: Target) -> Path:
    return target.data_dir / "native-host"


# --- the files ------------------------------------------------------------------------------------------------------


def write_launcher(directory: Path, target: Target | None = None) -> Path:
    """The executable a host manifest points at; it passes the browser's environment through to the host."""
    target = target if target is not None else Target.current()
    overrides = target.env_overrides().items()
    if target.system == "win32":
        path = directory / "photomapd-native-host.cmd"
        defaults = [f'if not defined {name} set "{name}={quote_cmd(value)}"' for name, value in overrides]
        python = quote_cmd(str(target.python))
        text = fill(read_template("launcher.cmd"), ENV_DEFAULTS="\n".join(defaults), PYTHON=python)
        text = text.replace("\n", "\r\n")  # cmd.exe wants CRLF
    else:
        path = directory / "photomapd-native-host"
        defaults = [
            f'if [ -z "${{{name}:-}}" ]; then {name}={quote_sh(value)}; export {name}; fi' for name, value in overrides
        ]
        python = quote_sh(str(target.python))
        text = fill(read_template("launcher.sh"), ENV_DEFAULTS="\n".join(defaults), PYTHON=python)
    config.write_atomic(path, text.encode("utf-8"), mode=0o755)
    return path


def host_manifest(browser: Browser, extension_ids: Sequence[str], launcher: Path) -> dict[str, object]:
    """The manifest's content: Chrome-family browsers list origins, Firefox lists add-on ids."""
    family = "firefox" if browser == "firefox" else "chrome"
    manifest: dict[str, object] = json.loads(read_template(f"host-manifest.{family}.json"))
    manifest["path"] = str(launcher)
    if family == "firefox":
        manifest["allowed_extensions"] = list(extension_ids)
    else:
        manifest["allowed_origins"] = [f"chrome-extension://{ext_id}/" for ext_id in extension_ids]
    return manifest


def write_host_manifest(
    directory: Path, browser: Browser, extension_ids: str | Sequence[str], launcher: Path
) -> Path:
    """Write `<directory>/com.photomap.daemon.json`, e.g. into a test profile's NativeMessagingHosts folder."""
    if isinstance(extension_ids, str):  # one id; iterating it would allow each of its letters instead
        extension_ids = [extension_ids]
    if not launcher.is_absolute():
        raise InstallFailed(f"The native host launcher path must be absolute: {launcher}")
    path = directory / f"{HOST_NAME}.json"
    config.write_json_atomic(path, host_manifest(browser, extension_ids, launcher))
    return path


def split_extension_ids(extension_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """(Chrome ids, Firefox ids), each defaulting to the id our extension pins; an id of neither shape is refused."""
    chrome: list[str] = []
    firefox: list[str] = []
    for ext_id in extension_ids:
        if _CHROME_ID.fullmatch(ext_id):
            chrome.append(ext_id)
        elif _FIREFOX_ID.fullmatch(ext_id):
            firefox.append(ext_id)
        else:
            raise InstallFailed(
                f"'{ext_id}' is not an extension id: Chrome ids are 32 letters a-p, "
                "Firefox ids look like name@example.org or {uuid}"
            )
    return chrome or [config.DEFAULT_EXTENSION_ID], firefox or [FIREFOX_EXTENSION_ID]


# --- install / uninstall --------------------------------------------------------------------------------------------


def install(
    target: Target,
    browsers: Sequence[Browser] = BROWSERS,
    extension_ids: Sequence[str] = (),
    autostart_at_login: bool = True,
) -> list[str]:
    """Write the launcher, each browser's manifest (and registry key), and the login entry; returns what was written."""
    chrome_ids, firefox_ids = split_extension_ids(extension_ids)
    launcher = write_launcher(launcher_dir(target), target)
    written = [str(launcher)]
    for browser in browsers:
        ids = firefox_ids if browser == "firefox" else chrome_ids
        manifest = write_host_manifest(manifest_dir(target, browser), browser, ids, launcher)
        if target.system == "win32":
            target.windows_registry().set_value(registry_key(browser), "", str(manifest))
            written.append(f"HKCU\\{registry_key(browser)}")
        written.append(str(manifest))
    if autostart_at_login:
        written.extend(autostart.register(target))
    log.debug("installed: %s", ", ".join(written))
    return list(dict.fromkeys(written))  # Windows browsers share one manifest file: name it once


def uninstall(target: Target) -> list[str]:
    """Remove every manifest, registry key, launcher and login entry an install of any options could have made."""
    removed: list[Path] = []
    for browser in BROWSERS:
        if target.system == "win32":
            target.windows_registry().delete_key(registry_key(browser))
        manifest = manifest_dir(target, browser) / f"{HOST_NAME}.json"
        if manifest.exists():
            manifest.unlink()
            removed.append(manifest)
    if launcher_dir(target).exists():
        shutil.rmtree(launcher_dir(target))
        removed.append(launcher_dir(target))
    removed.extend(autostart.unregister(target))
    for path in removed:
        _prune_empty_parents(path.parent, roots=(target.home, target.data_dir))
    return [str(path) for path in removed]


def _prune_empty_parents(folder: Path, roots: tuple[Path, ...]) -> None:
    """Remove folders left empty, up to (never including) a root: install made them for browsers that may not be
    installed. Nothing outside the roots is touched, however empty."""
    while any(folder != root and folder.is_relative_to(root) for root in roots):
        if not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()
        folder = folder.parent
