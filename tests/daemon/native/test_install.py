"""`photomapd install` / `uninstall` into a private HOME: host manifests, launcher, login start. macOS and Windows run
through the same code with the platform injected (paths, plist, registry writes into an in-memory registry)."""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
import plistlib
import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from photomapd import config
from photomapd.native import autostart
from photomapd.native import install
from photomapd.native._target import System, Target
from photomapd.errors import InstallFailed

REPO = Path(__file__).resolve().parents[3]
CHROME_ORIGIN = f"chrome-extension://{config.DEFAULT_EXTENSION_ID}/"


class MemoryRegistry:
    """HKCU as a dict of key -> {value name: data}: the writer interface install uses on Windows."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}

    def set_value(self, key: str, name: str, value: str) -> None:
        self.keys.setdefault(key, {})[name] = value

    def delete_value(self, key: str, name: str) -> None:
        self.keys.get(key, {}).pop(name, None)

    def delete_key(self, key: str) -> None:
        self.keys.pop(key, None)

    def values(self) -> dict[str, str]:
        return {f"{key}\\{name}": data for key, names in self.keys.items() for name, data in names.items()}


def snapshot(root: Path) -> dict[str, str]:
    """Every path below `root` with what it is: file bytes, a link's target, or a folder."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path.relative_to(root))] = "dir"
    return found


@pytest.fixture
def python_with_space(tmp_path: Path) -> Path:
    """This venv's interpreter reached through a folder with a space: every format's quoting must survive it. (The
    venv is linked as a whole: a lone link to its python would lose the venv's pyvenv.cfg and with it photomapd.)"""
    venv = tmp_path / "py env"
    venv.symlink_to(Path(sys.prefix))
    return venv / Path(sys.executable).relative_to(sys.prefix)


def make_target(tmp_path: Path, system: System, python: Path, **extra: Any) -> Target:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PHOTOMAP_DATA_DIR": str(config.data_dir()), "PHOTOMAP_CONFIG_DIR": str(config.config_dir())}
    return Target(system=system, home=home, python=python, data_dir=config.data_dir(), env=env, **extra)


def assert_manifest(path: Path, browser: str) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    assert path.name == "com.photomap.daemon.json"
    assert manifest["name"] == "com.photomap.daemon" and manifest["type"] == "stdio"
    launcher = Path(str(manifest["path"]))
    assert launcher.is_absolute() and launcher.is_file() and os.access(launcher, os.X_OK)
    if browser == "firefox":
        assert manifest["allowed_extensions"] == ["photomap@photomap.dev"] and "allowed_origins" not in manifest
    else:
        assert manifest["allowed_origins"] == [CHROME_ORIGIN] and "allowed_extensions" not in manifest
    return manifest


# --- Linux ----------------------------------------------------------------------------------------------------------

LINUX_MANIFESTS = {
    "chrome": ".config/google-chrome/NativeMessagingHosts",
    "chromium": ".config/chromium/NativeMessagingHosts",
    "edge": ".config/microsoft-edge/NativeMessagingHosts",
    "brave": ".config/BraveSoftware/Brave-Browser/NativeMessagingHosts",
    "firefox": ".mozilla/native-messaging-hosts",
}


def test_linux_install_writes_every_manifest_and_a_systemd_unit(tmp_path: Path, python_with_space: Path) -> None:
    commands: list[list[str]] = []
    target = make_target(tmp_path, "linux", python_with_space, has_systemd=True, run=commands.append)
    before = snapshot(tmp_path / "home")

    written = install.install(target)
    first = snapshot(tmp_path / "home")
    assert install.install(target) == written and snapshot(tmp_path / "home") == first  # idempotent

    for browser, folder in LINUX_MANIFESTS.items():
        assert_manifest(target.home / folder / "com.photomap.daemon.json", browser)
    unit = target.home / ".config/systemd/user/photomapd.service"
    assert (target.home / ".config/systemd/user/default.target.wants/photomapd.service").resolve() == unit
    text = unit.read_text()
    assert f'ExecStart="{python_with_space}" "-m" "photomapd" "serve"' in text
    assert f'Environment="PHOTOMAP_DATA_DIR={config.data_dir()}"' in text
    assert ["systemctl", "--user", "daemon-reload"] in commands

    removed = install.uninstall(target)
    assert str(unit) in removed
    assert snapshot(tmp_path / "home") == before  # nothing left, not even the folders install made
    assert not install.launcher_dir(target).exists()


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path, python_with_space: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    target = make_target(tmp_path, "linux", python_with_space, has_systemd=True, run=lambda command: None)
    autostart.register(target)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(target.home), "XDG_RUNTIME_DIR": str(runtime)}
    result = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(autostart.systemd_unit_path(target))],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0 and "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze can't run here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "photomapd.service" not in result.stderr, result.stderr  # no warnings about our unit either


def test_linux_without_systemd_gets_an_xdg_autostart_entry(tmp_path: Path, python_with_space: Path) -> None:
    target = make_target(tmp_path, "linux", python_with_space, has_systemd=False)
    install.install(target)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(target.home / ".config/autostart/photomapd.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    # No backslashes or % in these paths, so the Exec value reads back like a shell word list.
    assert shlex.split(desktop["Exec"]) == [
        "env", *[f"{name}={value}" for name, value in target.env_overrides().items()],
        str(python_with_space), "-m", "photomapd", "serve",
    ]
    assert not (target.home / ".config/systemd").exists()
    install.uninstall(target)
    assert snapshot(target.home) == {}


def test_launcher_runs_the_host_and_passes_the_browser_environment_through(
    tmp_path: Path, python_with_space: Path
) -> None:
    target = make_target(tmp_path, "linux", python_with_space)
    install.install(target, browsers=["chromium"], autostart_at_login=False)
    manifest = assert_manifest(target.home / LINUX_MANIFESTS["chromium"] / "com.photomap.daemon.json", "chromium")
    request = json.dumps({"type": "status", "id": 1}).encode()

    def run_launcher(env: dict[str, str]) -> dict[str, object]:
        out = subprocess.run(
            [str(manifest["path"]), CHROME_ORIGIN], input=struct.pack("=I", len(request)) + request,
            env=env, capture_output=True, timeout=60, check=True,
        ).stdout
        (length,) = struct.unpack("=I", out[:4])
        assert len(out) == 4 + length
        reply: dict[str, object] = json.loads(out[4:])
        return reply

    # A browser that sets no PHOTOMAP_* dirs: the ones set at install time apply.
    bare_env = {key: value for key, value in os.environ.items() if not key.startswith("PHOTOMAP_")}
    assert run_launcher(bare_env) == {"type": "status", "running": False, "port": None, "pid": None,
                                      "version": None, "id": 1}
    assert (config.data_dir() / "native-host.log").is_file()
    # A browser started with its own data dir (the extension's browser tests): that one wins.
    own = tmp_path / "browser-data"
    run_launcher({**bare_env, "PHOTOMAP_DATA_DIR": str(own)})
    assert (own / "native-host.log").is_file()


# --- macOS and Windows, injected ------------------------------------------------------------------------------------

MAC_MANIFESTS = {
    "chrome": "Library/Application Support/Google/Chrome/NativeMessagingHosts",
    "chromium": "Library/Application Support/Chromium/NativeMessagingHosts",
    "edge": "Library/Application Support/Microsoft Edge/NativeMessagingHosts",
    "brave": "Library/Application Support/BraveSoftware/Brave-Browser/NativeMessagingHosts",
    "firefox": "Library/Application Support/Mozilla/NativeMessagingHosts",
}


def test_macos_install_writes_manifests_and_a_launch_agent(tmp_path: Path, python_with_space: Path) -> None:
    target = make_target(tmp_path, "darwin", python_with_space)
    install.install(target)
    for browser, folder in MAC_MANIFESTS.items():
        assert_manifest(target.home / folder / "com.photomap.daemon.json", browser)
    agent = plistlib.loads((target.home / "Library/LaunchAgents/com.photomap.daemon.plist").read_bytes())
    assert agent["Label"] == "com.photomap.daemon"
    assert agent["ProgramArguments"] == [str(python_with_space), "-m", "photomapd", "serve"]
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["EnvironmentVariables"] == target.env_overrides()
    assert agent["StandardErrorPath"] == str(config.data_dir() / "daemon.log")
    assert not (target.home / ".config").exists()

    install.uninstall(target)
    assert snapshot(target.home) == {}


WINDOWS_KEYS = {
    "chrome": r"Software\Google\Chrome\NativeMessagingHosts\com.photomap.daemon",
    "chromium": r"Software\Chromium\NativeMessagingHosts\com.photomap.daemon",
    "edge": r"Software\Microsoft\Edge\NativeMessagingHosts\com.photomap.daemon",
    "brave": r"Software\BraveSoftware\Brave-Browser\NativeMessagingHosts\com.photomap.daemon",
    "firefox": r"Software\Mozilla\NativeMessagingHosts\com.photomap.daemon",
}


def test_windows_install_points_registry_keys_at_manifests(tmp_path: Path, python_with_space: Path) -> None:
    registry = MemoryRegistry()
    target = make_target(tmp_path, "win32", python_with_space, registry=registry)
    install.install(target)
    for browser, key in WINDOWS_KEYS.items():
        manifest_path = Path(registry.keys[key][""])
        manifest = assert_manifest(manifest_path, browser)
        launcher = Path(str(manifest["path"]))
        assert launcher.suffix == ".cmd"
        assert b"\r\n" in launcher.read_bytes() and b"native-host -- %*" in launcher.read_bytes()
    run = registry.keys[r"Software\Microsoft\Windows\CurrentVersion\Run"]["PhotoMap"]
    assert run == f'"{python_with_space}" "-m" "photomapd" "serve"'
    assert snapshot(target.home) == {}  # nothing in the user's folders: Windows finds manifests through the registry

    install.uninstall(target)
    assert registry.values() == {}
    assert not (config.data_dir() / "native-messaging").exists() and not install.launcher_dir(target).exists()


def test_windows_without_registry_access_is_a_clear_error(tmp_path: Path, python_with_space: Path) -> None:
    with pytest.raises(InstallFailed, match="registry"):
        install.install(make_target(tmp_path, "win32", python_with_space))


# --- extension ids, the CLI -----------------------------------------------------------------------------------------


def test_extension_ids_are_routed_by_shape(tmp_path: Path, python_with_space: Path) -> None:
    target = make_target(tmp_path, "linux", python_with_space)
    dev_id = "a" * 32
    install.install(target, ["chrome", "firefox"], [dev_id, "dev@example.org"], autostart_at_login=False)
    chrome = json.loads((target.home / LINUX_MANIFESTS["chrome"] / "com.photomap.daemon.json").read_text())
    firefox = json.loads((target.home / LINUX_MANIFESTS["firefox"] / "com.photomap.daemon.json").read_text())
    assert chrome["allowed_origins"] == [f"chrome-extension://{dev_id}/"]
    assert firefox["allowed_extensions"] == ["dev@example.org"]
    with pytest.raises(InstallFailed, match="not an extension id"):
        install.install(target, ["chrome"], ["chrome-extension://nope/"])


def test_write_host_manifest_for_a_test_profile(tmp_path: Path) -> None:
    launcher = install.write_launcher(tmp_path / "bin")
    path = install.write_host_manifest(tmp_path / "profile" / "NativeMessagingHosts", "chromium", ["b" * 32], launcher)
    assert json.loads(path.read_text())["allowed_origins"] == [f"chrome-extension://{'b' * 32}/"]
    assert install.write_host_manifest(path.parent, "chromium", "c" * 32, launcher) == path  # one id as a str
    assert json.loads(path.read_text())["allowed_origins"] == [f"chrome-extension://{'c' * 32}/"]
    with pytest.raises(InstallFailed, match="absolute"):
        install.write_host_manifest(tmp_path, "chromium", ["b" * 32], Path("relative/launcher"))


def test_default_extension_id_is_the_one_the_extension_key_pins() -> None:
    key = json.loads((REPO / "extension" / "manifest.json").read_text())["key"]
    digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
    assert "".join(chr(ord("a") + int(char, 16)) for char in digest) == config.DEFAULT_EXTENSION_ID


def test_cli_install_then_uninstall_leaves_home_as_it_was(tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)

    def photomapd(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "photomapd", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    done = photomapd("install", "--browser", "chromium")
    assert done.returncode == 0, done.stderr
    assert_manifest(home / LINUX_MANIFESTS["chromium"] / "com.photomap.daemon.json", "chromium")
    assert not (home / LINUX_MANIFESTS["chrome"]).exists()
    assert photomapd("install", "--extension-id", "nope").returncode == 1
    assert photomapd("uninstall").returncode == 0
    assert snapshot(home) == {}
