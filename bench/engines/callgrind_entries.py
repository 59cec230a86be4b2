#!/usr/bin/python3
"""Instructions in a program's calls into the allocator, from a callgrind dump.

    bench/engines/callgrind_entries.py CALLGRIND_OUT [ALLOCATOR_OBJECT]

Sums, over every call into an allocator entry point (malloc, free, calloc,
realloc, malloc_usable_size, the aligned and sized forms, jemalloc's *allocx,
the C++ operators) made from outside the allocator, the call's inclusive
instructions: what the program pays its allocator, whichever allocator it is.
A call is from inside the allocator when its caller is itself an entry point
or lies in ALLOCATOR_OBJECT (the preload's path; when none is given, the
object of any libjemalloc). Callgrind names a function by one of its aliases (mimalloc's
malloc_usable_size is "malloc_size"): the allocator object's other names at an
entry point's address count as that entry point (nm -D). Also sums the
inclusive instructions of TIMED (serverCron by default): work done by the clock,
not by the requests, which a slowed, loaded run does more often.
Prints one line:
    TOTAL_IR TIMED_IR ALLOC_IR ENTRY=CALLS/IR ... (entries sorted by IR)
"""
import re
import subprocess
import sys

ENTRIES = {
    "malloc", "free", "calloc", "realloc", "malloc_usable_size", "posix_memalign",
    "aligned_alloc", "memalign", "valloc", "pvalloc", "reallocarray", "nallocx",
    "mallocx", "rallocx", "xallocx", "sallocx", "dallocx", "sdallocx", "free_sized",
    "free_aligned_sized", "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
}
TIMED = {"serverCron"}
NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print("usage: callgrind_entries.py CALLGRIND_OUT [ALLOCATOR_OBJECT]", file=sys.stderr)
        return 2
    own = sys.argv[2] if len(sys.argv) == 3 and sys.argv[2] else None
    names = {"ob": {}, "fn": {}}
    alias = {}
    aliased = set()

    def read_aliases(obj: str) -> None:
        if obj in aliased:
            return
        aliased.add(obj)
        try:
            out = subprocess.run(["nm", "-D", "--defined-only", obj], capture_output=True,
                                 text=True, check=False).stdout
        except OSError:
            return
        at = {}
        for row in out.splitlines():
            parts = row.split()
            if len(parts) == 3:
                at.setdefault(parts[0], []).append(parts[2].split("@")[0])
        for group in at.values():
            entry = next((n for n in group if n in ENTRIES), None)
            if entry is not None:
                for n in group:
                    alias.setdefault(n, entry)

    def entry_of(fn_name: str, obj: str) -> str | None:
        if fn_name in ENTRIES:
            return fn_name
        if own is not None and obj == own or own is None and "libjemalloc" in obj:
            read_aliases(obj)
            return alias.get(fn_name)
        return None

    def name(kind: str, spec: str) -> str:
        m = NAMED.match(spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), spec)

    def inside(obj: str, fn: str) -> bool:
        if entry_of(fn, obj) is not None:
            return True
        if own is not None:
            return obj == own
        return "libjemalloc" in obj

    total = None
    ob = fn = ""
    callee = None
    cob = None
    timed = 0
    pending = 0
    per = {}
    try:
        f = open(sys.argv[1], encoding="utf-8", errors="replace")
    except OSError as e:
        print(f"callgrind_entries.py: {e.strerror}: {sys.argv[1]}", file=sys.stderr)
        return 1
    with f:
        for line in f:
            if pending:
                pending = 0
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                if callee is not None:
                    entry = entry_of(callee, cob if cob is not None else ob)
                    if entry is not None and not inside(ob, fn):
                        c, i = per.get(entry, (0, 0))
                        per[entry] = (c + calls, i + ir)
                    if callee in TIMED and fn not in TIMED:
                        timed += ir
                callee = None
                cob = None
                continue
            if line.startswith("ob="):
                ob = name("ob", line[3:].rstrip("\n"))
            elif line.startswith("fn="):
                fn = name("fn", line[3:].rstrip("\n")).split("'")[0]
            elif line.startswith("cob="):
                cob = name("ob", line[4:].rstrip("\n"))
            elif line.startswith("cfn="):
                callee = name("fn", line[4:].rstrip("\n")).split("'")[0]
            elif line.startswith("calls="):
                calls = int(line[6:].split()[0])
                pending = 1
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total is None:
        print(f"callgrind_entries.py: no summary line in {sys.argv[1]}", file=sys.stderr)
        return 1
    alloc = sum(i for _, i in per.values())
    rest = " ".join(f"{k}={c}/{i}" for k, (c, i) in sorted(per.items(), key=lambda kv: -kv[1][1]))
    print(f"{total} {timed} {alloc} {rest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
