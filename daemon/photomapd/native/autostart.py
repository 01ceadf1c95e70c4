"""Start the daemon at login: a systemd user unit (Linux; an XDG autostart entry without systemd), a LaunchAgent
(macOS), or the HKCU Run key (Windows). Each entry runs `<this python> -m photomapd serve`; a second daemon exits 0
at once, so a login start and a browser start never fight.
"""

from __future__ import annotations

import os
import plistlib
from pathlib import Path

from photomapd import config
from photomapd.native import lifecycle
from photomapd.native._target import (
    Target,
    fill,
    quote_desktop_exec,
    quote_systemd,
    read_template,
)

UNIT_NAME = "photomapd.service"
DESKTOP_NAME = "photomapd.desktop"
LAUNCH_AGENT_LABEL = "com.photomap.daemon"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "PhotoMap"


def systemd_unit_path(target: Target) -> Path:
    return target.config_home() / "systemd" / "user" / UNIT_NAME


def systemd_wants_link(target: Target) -> Path:
    # What `systemctl --user enable` creates for WantedBy=default.target; made directly so install works without a
    # running user manager (containers, ssh sessions, tests).
    return target.config_home() / "systemd" / "user" / "default.target.wants" / UNIT_NAME


def desktop_entry_path(target: Target) -> Path:
    return target.config_home() / "autostart" / DESKTOP_NAME


def launch_agent_path(target: Target) -> Path:
    return target.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"


# --- rendering ------------------------------------------------------------------------------------------------------


def render_systemd_unit(target: Target) -> str:
    environment = "\n".join(
        f"Environment={quote_systemd(f'{name}={value}', in_exec=False)}"
        for name, value in target.env_overrides().items()
    )
    exec_start = " ".join(quote_systemd(arg, in_exec=True) for arg in target.serve_command())
    return fill(read_template(UNIT_NAME), EXEC_START=exec_start, ENVIRONMENT=environment)


def render_desktop_entry(target: Target) -> str:
    # An Exec line can't set variables, so overrides go through env(1).
    overrides = [f"{name}={value}" for name, value in target.env_overrides().items()]
    command = (["env", *overrides] if overrides else []) + target.serve_command()
    return fill(read_template(DESKTOP_NAME), EXEC=" ".join(quote_desktop_exec(arg) for arg in command))


def render_launch_agent(target: Target) -> bytes:
    agent = plistlib.loads(read_template(f"{LAUNCH_AGENT_LABEL}.plist").encode("utf-8"))
    agent["ProgramArguments"] = target.serve_command()
    agent["EnvironmentVariables"] = target.env_overrides()
    log_file = str(target.data_dir / lifecycle.log_path().name)
    agent["StandardOutPath"] = agent["StandardErrorPath"] = log_file
    return plistlib.dumps(agent)


def run_key_command(target: Target) -> str:
    # pythonw has no console window, so nothing flashes up at login. The Run key can't carry environment variables:
    # a Windows install with PHOTOMAP_*_DIR overrides must set them for the user instead.
    pythonw = target.python.with_name("pythonw.exe")
    python = pythonw if target.python.name.lower() == "python.exe" and pythonw.exists() else target.python
    return " ".join(f'"{arg}"' for arg in [str(python), *target.serve_command()[1:]])


# --- register / unregister ------------------------------------------------------------------------------------------


def register(target: Target) -> list[str]:
    """Write this platform's login entry; returns what was written, for the CLI to report."""
    if target.system == "win32":
        target.windows_registry().set_value(RUN_KEY, RUN_VALUE, run_key_command(target))
        return [f"HKCU\\{RUN_KEY}\\{RUN_VALUE}"]
    if target.system == "darwin":
        path = launch_agent_path(target)
        _write(path, render_launch_agent(target))
        return [str(path)]
    if not target.has_systemd:
        path = desktop_entry_path(target)
        _write(path, render_desktop_entry(target).encode("utf-8"))
        return [str(path)]
    _remove(desktop_entry_path(target))  # one login start is enough: drop an entry from a pre-systemd install
    unit, link = systemd_unit_path(target), systemd_wants_link(target)
    _write(unit, render_systemd_unit(target).encode("utf-8"))
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(unit)
    target.run(["systemctl", "--user", "daemon-reload"])
    return [str(unit), str(link)]


def unregister(target: Target) -> list[Path]:
    """Remove every kind of login entry this platform could have (a machine may have gained or lost systemd since
    install); returns the files removed, whose folders the caller may prune."""
    if target.system == "win32":
        target.windows_registry().delete_value(RUN_KEY, RUN_VALUE)
        return []
    candidates = (
        [launch_agent_path(target)]
        if target.system == "darwin"
        else [systemd_wants_link(target), systemd_unit_path(target), desktop_entry_path(target)]
    )
    removed = [path for path in candidates if _remove(path)]
    if target.system == "linux" and removed:
        target.run(["systemctl", "--user", "daemon-reload"])
    return removed


def _write(path: Path, data: bytes) -> None:
    config.write_atomic(path, data)


def _remove(path: Path) -> bool:
    if not os.path.lexists(path):
        return False
    path.unlink()
    return True
