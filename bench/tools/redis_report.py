"""The Redis section of bench/run.sh's report (imported by report.py).

Reads bench/redis/run.sh's files in raw/redis/: <variant>.r<round>.csv
(redis-benchmark --csv), .check (the library /proc/PID/maps showed, the
server's exit status, the command) and, for execmem, .stats.json (the shim's
exit report). Medians of requests/s per test per variant over the rounds;
ratios are execmem's (and execmem-quota's) requests/s over glibc's, mimalloc's
and the best of jemalloc / tcmalloc / mimalloc: above 1, execmem serves more.
Writes redis.json and redis.md; report.py puts the same table in results.md.
"""
import csv
import json
import os
import statistics

EXECMEM_VARIANTS = ("execmem", "execmem-quota")
BEST_OF = ("jemalloc", "tcmalloc", "mimalloc")
MIN_ALLOCATIONS = 1000  # an execmem run whose report counts fewer did not serve Redis


def read_check(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            values[key] = value
    return values


def read_csv(path):
    """{TEST: requests/s} from redis-benchmark --csv."""
    with open(path, newline="") as f:
        return {row["test"]: float(row["rps"]) for row in csv.DictReader(f)
                if row.get("test") and row.get("rps")}


def executor_allocations(path):
    with open(path) as f:
        stats = json.load(f)
    default = next((e for e in stats.get("executors", []) if e.get("name") == "default"), {})
    return default.get("allocations", 0), default.get("oom_count", 0)


def collect(raw, rounds, requests, variants, problems):
    tests, by_variant, meta = [], {}, {}
    for v in variants:
        per_test, seen, allocations = {}, set(), []
        for r in range(1, rounds + 1):
            base = os.path.join(raw, f"{v}.r{r}")
            what = f"redis under {v} round {r}"
            try:
                check = read_check(base + ".check")
                rps = read_csv(base + ".csv")
            except (OSError, ValueError, KeyError) as e:
                problems.append({"what": what, "detail": f"no result ({e})"})
                continue
            if not rps:
                problems.append({"what": what, "detail": "redis-benchmark reported no test"})
                continue
            if check.get("preload", "none") == "none":
                problems.append({"what": what, "detail": "the server ran without a preload"})
                continue
            seen.add(check["preload"])
            meta = {k: check.get(k) for k in ("command", "server")}
            if v in EXECMEM_VARIANTS:
                try:
                    n, ooms = executor_allocations(base + ".stats.json")
                except (OSError, ValueError) as e:
                    problems.append({"what": what, "detail": f"no EXECMEM_STATS report ({e})"})
                    continue
                if n < MIN_ALLOCATIONS or ooms:
                    problems.append({"what": what, "detail":
                                     f"execmem's report: {n} allocations, {ooms} OOMs"})
                    continue
                allocations.append(n)
            for test, value in rps.items():
                if test not in tests:
                    tests.append(test)
                per_test.setdefault(test, []).append(value)
        entry = {"rps": {t: statistics.median(x) for t, x in per_test.items()},
                 "rps_all": per_test, "runs": max((len(x) for x in per_test.values()), default=0),
                 "preload_seen": sorted(seen)}
        if v in EXECMEM_VARIANTS:
            entry["execmem_allocations"] = allocations
        by_variant[v] = entry
    ratios = {}
    for v in (x for x in variants if x in EXECMEM_VARIANTS):
        mine = by_variant[v]["rps"]
        r = {"glibc": {}, "mimalloc": {}, "best": {}}
        for t in tests:
            if t not in mine:
                continue
            for base in ("glibc", "mimalloc"):
                other = by_variant.get(base, {}).get("rps", {}).get(t)
                if other:
                    r[base][t] = mine[t] / other
            best = [(by_variant[b]["rps"][t], b) for b in BEST_OF
                    if by_variant.get(b, {}).get("rps", {}).get(t)]
            if best:
                value, name = max(best)
                r["best"][t] = {"best": name, "ratio": mine[t] / value}
        ratios[v] = r
    return {"rounds": rounds, "requests": requests, "tests": tests, "variants": variants,
            "command": meta.get("command"), "server": meta.get("server"),
            "by_allocator": by_variant, "ratios": ratios}


def fmt(v):
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def markdown(redis, level=1):
    h = "#" * level
    variants = redis["variants"]
    mine = [v for v in variants if v in EXECMEM_VARIANTS]
    # Ratio columns for the baselines that ran: glibc, mimalloc, the best of BEST_OF.
    against = [b for b in ("glibc", "mimalloc") if b in variants]
    has_best = any(b in variants for b in BEST_OF)
    header = ["test"] + variants
    for v in mine:
        header += [f"{v} ÷ {b}" for b in against] + ([f"{v} ÷ best"] if has_best else [])
    rows = []
    for t in redis["tests"]:
        row = [t] + [fmt(redis["by_allocator"][v]["rps"].get(t)) for v in variants]
        for v in mine:
            r = redis["ratios"][v]
            best = r["best"].get(t)
            row += [fmt(r[b].get(t)) for b in against]
            if has_best:
                row.append(f"{fmt(best['ratio'])} ({best['best']})" if best else "—")
        rows.append(row)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [f"{h} Redis: requests per second (redis-benchmark)", "",
            f"{redis.get('server') or 'redis-server'}, on a unix socket, started under each "
            "allocator by bench/redis/run.sh and stopped by its pid; "
            f"`{redis.get('command') or 'redis-benchmark'}`; medians of {redis['rounds']} "
            "round(s), allocators interleaved. glibc is glibc's malloc preloaded "
            "(libexecmem_bench_glibc.so: Debian's redis-server links libjemalloc, which would "
            "serve it otherwise). Ratios above 1: execmem serves more requests per second.", "",
            "\n".join(lines), ""]


def write(redis, out_dir, generated, machine):
    doc = {"generated": generated, "machine": machine, **redis}
    with open(os.path.join(out_dir, "redis.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "redis.md"), "w") as f:
        f.write("\n".join(markdown(redis, level=1)))
