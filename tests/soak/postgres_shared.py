#!/usr/bin/python3
"""PostgreSQL 15 with the whole server in one shared pool (issue 18, item 7).

    postgres_shared.py --preload LIB --top EXECMEM_TOP [--mode short|long]
                       [--allocator shared|private|glibc] [--json FILE]

The server (postmaster, backends, parallel workers, auxiliary processes) runs
under the preload with EXECMEM_SHARED=<unique name> EXECMEM_SHARED_CAPACITY=1g.
Eight sessions each sort about 240 MB of generated rows with work_mem 300MB
(quicksort in memory; a parallel sort: the leader and its workers each sort a
part). Each session's query holds its sorted rows until the test releases an
advisory lock, so the server's memory is measured at a known point, with
every sort either holding all its memory or already failed:

  * the backends' private memory (Private_Clean + Private_Dirty of
    /proc/PID/smaps_rollup, every server process) stays under the capacity
    + 10 % + 16 MiB per process, and the pool's own figures (execmem-top
    --json) never pass the capacity;
  * a session that does not fit gets PostgreSQL's "out of memory" ERROR, at
    least one does (8 x 240 MB cannot fit in 1 GiB), the first session
    (started alone, then held) succeeds, no session fails otherwise;
  * the server goes on serving: a later sort succeeds, the postmaster is the
    one started (no crash-restart), its log has no "terminated by signal";
  * nothing is lost: pgbench's balances agree and pg_amcheck is clean.

short (make test): the first session holds before the seven others start, a
small pgbench. long (make bench): all eight start at once, a larger pgbench.
--allocator private: the preload without a pool (each process on its own,
its default budgets); glibc: no preload. Both only measure (no bound to check).

Every wait is on an event (a lock waiter in pg_locks, a process exit, a
socket accepting) polled every 0.1 s with a generous bound as a failure guard.
The server is stopped and the pool's /dev/shm segment removed on every exit.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
LOCK_KEY = 4242
SESSIONS = 8
WORK_MEM = "300MB"
CAPACITY = 1 << 30
# Rows of the sort: each about 1 KB in memory (an int and 960 bytes of text),
# so about 240 MB per session, well inside its work_mem (quicksort in memory).
ROWS = 240_000
GUARD_S = 240  # failure guard of every wait

checks = 0
failures: list[str] = []


def expect(what: str, ok: bool) -> None:
    global checks
    checks += 1
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr, flush=True)


def die(what: str) -> None:
    print(f"FAIL: {what}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def wait_for(what: str, predicate, guard_s: float = GUARD_S):
    """Polls predicate every 0.1 s until it returns a true value (returned)."""
    deadline = time.monotonic() + guard_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            die(f"{what}: not within {guard_s} s")
        time.sleep(0.1)


class Server:
    def __init__(self, args, work: str, pool: str | None):
        self.args, self.work, self.pool = args, work, pool
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda d: int(d.split("/")[-2]))
        if not bindirs or not os.access(f"{bindirs[-1]}/postgres", os.X_OK):
            die("PostgreSQL is not installed (make deps)")
        self.bin = bindirs[-1]
        self.as_postgres: list[str] = []
        if os.getuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                die("running as root and there is no postgres user")
            self.as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres",
                                "--init-groups", "--"]
            shutil.chown(work, "postgres", "postgres")
        self.data = os.path.join(work, "data")
        self.sock = os.path.join(work, "sock")
        self.log = os.path.join(work, "server.log")
        self.proc: subprocess.Popen | None = None

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.as_postgres + cmd, capture_output=True, text=True,
                              timeout=GUARD_S, env=client_env(), **kw)

    def start(self) -> None:
        r = self.run([f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync"])
        if r.returncode != 0:
            die(f"initdb: {r.stderr[-500:]}")
        os.mkdir(self.sock)
        if self.as_postgres:
            shutil.chown(self.sock, "postgres", "postgres")
        # Set by env(1) after setpriv: setpriv itself, still root, must not
        # join (it would make the pool root's, which postgres cannot open).
        server_env = []
        if self.args.allocator != "glibc":
            server_env.append(f"LD_PRELOAD={self.args.preload}")
        if self.pool:
            server_env += [f"EXECMEM_SHARED={self.pool}", f"EXECMEM_SHARED_CAPACITY={CAPACITY}"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.as_postgres + ["env"] + server_env + [
                    f"{self.bin}/postgres", "-D", self.data, "-k", self.sock, "-c",
                    "listen_addresses=", "-c", "port=5432", "-c", "fsync=off", "-c",
                    "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                    "shared_buffers=64MB", "-c", "max_connections=40", "-c",
                    "max_worker_processes=16", "-c", "max_parallel_workers=16", "-c",
                    "logging_collector=off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=client_env())
        wait_for("the server accepts connections", lambda: self.proc.poll() is not None or
                 subprocess.run([f"{self.bin}/pg_isready", "-q", "-h", self.sock, "-p", "5432",
                                 "-U", "postgres"], env=client_env()).returncode == 0)
        if self.proc.poll() is not None:
            die(f"the server exited at start: {self.log_text()[-800:]}")

    def log_text(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def psql_cmd(self, sql: str) -> list[str]:
        return [f"{self.bin}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                "-p", "5432", "-U", "postgres", "-d", "postgres", "-c", sql]

    def sql(self, sql: str, refused_ok: bool = False) -> str | None:
        """Runs sql in a new session. refused_ok: a poll's query that the full
        pool refuses memory ("out of memory": the backend it starts is a member
        like the sorts) returns None, to be asked again, instead of failing."""
        r = subprocess.run(self.psql_cmd(sql), capture_output=True, text=True, timeout=GUARD_S,
                           env=client_env())
        if r.returncode != 0:
            if refused_ok and "out of memory" in r.stderr:
                return None
            die(f"psql {sql[:60]!r}: {r.stderr.strip()[-400:]}")
        return r.stdout.strip()

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        pm = self.proc.pid
        out = [pm]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pm:
                out.append(int(stat.split("/")[2]))
        return out

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def client_env() -> dict[str, str]:
    """The environment of clients and tools: nothing of execmem's."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("EXECMEM_") and k != "LD_PRELOAD"}


def private_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return 0  # exited meanwhile
    kb = 0
    for m in re.finditer(r"^Private_(?:Clean|Dirty):\s+(\d+) kB", text, re.M):
        kb += int(m.group(1))
    return kb * 1024


def sort_sql(hold: bool) -> str:
    held = f"WHERE pg_advisory_lock_shared({LOCK_KEY}) IS NOT NULL" if hold else ""
    return (f"SET work_mem = '{WORK_MEM}'; SET max_parallel_workers_per_gather = 2; "
            "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
            "SET min_parallel_table_scan_size = 0; "
            "SELECT s.k, length(s.pad) FROM (SELECT k, repeat(md5(k::text), 30) AS pad "
            f"FROM sortsrc ORDER BY k, pad OFFSET 0) s {held} LIMIT 1")


def waiters(server: Server) -> int | None:
    """Sessions waiting on the lock; None when the pool, full of the sorts,
    refused the polling session memory (seen once in a clean clone: "out of
    memory ... SRF multi-call context"): the poll asks again."""
    out = server.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                     f"AND objid = {LOCK_KEY} AND NOT granted", refused_ok=True)
    return None if out is None else int(out)


def pool_snapshot(args, server: Server) -> dict | None:
    if not server.pool:
        return None
    r = server.run([args.top, "--json", server.pool])
    if r.returncode != 0:
        die(f"execmem-top --json {server.pool}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def run(args) -> dict:
    result: dict = {"allocator": args.allocator, "mode": args.mode, "sessions": SESSIONS,
                    "work_mem": WORK_MEM, "rows_per_sort": ROWS}
    work = tempfile.mkdtemp(prefix="execmem-pg-shared.")
    os.chmod(work, 0o755)
    pool = (f"pg-{os.getpid()}-{os.urandom(3).hex()}" if args.allocator == "shared" else None)
    server = Server(args, work, pool)
    sessions: list[subprocess.Popen] = []
    controller: subprocess.Popen | None = None

    def cleanup(*_):
        for p in sessions + ([controller] if controller else []):
            if p.poll() is None:
                p.kill()
        server.stop()
        if pool:
            try:
                os.unlink(f"/dev/shm/execmem.{pool}")
            except OSError:
                pass
        if os.environ.get("SOAK_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    try:
        server.start()
        started_pid = server.proc.pid
        if args.allocator != "glibc":
            with open(f"/proc/{started_pid}/maps") as f:
                expect("the postmaster maps the preload", "libexecmem_preload" in f.read())
        server.sql(f"CREATE TABLE sortsrc AS SELECT (i * 7919) % {ROWS} AS k "
                   f"FROM generate_series(1, {ROWS}) i; "
                   "ALTER TABLE sortsrc SET (parallel_workers = 2)")
        server.sql("VACUUM ANALYZE sortsrc")

        # The controller holds the advisory lock each sort waits on once sorted.
        controller = subprocess.Popen(
            [f"{server.bin}/psql", "-X", "-q", "-At", "-h", server.sock, "-p", "5432", "-U",
             "postgres", "-d", "postgres"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=client_env())
        controller.stdin.write(f"SELECT pg_advisory_lock({LOCK_KEY});\n\\echo locked\n")
        controller.stdin.flush()
        lines = []
        for raw in controller.stdout:  # ends at "locked", or at EOF (psql failed)
            lines.append(raw.strip())
            if lines[-1] == "locked":
                break
        if not lines or lines[-1] != "locked":
            die("the controller could not take the advisory lock")

        outs = []

        def launch(i: int) -> None:
            out = open(os.path.join(work, f"s{i}.out"), "w+")
            err = open(os.path.join(work, f"s{i}.err"), "w+")
            outs.append((out, err))
            sessions.append(subprocess.Popen(server.psql_cmd(sort_sql(True)), stdout=out,
                                             stderr=err, env=client_env()))

        def settled(n: int) -> bool:
            done = sum(p.poll() is not None for p in sessions[:n])
            waiting = waiters(server)
            return waiting is not None and waiting + done == n

        t0 = time.monotonic()
        if args.mode == "short":
            launch(0)
            wait_for("the first session sorts and holds", lambda: settled(1))
            expect("the first session, alone, holds its sort (it did not fail)",
                   sessions[0].poll() is None)
        for i in range(len(sessions), SESSIONS):
            launch(i)
        wait_for("every session holds its sort or has failed", lambda: settled(SESSIONS))
        result["settle_s"] = round(time.monotonic() - t0, 2)

        # The measurement: every sort holds its memory or has failed.
        procs = server.processes()
        private = {pid: private_bytes(pid) for pid in procs}
        snap = pool_snapshot(args, server)
        total_private = sum(private.values())
        bound = int(CAPACITY * 1.1) + 16 * MIB * len(procs)
        result.update(processes=len(procs), private_bytes=total_private,
                      private_max_process=max(private.values()), bound_bytes=bound,
                      holding=SESSIONS - sum(p.poll() is not None for p in sessions))
        if snap is not None:
            members = snap["members"]
            postmaster = [m for m in members if m["pid"] == server.proc.pid]
            result["postmaster_granted"] = postmaster[0]["granted"] if postmaster else None
            result.update(pool_capacity=snap["capacity"], pool_granted=snap["granted"],
                          pool_reserved=snap["reserved"], pool_members=len(members),
                          pool_resident=sum(m["resident"] for m in members))
            expect(f"the pool's capacity is the one asked ({snap['capacity']})",
                   snap["capacity"] == CAPACITY)
            expect(f"the pool never passes its capacity (reserved {snap['reserved']} + granted "
                   f"{snap['granted']})", snap["reserved"] + snap["granted"] <= CAPACITY)
            # A process the server forks or reaps between the two listings (an
            # autovacuum worker, a backend whose session just ended) is seen by one
            # only: a process still running and still outside the pool a few
            # listings later is what fails.
            outside = set(procs) - {m["pid"] for m in members}
            for _ in range(50):
                if not outside:
                    break
                time.sleep(0.1)
                again = pool_snapshot(args, server)
                outside &= set(server.processes()) - {m["pid"] for m in again["members"]}
            expect(f"every server process is a member of the pool (outside: {sorted(outside)} "
                   f"of {len(procs)})", not outside)
            expect(f"the server's private memory {total_private // MIB} MiB <= capacity + 10 % + "
                   f"16 MiB x {len(procs)} processes = {bound // MIB} MiB", total_private <= bound)

        controller.stdin.write(f"SELECT pg_advisory_unlock({LOCK_KEY});\n\\q\n")
        controller.stdin.flush()
        for p in sessions:
            p.wait(timeout=GUARD_S)
        controller.wait(timeout=GUARD_S)
        ok = oom = other = 0
        reasons = []
        for i, (p, (out, err)) in enumerate(zip(sessions, outs)):
            out.seek(0)
            err.seek(0)
            o, e = out.read(), err.read()
            if p.returncode == 0 and o.strip().startswith("0|960"):
                ok += 1
            elif re.search(r"(ERROR|FATAL):\s+out of memory", e):
                oom += 1
            else:
                other += 1
                reasons.append(f"session {i}: status {p.returncode}: {e.strip()[-300:]}")
            if i == 0 and args.mode == "short":
                expect(f"the first session succeeds (status {p.returncode}, {e.strip()[-200:]})",
                       p.returncode == 0)
        result.update(succeeded=ok, out_of_memory=oom, other_errors=other)
        expect(f"no session fails but with out of memory ({'; '.join(reasons)})", other == 0)
        expect(f"at least one session succeeds ({ok})", ok >= 1)
        if args.allocator == "shared":
            expect(f"a session that does not fit gets PostgreSQL's out of memory ({oom} of "
                   f"{SESSIONS})", oom >= 1)
        else:
            expect(f"every session succeeds without a pool ({ok})", ok == SESSIONS)

        # The server goes on serving.
        t1 = time.monotonic()
        later = server.sql(sort_sql(False))
        result["later_sort_s"] = round(time.monotonic() - t1, 2)
        expect(f"a later sort succeeds ({later!r})", later == "0|960")
        plan = server.sql("SET work_mem = '300MB'; SET max_parallel_workers_per_gather = 2; "
                          "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
                          "SET min_parallel_table_scan_size = 0; EXPLAIN (ANALYZE, COSTS OFF, "
                          "TIMING OFF) SELECT k, repeat(md5(k::text), 30) AS pad FROM sortsrc "
                          "ORDER BY k, pad")
        sorts = [int(kb) for kb in re.findall(r"Sort Method: quicksort\s+Memory: (\d+)kB", plan)]
        result["sort_memory_bytes"] = sum(sorts) * 1024
        result["sort_processes"] = len(sorts)
        expect(f"a sort is a quicksort in memory, in parallel ({plan!r})",
               len(sorts) >= 1 and "external" not in plan)

        scale, clients, txns = (1, 4, 150) if args.mode == "short" else (10, 4, 2000)
        r = subprocess.run([f"{server.bin}/pgbench", "-q", "-i", "-s", str(scale), "-h",
                            server.sock, "-p", "5432", "-U", "postgres", "postgres"],
                           capture_output=True, text=True, timeout=600, env=client_env())
        expect(f"pgbench -i ({r.stderr.strip()[-200:]})", r.returncode == 0)
        r = subprocess.run([f"{server.bin}/pgbench", "-n", "-c", str(clients), "-j", "2", "-t",
                            str(txns), "--random-seed=1234", "-h", server.sock, "-p", "5432",
                            "-U", "postgres", "postgres"], capture_output=True, text=True,
                           timeout=1200, env=client_env())
        expect(f"pgbench ({r.stderr.strip()[-200:]})", r.returncode == 0)
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
        result["pgbench_tps"] = float(m.group(1)) if m else None
        sums = server.sql("SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
                          "(SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(tbalance) "
                          "FROM pgbench_tellers), (SELECT sum(delta) FROM pgbench_history), "
                          "(SELECT count(*) FROM pgbench_history)").split("|")
        expect(f"pgbench's balances agree ({sums})",
               len(sums) == 5 and sums[0] == sums[1] == sums[2] == sums[3] != "")
        expect(f"every transaction is in the history ({sums[-1]})",
               sums[-1] == str(clients * txns))
        r = subprocess.run([f"{server.bin}/pg_amcheck", "-h", server.sock, "-p", "5432", "-U",
                            "postgres", "--install-missing", "--heapallindexed", "--parent-check",
                            "-d", "postgres"], capture_output=True, text=True, timeout=600,
                           env=client_env())
        expect(f"pg_amcheck is clean (status {r.returncode}: {(r.stdout + r.stderr)[:300]})",
               r.returncode == 0)

        expect("the postmaster is the one started (no crash-restart)",
               server.proc.poll() is None and
               open(os.path.join(server.data, "postmaster.pid")).readline().strip() ==
               str(started_pid))
        status = server.stop()
        expect(f"the server shuts down cleanly (status {status})", status == 0)
        log = server.log_text()
        bad = re.findall(r".*(?:terminated by signal|PANIC|terminating any other active server"
                         r"|all server processes terminated|was terminated by).*", log)
        expect(f"the server log has no crash ({bad[:3]})", not bad)
        result["log_out_of_memory_errors"] = len(re.findall(r"ERROR:\s+out of memory", log))
        return result
    finally:
        cleanup()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preload", required=True)
    p.add_argument("--top", required=True, help="build/bin/execmem-top")
    p.add_argument("--mode", choices=["short", "long"], default="short")
    p.add_argument("--allocator", choices=["shared", "private", "glibc"], default="shared")
    p.add_argument("--json", help="write the figures there")
    args = p.parse_args()
    for path in (args.preload, args.top):
        if not os.path.isfile(path):
            print(f"FAIL: {path} does not exist", file=sys.stderr)
            return 1
    args.preload, args.top = os.path.abspath(args.preload), os.path.abspath(args.top)
    t0 = time.monotonic()
    result = run(args)
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["failures"] = failures
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(f"soak.postgres_shared ({args.mode}, {args.allocator}): {checks} checks, "
          f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
