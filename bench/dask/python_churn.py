#!/usr/bin/env python3
"""A pure-Python object churn under glibc (pymalloc), execmem with
PYTHONMALLOC=malloc and execmem with pymalloc's arenas from execmem.

    bench/dask/python_churn.py [--rounds 5] [--scale 1] [--keep 4]
        [--preload build/lib/libexecmem_preload.so] [--extension build/lib/_execmem_arena...so]

Each configuration runs the churn as its own process under /usr/bin/time -v
(peak RSS, user and system CPU, minor faults), interleaved over the rounds
(round r starts at the r-th configuration); prints medians and the spread
(min-max) as a markdown table. The churn: waves of dicts of tuples, strings,
floats and small lists; a quarter of each wave is kept in a long-lived set
of bounded size, the rest dropped, so that pymalloc's pools and arenas fill,
empty and are reused. Every run prints a checksum, which must agree.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIGS = ("glibc-pymalloc", "execmem-malloc", "execmem-arenas")


def churn(scale: int, keep: int) -> int:
    kept: list = []
    checksum = 0
    for wave in range(12 * scale):
        table = {}
        for i in range(60000):
            key = f"k{wave}-{i}"
            table[key] = (i, float(i) * 0.5, key[::-1], [i, i + 1])
        checksum = (checksum + len(table) + sum(v[0] for v in table.values())) % (1 << 61)
        kept.append([v for k, v in table.items() if hash(k) & 3 == 0])
        if len(kept) > keep:
            kept.pop(0)
        del table
    return checksum


def child(scale: int, keep: int) -> None:
    path = os.environ.get("CHURN_ARENAS")
    if path:  # the extension alone: execmem_dask would import Dask (50 MiB of RSS)
        import importlib.util

        spec = importlib.util.spec_from_file_location("_execmem_arena", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.install()
    print(f"checksum {churn(scale, keep)}")


def find_extension(preload: str) -> str:
    import glob
    import importlib.machinery

    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found = glob.glob(os.path.join(os.path.dirname(preload), "_execmem_arena" + suffix))
        if found:
            return found[0]
    raise FileNotFoundError(f"no _execmem_arena beside {preload} (make build)")


def measure(config: str, scale: int, keep: int, preload: str, extension: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    for k in ("LD_PRELOAD", "PYTHONMALLOC", "CHURN_ARENAS"):
        env.pop(k, None)
    if config != "glibc-pymalloc":
        env.update(LD_PRELOAD=preload, EXECMEM_MAX="4g")
    if config == "execmem-malloc":
        env["PYTHONMALLOC"] = "malloc"
    if config == "execmem-arenas":
        env["CHURN_ARENAS"] = extension
    p = subprocess.run(["/usr/bin/time", "-v", sys.executable, os.path.abspath(__file__),
                        "--child", "--scale", str(scale), "--keep", str(keep)], env=env,
                       capture_output=True,
                       text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"{config}: exit {p.returncode}: {p.stderr[-1500:]}")
    fields = {}
    for line in p.stderr.splitlines():
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
    return {"config": config, "checksum": p.stdout.split()[-1],
            "peak_rss_mib": int(fields["Maximum resident set size (kbytes)"]) / 1024,
            "cpu_s": float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]),
            "user_s": float(fields["User time (seconds)"]),
            "sys_s": float(fields["System time (seconds)"]),
            "minor_faults": int(fields["Minor (reclaiming a frame) page faults"])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--scale", type=int, default=1, help="12 x scale waves of 60 000 entries")
    p.add_argument("--keep", type=int, default=4, help="waves whose quarter stays live")
    p.add_argument("--preload", default=os.path.join(ROOT, "build", "lib",
                                                     "libexecmem_preload.so"))
    p.add_argument("--extension", help="_execmem_arena's path (default: beside --preload)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.scale, a.keep)
        return 0
    if not os.path.isfile(a.preload):
        p.error(f"--preload {a.preload!r} does not exist (make build)")
    try:
        extension = a.extension or find_extension(a.preload)
    except FileNotFoundError as e:
        p.error(str(e))
    rows = []
    for r in range(a.rounds):
        order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
        for config in order:
            row = measure(config, a.scale, a.keep, a.preload, extension)
            rows.append(row)
            print(f"round {r + 1} {config:15} peak {row['peak_rss_mib']:7.1f} MiB "
                  f"cpu {row['cpu_s']:6.2f} s faults {row['minor_faults']}", file=sys.stderr,
                  flush=True)
    if len({row["checksum"] for row in rows}) != 1:
        print("checksums differ:", {row["checksum"] for row in rows})
        return 1
    print(f"Pure-Python churn, scale {a.scale}, keep {a.keep}, {a.rounds} interleaved rounds: "
          "median (min-max)\n")
    print("| configuration | peak RSS MiB | CPU s (user+sys) | sys s | minor faults |")
    print("|---|---:|---:|---:|---:|")
    for config in CONFIGS:
        rs = [row for row in rows if row["config"] == config]

        def cell(key, fmt):
            xs = [row[key] for row in rs]
            return (f"{format(statistics.median(xs), fmt)} ({format(min(xs), fmt)}-"
                    f"{format(max(xs), fmt)})")

        print(f"| {config} | {cell('peak_rss_mib', '.1f')} | {cell('cpu_s', '.2f')} "
              f"| {cell('sys_s', '.2f')} | {cell('minor_faults', '.0f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
