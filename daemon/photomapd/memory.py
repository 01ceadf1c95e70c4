"""Memory a resting daemon does not hold. Giving freed memory back to the OS, for a process that has just put work
down (a model loaded, a daemon going idle): freeing objects is not enough on its own, because reference cycles wait
for a collection, glibc keeps freed heap pages mapped until asked to trim them, and Arrow's allocator keeps freed
pages for reuse. And keeping out a library that would only be imported, never used."""

from __future__ import annotations

import ctypes
import gc
import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec

# pandas (~50 MB resident) comes in with pyarrow.dataset, which LanceDB imports, yet nothing the daemon's own process
# does makes or reads a DataFrame, and pyarrow and LanceDB both take it as optional. Ray Data and umap-learn need
# it: whatever brings them into the daemon calls `let_unused_back_in()` first.
UNUSED_IN_DAEMON = ("pandas",)


class _KeepOut(importlib.abc.MetaPathFinder):
    """Answers an import of the named packages as if they were not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (kept out of the resting daemon)", name=fullname)
        return None


def keep_unused_out() -> None:
    """Before the daemon imports LanceDB; a no-op if done already or if pandas is in this process anyway."""
    if any(isinstance(finder, _KeepOut) for finder in sys.meta_path) or "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _KeepOut(UNUSED_IN_DAEMON))


def let_unused_back_in() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _KeepOut)]


def release_memory() -> None:
    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:  # the model process never imports Arrow: nothing to release there
        pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): the collection is all we can do
            pass
