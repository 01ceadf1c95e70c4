"""Where PhotoMap keeps its files, the settings model, and atomic JSON writes.

Paths follow platformdirs (app name `photomap`); each can be replaced by an environment variable so tests and
second installs point elsewhere: PHOTOMAP_CONFIG_DIR, PHOTOMAP_DATA_DIR, PHOTOMAP_CACHE_DIR.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
from typing import Callable, Literal
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from photomapd.errors import ConfigInvalid

APP_NAME = "photomap"
DEFAULT_PORT = 8765  # fixed so a running daemon is easy to find; a taken port falls back to a free one
TOKEN_BYTES = 32


# --- paths ----------------------------------------------------------------------------------------------------------


def _dir_from_env(env_var: str, default: Path) -> Path:
    override = os.environ.get(env_var)
    return Path(override).expanduser() if override else default


def config_dir() -> Path:
    return _dir_from_env("PHOTOMAP_CONFIG_DIR", platformdirs.user_config_path(APP_NAME, appauthor=False))


def data_dir() -> Path:
    return _dir_from_env("PHOTOMAP_DATA_DIR", platformdirs.user_data_path(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    return _dir_from_env("PHOTOMAP_CACHE_DIR", platformdirs.user_cache_path(APP_NAME, appauthor=False))


def config_path() -> Path:
    return config_dir() / "config.json"


def secrets_path() -> Path:
    return config_dir() / "secrets.json"


def token_path() -> Path:
    return config_dir() / "token"


def index_dir() -> Path:
    return data_dir() / "index"


def state_path() -> Path:
    return data_dir() / "state.json"


def thumbs_dir() -> Path:
    return cache_dir() / "thumbs"


def models_dir() -> Path:
    return cache_dir() / "models"


# --- atomic writes --------------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never half of one.

    The temp file is created with `mode` from the start, so a secret is never readable by others even briefly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: object, mode: int = 0o644) -> None:
    write_atomic(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), mode)


# --- settings model -------------------------------------------------------------------------------------------------


class AlbumConfig(BaseModel):
    """One album as stored in config.json. Folder checks happen when an album is added or edited (albums.py), not
    on load: an unplugged drive must not make the whole config unreadable."""

    model_config = ConfigDict(extra="ignore")

    key: str
    display_name: str
    folders: list[str] = Field(default_factory=list)  # empty for a board album
    watch: bool = True  # live folder watching in `serve` (board albums: following the server's new images)
    poll: bool = False  # polling watcher, for network mounts (SMB/NFS/SSHFS) where inotify sees nothing
    # Where the images come from (DESIGN §11): folders on disk, or the configured InvokeAI server's boards.
    source: Literal["folders", "invokeai"] = "folders"
    # Board albums: board ids, "none" for Uncategorized, or just ["all"] (every board this user sees + Uncategorized).
    boards: list[str] = Field(default_factory=list)

    @property
    def is_board_album(self) -> bool:
        return self.source == "invokeai"


class InvokeAISettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = ""  # saved exactly as typed, even when the probe fails
    username: str = ""
    board_id: str | None = None  # None = Uncategorized
    attach_ref_images: bool = False  # opt-in: also add an uploaded ref image to the current generation


# The id Chrome derives from the `key` in extension/manifest.json; the native host manifest and the API's Origin check
# both name it. Extra ids (an unpacked dev copy, Edge's store id) go in config.json's `extension_ids`.
DEFAULT_EXTENSION_ID = "cohnibkfepkdihajabdpbcdbpkfcoaig"


class Config(BaseModel):
    model_config = ConfigDict(extra="ignore")

    albums: list[AlbumConfig] = Field(default_factory=list)
    invokeai: InvokeAISettings = Field(default_factory=InvokeAISettings)
    # Best zero-shot quality per CPU cost of what open_clip offers (BENCHMARKS.md, "Choosing the default model"):
    # 72.8 % ImageNet for 1.3x ViT-B-32's CPU time; MobileCLIP2-S2 gains 4 points more for 3x.
    model: str = "ViT-B-32-256"
    pretrained: str = "datacomp_s34b_b86k"
    # "int8" quantizes the image tower on AVX2/AVX-512 CPUs (model/quantize.py; ignored on a GPU): opt-in until its
    # quality is shown with real weights. A table records its precision; changing this rebuilds the index.
    model_precision: Literal["fp32", "int8"] = "fp32"
    port: int = DEFAULT_PORT
    # The loaded model holds ~1.4 GB all day otherwise; reloading it takes seconds, once per idle spell. 0 = never.
    model_idle_unload_s: float = Field(default=600.0, ge=0.0)
    extension_ids: list[str] = Field(default_factory=list)

    def allowed_extension_ids(self) -> set[str]:
        return {DEFAULT_EXTENSION_ID, *self.extension_ids} - {""}


def load_config() -> Config:
    """Read config.json; a missing file means defaults, a broken one is one readable error."""
    path = config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    try:
        return Config.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigInvalid(f"{path} is invalid: {problems}") from exc


def save_config(config: Config) -> None:
    write_json_atomic(config_path(), config.model_dump(mode="json"))


class ConfigStore:
    """The live config of one process: readers take `current`, writers go through `update` (locked, atomic)."""

    def __init__(self, initial: Config | None = None) -> None:
        self._config = initial if initial is not None else load_config()
        self._lock = threading.Lock()

    @property
    def current(self) -> Config:
        return self._config

    def update(self, change: Callable[[Config], None]) -> Config:
        """Apply `change` to a copy, save it, then make it current; a change that raises saves nothing."""
        with self._lock:
            draft = self._config.model_copy(deep=True)
            change(draft)
            validated = Config.model_validate(draft.model_dump())
            save_config(validated)
            self._config = validated
            return validated


# --- API token ------------------------------------------------------------------------------------------------------

# What counts as a token: visible ASCII, no spaces (it goes into an HTTP header as is), at least this long. Ours are
# 43 characters; anything shorter or with other bytes is a damaged file (emptied, truncated, overwritten), not a token.
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 512  # a header line, not a file: longer means the file holds something else
_TOKEN_SHAPE = re.compile(rf"[\x21-\x7e]{{{MIN_TOKEN_CHARS},{MAX_TOKEN_CHARS}}}")


def read_token() -> str | None:
    """The token in the token file; None when the file is missing, empty or damaged (see token_file_problem)."""
    try:
        raw = token_path().read_bytes()
    except FileNotFoundError:
        return None
    token = raw.decode("ascii", errors="replace").strip()
    return token if _TOKEN_SHAPE.fullmatch(token) else None


def token_file_problem() -> str | None:
    """What is wrong with the token file, as the end of a sentence naming it; None when it holds a token."""
    path = token_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return f"{path} is missing"
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if not raw.strip():
        return f"{path} is empty"
    return None if read_token() is not None else f"{path} does not hold a valid token (it is damaged)"


def write_token(token: str) -> None:
    """Put `token` in the token file, atomically and readable by the user only (the daemon repairs it with this)."""
    write_atomic(token_path(), token.encode("ascii"), mode=0o600)


def load_or_create_token() -> str:
    """The bearer token the extension must send; created on first start, readable by the user only.

    Several processes may get here at once (two `serve`s, the native host, a CLI). A missing token is written to a
    temp file and hard-linked into place, which fails if another process got there first: then everyone reads the one
    file that won, instead of each keeping the token it generated. A damaged file (empty, garbled) is replaced: never
    hand out an empty token, which would make `Bearer ` a valid header. While a daemon runs it puts its own token back
    within a second (api/server.py), so a client that replaced it meanwhile converges on the daemon's.
    """
    token = read_token()
    if token is not None:
        return token
    path = token_path()
    fresh = secrets.token_urlsafe(TOKEN_BYTES)
    if path.exists():
        write_token(fresh)
        return read_token() or fresh  # re-read: a process replacing it at the same moment may have won
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".token.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(fresh.encode("ascii"))
            tmp.flush()
            os.fsync(tmp.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            pass  # another process created it first: its token is the token
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return read_token() or fresh
