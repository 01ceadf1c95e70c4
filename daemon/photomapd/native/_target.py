"""What `photomapd install` writes into: the platform as a value (so tests inject macOS or Windows on Linux), the
HKCU registry behind a small writer interface, the templates in `native-messaging/`, and the quoting each file format
needs. install.py (host manifests, launcher) and autostart.py (login entries) share these.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Mapping, Protocol, Sequence

from photomapd import config
from photomapd.errors import InstallFailed

log = logging.getLogger(__name__)

System = Literal["linux", "darwin", "win32"]
ENV_OVERRIDES = ("PHOTOMAP_CONFIG_DIR", "PHOTOMAP_DATA_DIR", "PHOTOMAP_CACHE_DIR")
COMMAND_TIMEOUT_S = 15.0  # systemctl --user daemon-reload; a hung user bus must not hang install


class RegistryWriter(Protocol):
    """HKEY_CURRENT_USER, keys as backslash paths below it; name "" is a key's default value."""

    def set_value(self, key: str, name: str, value: str) -> None: ...

    def delete_value(self, key: str, name: str) -> None: ...

    def delete_key(self, key: str) -> None: ...


if sys.platform == "win32":  # winreg exists only there; type checkers on other platforms skip this block
    import winreg

    class WindowsRegistry:
        """The real HKCU."""

        def set_value(self, key: str, name: str, value: str) -> None:
            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
                winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

        def delete_value(self, key: str, name: str) -> None:
            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
                    winreg.DeleteValue(handle, name)
            except FileNotFoundError:
                pass

        def delete_key(self, key: str) -> None:
            try:
                winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)
            except FileNotFoundError:
                pass


def _this_registry() -> RegistryWriter | None:
    if sys.platform == "win32":
        return WindowsRegistry()
    return None


def run_quietly(command: Sequence[str]) -> None:
    """Best effort: a missing tool or a failing user manager is logged, never fatal (the files are what count)."""
    if shutil.which(command[0]) is None:
        return
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", " ".join(command), exc)
        return
    if result.returncode != 0:
        log.warning("%s exited %d: %s", " ".join(command), result.returncode, result.stderr.strip())


@dataclass(frozen=True)
class Target:
    """Where an install goes. `Target.current()` is this machine; tests build one for any platform."""

    system: System
    home: Path
    python: Path  # the interpreter of this install (venv or pipx), which has photomapd importable
    data_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    has_systemd: bool = False
    registry: RegistryWriter | None = None
    run: Callable[[Sequence[str]], None] = run_quietly

    @classmethod
    def current(cls) -> Target:
        system: System = "win32" if sys.platform == "win32" else "darwin" if sys.platform == "darwin" else "linux"
        return cls(
            system=system,
            home=Path.home(),
            # absolute() but not resolve(): a venv's python is a symlink to the base interpreter, and resolving it
            # would lose the venv and with it photomapd.
            python=Path(sys.executable).absolute(),
            data_dir=config.data_dir(),
            env=dict(os.environ),
            has_systemd=Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None,
            registry=_this_registry(),
        )

    def config_home(self) -> Path:
        xdg = self.env.get("XDG_CONFIG_HOME", "")
        return Path(xdg) if xdg and Path(xdg).is_absolute() else self.home / ".config"

    def app_support(self) -> Path:
        return self.home / "Library" / "Application Support"

    def env_overrides(self) -> dict[str, str]:
        """PHOTOMAP_*_DIR set at install time: what the launcher and login entry pass on so every start agrees."""
        return {name: self.env[name] for name in ENV_OVERRIDES if self.env.get(name)}

    def windows_registry(self) -> RegistryWriter:
        if self.registry is None:
            raise InstallFailed("Installing on Windows needs access to the registry (HKEY_CURRENT_USER)")
        return self.registry

    def serve_command(self) -> list[str]:
        return [str(self.python), "-m", "photomapd", "serve"]


# --- templates ------------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def template_dir() -> Path:
    """`native-messaging/` of the source tree (editable installs), or where a wheel's data files land."""
    candidates = [
        Path(__file__).resolve().parents[3] / "native-messaging",  # daemon/photomapd/native/ -> the repo
        Path(sys.prefix) / "share" / "photomap" / "native-messaging",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InstallFailed(f"PhotoMap's native-messaging templates are missing (looked in {candidates[0]})")


def read_template(name: str) -> str:
    return (template_dir() / name).read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """Replace each `@NAME@`; a placeholder left unfilled is a bug, not something to ship."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    try:
        return _PLACEHOLDER.sub(value, template)
    except KeyError as exc:
        raise AssertionError(f"template placeholder @{exc.args[0]}@ has no value") from exc


# --- quoting, one function per format -------------------------------------------------------------------------------


def quote_sh(value: str) -> str:
    return shlex.quote(value)


def quote_cmd(value: str) -> str:
    """A value inside a .cmd file's double quotes: `%` would start a variable reference."""
    return value.replace("%", "%%")


def quote_systemd(value: str, *, in_exec: bool) -> str:
    """One double-quoted word for a unit file; `%` is a specifier and, on Exec lines, `$` a variable."""
    quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if in_exec:
        quoted = quoted.replace("$", "$$")
    return f'"{quoted}"'


def quote_desktop_exec(value: str) -> str:
    """One argument of a .desktop Exec key: the Exec quoting rule first, then the string-value escape on top."""
    inner = re.sub(r'(["`$\\])', r"\\\1", value)
    return ('"' + inner + '"').replace("\\", "\\\\").replace("%", "%%")
