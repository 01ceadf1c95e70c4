"""Fixtures for the browser tests: a built extension, a running daemon with an indexed album (random-weight model),
the fake InvokeAI, a plain web server (not InvokeAI; also hosts an image for the context menu), and a runner that
starts Debian's chromium with the extension and the real native host for one scenario."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the project's tests import helpers by path (no packages)

from harness import (  # noqa: E402
    ALBUM,
    ALBUM_FIXTURES,
    BOARDS,
    CHROMIUM,
    DRIVER,
    EXTENSION,
    EXTENSION_ID,
    FAKE_INVOKEAI,
    FIREFOX,
    FIREFOX_ADDON_ID,
    FIREFOX_DRIVER,
    FIXTURE_IMAGES,
    OUTPUT,
    REPO,
    STARTUP_S,
    Daemon,
    Servers,
    free_port,
    painted_png,
    wait_for,
)


@pytest.fixture(scope="session")
def extension_dir() -> Path:
    if not Path(CHROMIUM).exists() or not (EXTENSION / "node_modules").is_dir() or shutil.which("node") is None:
        pytest.skip("browser tests need Debian's chromium, node and `npm ci` in extension/ (./test.sh sets them up)")
    subprocess.run(["node", "build.mjs", "chrome"], cwd=EXTENSION, check=True, capture_output=True)
    return EXTENSION / "dist" / "chrome"


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("photomapd")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("config", "data", "cache"):
        env[f"PHOTOMAP_{name.upper()}_DIR"] = str(root / name)
    album_dir = root / "album"
    album_dir.mkdir()
    for name in ALBUM_FIXTURES:
        shutil.copy(FIXTURE_IMAGES / name, album_dir / name)
    for seed in range(4):
        painted_png(album_dir / f"painted-{seed}.png", seed)
    port = free_port()
    proc = _spawn(
        [sys.executable, "-m", "photomapd", "serve", "--port", str(port), "--pretrained", "none", "--no-watch"],
        env,
        root / "daemon.log",
    )
    try:
        token_file = root / "config" / "token"
        wait_for(token_file.exists, STARTUP_S, "the daemon's token file")
        running = Daemon(port, token_file.read_text().strip(), env, album_dir)
        wait_for(lambda: running.call("GET", "/status").status_code == 200, STARTUP_S, "GET /status")
        created = running.call("POST", "/albums", json={"key": ALBUM, "display_name": "Gallery", "folders": [str(album_dir)]})
        assert created.status_code == 201, created.text
        wait_for(lambda: _album(running, ALBUM)["progress"]["state"] == "done", STARTUP_S, "the album's first index")
        running.ids = _ids_by_name(running)
        yield running
    finally:
        _stop(proc)


def _album(daemon: Daemon, key: str) -> dict[str, Any]:
    albums = daemon.call("GET", "/albums").json()
    return next(album for album in albums if album["key"] == key)


def _ids_by_name(daemon: Daemon) -> dict[str, int]:
    page = daemon.call("POST", f"/albums/{ALBUM}/search", json={"offset": 0, "limit": 100})
    assert page.status_code == 200, page.text
    ids = {}
    for result in page.json()["results"]:
        record = daemon.call("GET", f"/images/{ALBUM}/{result['id']}").json()
        ids[Path(record["path"]).name] = result["id"]
    return ids


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("servers")
    invokeai_port, plain_port = free_port(), free_port()
    board_args = [arg for name in BOARDS for arg in ("--board", name)]
    fake = _spawn(
        [sys.executable, str(FAKE_INVOKEAI), "--port", str(invokeai_port), *board_args], dict(os.environ), root / "fake.log"
    )
    site = root / "site"
    site.mkdir()
    painted_png(site / "ref.png", 7)
    plain = _spawn(
        [sys.executable, "-m", "http.server", str(plain_port), "--bind", "127.0.0.1", "--directory", str(site)],
        dict(os.environ),
        root / "plain.log",
    )
    try:
        invokeai_url = f"http://127.0.0.1:{invokeai_port}"
        wait_for(lambda: httpx.get(f"{invokeai_url}/api/v1/app/version", timeout=2).status_code == 200, 30, "fake InvokeAI")
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{plain_port}/ref.png", timeout=2).status_code == 200, 30, "web server")
        boards = httpx.get(f"{invokeai_url}/api/v1/boards/?all=true", timeout=10).json()
        yield Servers(invokeai_url, f"http://127.0.0.1:{plain_port}", {b["board_name"]: b["board_id"] for b in boards})
    finally:
        _stop(fake)
        _stop(plain)


def _install_native_host(
    profile: Path, daemon: Daemon, browser: str = "chromium", env: dict[str, str] | None = None
) -> None:
    """The real host (`photomapd native-host`) registered in the test profile, as `photomapd install` would.
    Chromium reads <profile>/NativeMessagingHosts; Firefox reads $HOME/.mozilla/native-messaging-hosts, so for
    Firefox `profile` is the temp HOME the browser runs with."""
    from photomapd.native import install
    from photomapd.native._target import Target

    target = Target(
        system="linux",
        home=Path.home(),
        python=Path(sys.executable).absolute(),
        data_dir=Path((env or daemon.env)["PHOTOMAP_DATA_DIR"]),
        env=env or daemon.env,
    )
    launcher = install.write_launcher(profile, target)
    if browser == "firefox":
        install.write_host_manifest(profile / ".mozilla" / "native-messaging-hosts", "firefox", [FIREFOX_ADDON_ID], launcher)
    else:
        install.write_host_manifest(profile / "NativeMessagingHosts", "chromium", [EXTENSION_ID], launcher)


@pytest.fixture
def run_scenario(
    extension_dir: Path, daemon: Daemon, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., dict[str, Any]]:
    """Run one scenario of scenarios.mjs in a fresh profile; returns what it observed (after checking it ran)."""

    runs = itertools.count(1)

    def run(
        scenario: str, *, with_native_host: bool = True, host_env: dict[str, str] | None = None, **params: Any
    ) -> dict[str, Any]:
        """`host_env`: the environment the native host (and browser) get instead of the session daemon's."""
        OUTPUT.mkdir(parents=True, exist_ok=True)
        profile = Path(tempfile.mkdtemp(prefix=f"profile-{scenario}-", dir=tmp_path))
        if with_native_host:
            _install_native_host(profile, daemon, env=host_env)
        env = {key: value for key, value in (host_env or daemon.env).items() if key.startswith("PHOTOMAP_")}
        config = {
            "scenario": scenario,
            "extensionDir": str(extension_dir),
            "profileDir": str(profile),
            "screenshot": str(OUTPUT / f"{request.node.name}-{scenario}-{next(runs)}.png"),
            "env": env,
            "params": params,
        }
        config_file = profile.with_suffix(".json")
        config_file.write_text(json.dumps(config))
        done = subprocess.run(["node", str(DRIVER), str(config_file)], capture_output=True, text=True, timeout=600)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"driver printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
        assert result["ok"], result.get("error")
        # An error response logs "Failed to load resource" by design; anything else in the console is a bug.
        problems = [p for p in result["problems"] if "Failed to load resource" not in p]
        assert problems == [], problems
        return result

    return run



@pytest.fixture(scope="session")
def firefox_extension_dir() -> Path:
    if not Path(FIREFOX).exists() or not (EXTENSION / "node_modules" / "puppeteer-core").is_dir() or shutil.which("node") is None:
        pytest.skip("Firefox tests need Debian's firefox-esr, node and `npm ci` in extension/ (./test.sh sets them up)")
    subprocess.run(["node", "build.mjs", "firefox"], cwd=EXTENSION, check=True, capture_output=True)
    return EXTENSION / "dist" / "firefox"


@pytest.fixture
def run_firefox(
    firefox_extension_dir: Path, daemon: Daemon, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., dict[str, Any]]:
    """Run a group of scenarios in one Firefox launch (a launch costs seconds): [(name, params)] -> {name: seen}."""

    def run(scenarios: list[tuple[str, dict[str, Any]]], *, with_native_host: bool = True) -> dict[str, Any]:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="home-", dir=tmp_path))
        if with_native_host:
            _install_native_host(home, daemon, "firefox")
        env = {key: value for key, value in daemon.env.items() if key.startswith("PHOTOMAP_")}
        config = {
            "scenarios": [
                {"name": name, "params": params, "screenshot": str(OUTPUT / f"firefox-{request.node.name}-{name}.png")}
                for name, params in scenarios
            ],
            "extensionDir": str(firefox_extension_dir),
            "profileDir": str(Path(tempfile.mkdtemp(prefix="profile-", dir=tmp_path))),
            "homeDir": str(home),
            "env": env,
        }
        config_file = tmp_path / "firefox.json"
        config_file.write_text(json.dumps(config))
        done = subprocess.run(
            ["node", str(FIREFOX_DRIVER), str(config_file)], capture_output=True, text=True, timeout=60 + 60 * len(scenarios)
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"driver printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
        assert result["ok"], result.get("error")
        problems = [p for p in result["problems"] if "Failed to load resource" not in p]
        assert problems == [], problems
        return result["results"]

    return run
