"""Shared by the Dask integration tests: plain programs run by CTest."""
from __future__ import annotations

import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # integrations/dask: execmem_dask

import dask  # noqa: E402

START = time.monotonic()
FAILURES: list[str] = []

# Quiet workers: the tests print what they check.
dask.config.set({"distributed.logging.distributed": "error",
                 "distributed.admin.tick.limit": "1h",
                 "distributed.comm.timeouts.connect": "60s",
                 "distributed.deploy.lost-worker-timeout": "60s"})
logging.getLogger("distributed").setLevel(logging.ERROR)


def preload_path() -> str:
    path = os.environ.get("EXECMEM_PRELOAD")
    if not path or not os.path.isfile(path):
        sys.exit(f"EXECMEM_PRELOAD={path!r}: the test needs the shim's path")
    return path


def check(condition: bool, what: str) -> None:
    print(f"{'ok  ' if condition else 'FAIL'} {what}", flush=True)
    if not condition:
        FAILURES.append(what)


def finish() -> None:
    elapsed = time.monotonic() - START
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed in {elapsed:.1f}s:", *FAILURES, sep="\n  ")
        sys.exit(1)
    print(f"all checks passed in {elapsed:.1f}s")
    sys.exit(0)
