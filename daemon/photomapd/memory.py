"""Giving freed memory back to the OS, for a process that has just put work down (a model loaded, a daemon going
idle). Freeing objects is not enough on its own: reference cycles wait for a collection, glibc keeps freed heap
pages mapped until asked to trim them, and Arrow's allocator (mimalloc) keeps freed pages for reuse."""

from __future__ import annotations

import ctypes
import gc
import sys


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
