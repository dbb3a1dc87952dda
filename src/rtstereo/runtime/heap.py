"""Keeping the memory that numpy's temporaries free for reuse, instead of handing it back to the kernel.

A prediction, and a render of synthetic scenes, make many temporaries of megabytes each. By default glibc
unmaps such blocks when they are freed (and trims the heap's top), so every new one is mapped and zeroed by
the kernel anew: the hybrid at 640x480 took 13-15 k page faults per pair, about 15 % of its CPU time
(:func:`keep_freed_memory`, called when a model is loaded for the CPU and on the first CPU render).
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

from ..errors import InputError
from ..text import shortened

_MALLOC_LOCK = threading.Lock()
_MALLOC_TUNED: list[bool] = []
MALLOC_KEEP_BYTES = 1 << 30  # free memory glibc may keep for reuse (at the heap's top, and per block)
KEEP_ENV = "RTSTEREO_KEEP_FREED_MEMORY"  # "0" leaves malloc's settings as the process has them
_KEEP_ON, _KEEP_OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")  # as a model's switches read them


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    The renderer's temporaries are megabytes each, and so are a prediction's (the maps of the hybrid's
    hole choice and check). By default glibc unmaps such blocks when they are freed (and trims the heap's
    top), so every new one is mapped and zeroed by the kernel anew: 45-80 k page faults per call of 8
    pairs at 256x512, 10-20 % of the renderer's time on this project's CPU; 13-15 k per 640x480 pair of
    the hybrid, 237 against 192-208 ms of CPU time. Called on the first CPU render and when a model is
    loaded for the CPU; it changes three process-wide settings of malloc (``mallopt``: blocks up to 1 GiB
    come from the heap, up to 1 GiB of free heap is kept, and every thread allocates from the main arena),
    so the process keeps its peak memory. Elsewhere than Linux with glibc it does nothing, and so it does
    where the environment sets ``RTSTEREO_KEEP_FREED_MEMORY=0`` (or ``false``, ``no``, ``off``: for an application
    that tunes malloc itself, or runs many threads that allocate at once).

    Returns:
        True if the settings are (now) in place.

    Raises:
        InputError: ``RTSTEREO_KEEP_FREED_MEMORY`` is set to no switch (``=false`` kept the memory, unsaid).
    """
    with _MALLOC_LOCK:
        if not _MALLOC_TUNED:
            tuned = False
            wanted = _keep_wanted()
            if wanted and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                try:
                    mallopt = ctypes.CDLL("libc.so.6").mallopt
                except (OSError, AttributeError):
                    mallopt = None
                if mallopt is not None:
                    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
                    # Some glibc versions refuse an mmap threshold above 32 MiB: then blocks above
                    # that are still mapped anew, the smaller ones (most of them) are kept.
                    mapped = any(mallopt(m_mmap_threshold, size) for size in (MALLOC_KEEP_BYTES, 32 << 20))
                    tuned = mapped and bool(mallopt(m_trim_threshold, MALLOC_KEEP_BYTES))
                    # One arena: the heaps of other threads' arenas are at most 64 MiB each, and are
                    # unmapped as soon as they empty (30-60 k page faults per call again, with the
                    # batch split over two threads).
                    m_arena_max = -8
                    tuned = tuned and bool(mallopt(m_arena_max, 1))
            _MALLOC_TUNED.append(tuned)
        return _MALLOC_TUNED[0]


def _keep_wanted() -> bool:
    """``RTSTEREO_KEEP_FREED_MEMORY`` as a switch: unset or empty is on; anything but "0" was on, ``false`` too."""
    value = os.environ.get(KEEP_ENV, "").strip()
    if not value or value.lower() in _KEEP_ON:
        return True
    if value.lower() in _KEEP_OFF:
        return False
    raise InputError(f"{KEEP_ENV} must be 0 or 1 (false or true, no or yes, off or on), got '{shortened(value)}'")


def release_freed_memory() -> bool:
    """Hand the memory that the process has freed back to the system (glibc's ``malloc_trim``).

    glibc keeps freed blocks for reuse (all of them after :func:`keep_freed_memory`), and the system counts them as
    used: the memory budget (:mod:`.memory`) calls this before it runs a pair smaller or refuses it, and ``bench``
    before each row, so that a row that reuses what an earlier row's predictor freed shows growth of the resident
    set (its peak memory read 0 MB for rows that allocate hundreds). Elsewhere than Linux with glibc it does nothing.

    Returns:
        True if some memory was handed back.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
