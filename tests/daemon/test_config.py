from __future__ import annotations

import stat

import pytest

from photomapd import config
from photomapd.errors import ConfigInvalid


def test_missing_config_file_means_defaults() -> None:
    loaded = config.load_config()
    assert loaded.albums == []
    assert loaded.port == config.DEFAULT_PORT


def test_config_round_trips_through_atomic_write() -> None:
    cfg = config.Config(albums=[config.AlbumConfig(key="gallery", display_name="Gallery", folders=["/tmp"])])
    config.save_config(cfg)
    assert config.load_config() == cfg
    leftovers = [p.name for p in config.config_dir().iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_broken_config_is_one_readable_error() -> None:
    config.config_path().parent.mkdir(parents=True)
    config.config_path().write_text('{"albums": [{"key": 3}]}')
    with pytest.raises(ConfigInvalid, match=r"albums\.0\.display_name"):
        config.load_config()


def test_token_is_created_once_and_private() -> None:
    first = config.load_or_create_token()
    assert len(first) >= 40
    assert config.load_or_create_token() == first
    assert stat.S_IMODE(config.token_path().stat().st_mode) == 0o600


def test_processes_racing_to_create_the_token_all_get_the_same_one() -> None:
    import subprocess
    import sys

    code = "from photomapd import config; print(config.load_or_create_token())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    tokens = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert tokens == {config.token_path().read_text().strip()}
    assert not [p for p in config.config_dir().iterdir() if p.name.startswith(".token.")]
