"""CPython's small-object arenas from execmem: finds and loads _execmem_arena
(integrations/dask/ext/arena.c, built by CMake into build/lib beside the shim).

pymalloc keeps serving Python's small objects; each arena (1 MiB) it carves
them from comes from execmem (PyObject_SetArenaAllocator) and counts in the
budget. That replaces PYTHONMALLOC=malloc, which sent every small object
through execmem's thread caches. See docs/python-arenas.md.
"""
from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import os
import sys

from execmem_dask import _lib

MODULE = "_execmem_arena"
ENV_SWITCH = "EXECMEM_DASK_PYTHON_ARENAS"  # 1: required, 0: off, unset: when found
ENV_PATH = "EXECMEM_ARENA_EXT"  # the extension's path, else searched for

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _candidates(preload: str | None) -> list[str]:
    dirs = []
    if preload:
        dirs.append(os.path.dirname(preload))  # build/lib, or where it was installed
    dirs += [os.path.join(_REPO, "build", "lib"), "/usr/local/lib", "/usr/lib"]
    out = []
    for d in dirs:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            out += glob.glob(os.path.join(d, MODULE + suffix))
    return out


def find_extension(preload: str | None = None) -> str | None:
    """The path of _execmem_arena for this Python: $EXECMEM_ARENA_EXT, else the
    directory of the shim (preload, or the one mapped in this process), the
    checkout's build/lib, /usr/local/lib, /usr/lib."""
    path = os.environ.get(ENV_PATH)
    if path:
        return path if os.path.isfile(path) else None
    found = _candidates(preload or _lib.mapped_preload())
    return found[0] if found else None


def load():
    """The _execmem_arena module; ImportError saying what is missing."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    path = find_extension()
    if path is None:
        where = os.environ.get(ENV_PATH) or "beside the shim or in build/lib"
        raise ImportError(f"execmem: {MODULE} (CPython arenas from execmem) not found "
                          f"({where}): build it with `make build` (needs python3-dev)")
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[MODULE] = module
    return module


def install() -> dict:
    """Arenas from execmem from now on in this process; returns the module's
    stats. RuntimeError without the shim, ImportError without the module."""
    module = load()
    module.install()
    return module.stats()


def stats() -> dict:
    """The module's counters, or {"installed": False} when it is not loaded."""
    module = sys.modules.get(MODULE)
    return module.stats() if module is not None else {"installed": False}


def spill_trampoline() -> int | None:
    """The address of the module's C spill-hook trampoline, or None when the
    module cannot be loaded (the hooks then go through ctypes)."""
    try:
        return load().spill_trampoline_address()
    except (ImportError, OSError):
        return None
