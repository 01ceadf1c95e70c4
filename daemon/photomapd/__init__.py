"""PhotoMap daemon: albums of image folders indexed with CLIP in LanceDB, served to the browser extension."""

from __future__ import annotations

__version__ = "0.1.0"
