#!/usr/bin/python3
"""What a shared pool costs PostgreSQL against a private one (issue 18, speed).

    bench/engines/pg_shared_cost.py --preload LIB --top EXECMEM_TOP [--rounds 5]
                                    [--transactions 2000] [--json FILE]

Two copies of one initdb'd cluster run under the preload at once: "private"
(each process its own pool, the shim's defaults) and "shared" (the whole
server in one pool, EXECMEM_SHARED, 4 GiB: never full here). Per round, in
turn (round r starts with the r-th), each gets the same pgbench TPC-B run
(4 clients, fixed seed and transaction count). Measured per run: tps, and the
CPU time of the whole server per transaction (user + system of the postmaster,
its live children and the children it reaped, from /proc/PID/stat: less moved
by other load than wall time). Prints medians and the ratios shared / private.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "soak"))
import postgres_shared as pg  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(server) -> float:
    """CPU seconds of the server so far: the postmaster's own and reaped children's,
    plus its live children's."""
    total = 0
    for pid in server.processes():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total += utime + stime + (cutime + cstime if pid == server.proc.pid else 0)
    return total / TICK


def idle(server, baseline: int) -> bool:
    return len(server.processes()) <= baseline


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preload", required=True)
    p.add_argument("--top", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--transactions", type=int, default=2000)
    p.add_argument("--json")
    a = p.parse_args()
    a.preload, a.top = os.path.abspath(a.preload), os.path.abspath(a.top)
    servers = {}
    works = []
    try:
        for variant in ("private", "shared"):
            ns = argparse.Namespace(preload=a.preload, top=a.top, allocator=variant, mode="long")
            work = tempfile.mkdtemp(prefix=f"execmem-pg-cost-{variant}.")
            os.chmod(work, 0o755)
            works.append(work)
            pool = f"pgcost-{os.getpid()}" if variant == "shared" else None
            server = pg.Server(ns, work, pool)
            servers[variant] = server  # stopped in finally, whatever happens
            if pool:
                pg.CAPACITY = 4 << 30  # read by start(): never full here
            server.start()
            pg.CAPACITY = 1 << 30
            r = subprocess.run([f"{server.bin}/pgbench", "-q", "-i", "-s", "5", "-h", server.sock,
                                "-p", "5432", "-U", "postgres", "postgres"], capture_output=True,
                               text=True, timeout=600, env=pg.client_env())
            if r.returncode != 0:
                pg.die(f"{variant}: pgbench -i: {r.stderr[-300:]}")
        baseline = {v: len(s.processes()) for v, s in servers.items()}
        rows = []
        names = list(servers)
        for rnd in range(a.rounds):
            for i in range(len(names)):
                v = names[(i + rnd) % len(names)]
                s = servers[v]
                pg.wait_for(f"{v}: back to idle", lambda: idle(s, baseline[v]))
                cpu0 = server_cpu(s)
                r = subprocess.run([f"{s.bin}/pgbench", "-n", "-c", "4", "-j", "2", "-t",
                                    str(a.transactions), "--random-seed=1234", "-h", s.sock,
                                    "-p", "5432", "-U", "postgres", "postgres"],
                                   capture_output=True, text=True, timeout=1200,
                                   env=pg.client_env())
                if r.returncode != 0:
                    pg.die(f"{v}: pgbench: {r.stderr[-300:]}")
                pg.wait_for(f"{v}: the clients' backends exit", lambda: idle(s, baseline[v]))
                cpu = server_cpu(s) - cpu0
                m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
                rows.append({"variant": v, "round": rnd + 1, "tps": float(m.group(1)),
                             "cpu_us_per_txn": cpu * 1e6 / (4 * a.transactions)})
                print(f"  round {rnd + 1} {v:8} tps {rows[-1]['tps']:8.1f} server CPU "
                      f"{rows[-1]['cpu_us_per_txn']:7.1f} us/txn", file=sys.stderr, flush=True)
        med = {v: {k: statistics.median(r[k] for r in rows if r["variant"] == v)
                   for k in ("tps", "cpu_us_per_txn")} for v in names}
        out = {"rounds": a.rounds, "transactions_per_client": a.transactions, "clients": 4,
               "medians": med, "rows": rows,
               "tps_ratio_shared_over_private": med["shared"]["tps"] / med["private"]["tps"],
               "cpu_ratio_shared_over_private":
                   med["shared"]["cpu_us_per_txn"] / med["private"]["cpu_us_per_txn"]}
        print(json.dumps(out["medians"]), f"tps ratio {out['tps_ratio_shared_over_private']:.3f}",
              f"CPU/txn ratio {out['cpu_ratio_shared_over_private']:.3f}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
        return 0
    finally:
        for s in servers.values():
            s.stop()
        try:
            os.unlink(f"/dev/shm/execmem.pgcost-{os.getpid()}")
        except OSError:
            pass
        for w in works:
            shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
