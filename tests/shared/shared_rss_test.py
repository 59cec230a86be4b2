#!/usr/bin/python3
"""The shared pool's RSS target (issue 18): members under the preload together
are never granted more than the capacity, and their RSS stays within the
capacity + 10 % + 16 MiB per member.

    shared_rss_test.py PRELOAD SHARED_CHURN EXECMEM_TOP [MEMBERS]

MEMBERS (3) processes of shared_churn join one pool of 200 MiB, each churning
mixed-size blocks (64 B - 2 MiB) toward 120 MiB live, so together they ask for
far more than the pool holds. While they churn, execmem-top --json snapshots
the pool over and over: reserved + granted never passes the capacity. Once
every member holds (it printed "held N"), their RSS (VmRSS) together is
checked against capacity * 1.1 + 16 MiB * MEMBERS, and the pool must have
been the limit (a member was refused, nine tenths of the capacity granted).
Then each frees everything and exits 0. The pool is named after this process
and removed at exit; every wait is on a member's output with a 120 s guard.
"""
import json
import os
import select
import subprocess
import sys
import time

MIB = 1 << 20
CAPACITY = 200 * MIB
ASK_MIB = 120
GUARD_S = 120


def main() -> int:
    if len(sys.argv) not in (4, 5):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    preload, churn, top = (os.path.abspath(a) for a in sys.argv[1:4])
    n = int(sys.argv[4]) if len(sys.argv) == 5 else 3
    pool = f"test-rss-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECMEM_")}
    env.update(LD_PRELOAD=preload, EXECMEM_SHARED=pool, EXECMEM_SHARED_CAPACITY=str(CAPACITY),
               EXECMEM_MAX="1g")
    failures = []

    def check(what, ok):
        if not ok:
            failures.append(what)
            print(f"FAIL: {what}", file=sys.stderr, flush=True)

    members = []
    try:
        for i in range(n):
            members.append(subprocess.Popen([churn, str(ASK_MIB), str(i + 1)], env=env,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
        held = {}
        snapshots = 0
        worst = 0
        deadline = time.monotonic() + GUARD_S
        while len(held) < n:
            if time.monotonic() > deadline:
                check(f"every member holds within {GUARD_S} s ({len(held)} of {n})", False)
                return 1
            # Sample the pool while the members churn (the wait for their
            # lines below is the loop's pace; a snapshot may find no pool yet).
            r = subprocess.run([top, "--json", pool], capture_output=True, text=True,
                               timeout=GUARD_S, env=env | {"LD_PRELOAD": ""})
            if r.returncode == 0:
                doc = json.loads(r.stdout)
                snapshots += 1
                worst = max(worst, doc["reserved"] + doc["granted"])
                check(f"snapshot {snapshots}: reserved {doc['reserved']} + granted "
                      f"{doc['granted']} <= capacity {doc['capacity']}",
                      doc["reserved"] + doc["granted"] <= doc["capacity"] == CAPACITY)
            ready, _, _ = select.select([m.stdout for m in members if m.pid not in held], [],
                                        [], 0.05)
            for m in members:
                if m.stdout in ready:
                    line = m.stdout.readline()
                    if not line.startswith("held "):
                        check(f"member {m.pid} prints held (got {line!r}, "
                              f"{m.stderr.read()[-300:]!r})", False)
                        return 1
                    held[m.pid] = line.split()
        rss = {}
        for m in members:
            with open(f"/proc/{m.pid}/status") as f:
                kb = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")]
            rss[m.pid] = kb[0] * 1024
        r = subprocess.run([top, "--json", pool], capture_output=True, text=True,
                           timeout=GUARD_S, env=env | {"LD_PRELOAD": ""})
        doc = json.loads(r.stdout)
        granted = doc["reserved"] + doc["granted"]
        total_rss = sum(rss.values())
        bound = int(CAPACITY * 1.1) + 16 * MIB * n
        live_mib = sum(int(h[1]) for h in held.values())
        print(f"{n} members, capacity {CAPACITY // MIB} MiB: live {live_mib} MiB, pool granted "
              f"{granted / MIB:.1f} MiB (largest seen {worst / MIB:.1f} in {snapshots} "
              f"snapshots), RSS {total_rss / MIB:.1f} MiB "
              f"({', '.join(f'{v / MIB:.1f}' for v in rss.values())}), bound {bound // MIB} MiB")
        check(f"held: granted {granted} <= capacity", granted <= CAPACITY)
        check(f"RSS {total_rss / MIB:.1f} MiB <= capacity + 10 % + 16 MiB x {n} = "
              f"{bound // MIB} MiB", total_rss <= bound)
        check(f"the pool was the limit: a member was refused ({held})",
              any(h[-1] == "refused" for h in held.values()))
        check(f"the members filled the pool (granted {granted / MIB:.1f} MiB)",
              granted >= CAPACITY * 9 // 10)
        check("every member is in the pool",
              {m["pid"] for m in doc["members"]} >= {m.pid for m in members})
        for m in members:
            m.stdin.close()
        for m in members:
            out = m.stdout.read()
            rc = m.wait(timeout=GUARD_S)
            check(f"member {m.pid} frees and exits 0 (status {rc}, {out!r})",
                  rc == 0 and "freed" in out)
        return 1 if failures else 0
    finally:
        for m in members:
            if m.poll() is None:
                m.kill()
                m.wait()
        try:
            os.unlink(f"/dev/shm/execmem.{pool}")
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
