#!/usr/bin/env python3
"""Turns bench/run.sh's raw measurements into results.json, results.md and chart.png.

Reads (under --raw):
  micro/<allocator>.r<round>.json       Google Benchmark JSON of execmem-bench-micro
  api.json                              Google Benchmark JSON of execmem-bench-api (optional)
  macro/<workload>.<variant>.r<round>.{json,stdout}   execmem-measure record, program output
                                        (variant: an allocator, or execmem-quota)
  macro/<workload>.execmem-quota.r<round>.stats.json   the shim's exit report
  redis/...                             bench/redis/run.sh's runs (see redis_report.py)
  callgrind/<allocator>.<pairs>.out     callgrind profiles of execmem-pairs
  failures.txt                          runs that failed (tab-separated: what, detail)

Medians over rounds; ratios are execmem's value over each baseline's (below 1:
execmem is faster or smaller). Exit status 1 when anything failed or is
missing, or when a workload's checksum differs between allocators; the files
are written either way, with the problems listed in them.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

import redis_report

REFERENCE = "execmem"
QUOTA = "execmem-quota"  # execmem through the shim with budgets set (see run.sh)
BEST_OF = ("jemalloc", "tcmalloc", "mimalloc")  # "the best" in the macro and Redis ratios
# 2: macro gains execmem-quota in by_allocator, ops / ops_per_s, versus, quota;
#    top level gains macro_variants, macro_quota, redis, macro_geomean (added later,
#    additive). Everything of 1 is kept.
SCHEMA_VERSION = 2


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--micro-rounds", type=int, required=True)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--allocators", required=True, help="name=preload,... (empty preload: none)")
    p.add_argument("--workloads", required=True)
    p.add_argument("--shim-quota", default="", help="the EXECMEM_* budgets of execmem-quota")
    p.add_argument("--macro-quota", default="",
                   help="the EXECMEM_* budgets of execmem-quota in the macro and Redis sections")
    p.add_argument("--redis-rounds", type=int, default=0, help="0: no Redis section")
    p.add_argument("--redis-requests", type=int, default=0)
    p.add_argument("--redis-allocators", default="")
    p.add_argument("--pairs", required=True, help="N1,N2 of the callgrind runs")
    p.add_argument("--chart-script", required=True)
    return p.parse_args()


def read_json(path, problems, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        problems.append({"what": what, "detail": f"missing {os.path.basename(path)}"})
    except (json.JSONDecodeError, OSError) as e:
        problems.append({"what": what, "detail": f"unreadable {os.path.basename(path)}: {e}"})
    return None


def median(values):
    return statistics.median(values) if values else None


def ratios(by_alloc, allocators):
    """execmem's value over each baseline's, where both exist."""
    ref = by_alloc.get(REFERENCE)
    if ref is None:
        return {}
    return {a: ref / by_alloc[a] for a in allocators
            if a != REFERENCE and by_alloc.get(a) not in (None, 0)}


def package_version(package):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "machine": platform.machine()}


PACKAGES = {"glibc": "libc6", "jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4",
            "mimalloc": "libmimalloc2.0"}


# ---- Google Benchmark ----------------------------------------------------------

def benchmark_ns(doc, problems, what):
    """{name: ns per item} from a Google Benchmark JSON document (medians if aggregated)."""
    result = {}
    entries = doc.get("benchmarks", []) if isinstance(doc, dict) else []
    aggregated = any(e.get("run_type") == "aggregate" for e in entries)
    for e in entries:
        if aggregated and e.get("aggregate_name") != "median":
            continue
        name = e.get("run_name", e.get("name")) if aggregated else e.get("name")
        if e.get("error_occurred"):
            problems.append({"what": f"{what}: {name}", "detail": e.get("error_message", "error")})
            continue
        ips = e.get("items_per_second")
        if not ips:
            problems.append({"what": f"{what}: {name}", "detail": "no items_per_second"})
            continue
        result[name] = 1e9 / ips
    if not result:
        problems.append({"what": what, "detail": "no benchmark results"})
    return result


def collect_micro(args, allocators, problems):
    per_alloc = {a: {} for a in allocators}  # alloc -> name -> [ns per round]
    order = []
    for a in allocators:
        for r in range(1, args.micro_rounds + 1):
            doc = read_json(os.path.join(args.raw, "micro", f"{a}.r{r}.json"), problems,
                            f"micro under {a} round {r}")
            if doc is None:
                continue
            for name, ns in benchmark_ns(doc, problems, f"micro under {a} round {r}").items():
                if name not in order:
                    order.append(name)
                per_alloc[a].setdefault(name, []).append(ns)
    micro = {}
    for name in order:
        by_alloc = {a: median(per_alloc[a].get(name, [])) for a in allocators}
        micro[name] = {"ns_per_pair": by_alloc,
                       "ratios": ratios(by_alloc, allocators),
                       "rounds": {a: len(per_alloc[a].get(name, [])) for a in allocators}}
        for a in allocators:
            if by_alloc[a] is None:
                problems.append({"what": f"micro {name} under {a}", "detail": "no result"})
    return micro


def collect_api(args, problems):
    path = os.path.join(args.raw, "api.json")
    if not os.path.exists(path) and not os.path.exists(path.replace(".json", ".stderr")):
        return None  # not run (execmem not among the allocators)
    doc = read_json(path, problems, "api benchmark")
    if doc is None:
        return None
    ns = benchmark_ns(doc, problems, "api benchmark")
    quota = {}
    for name, value in ns.items():
        m = re.fullmatch(r"(.*)/quota:([01])(.*)", name)
        if m:
            key = m.group(1) + m.group(3)
            quota.setdefault(key, {})["on_ns" if m.group(2) == "1" else "off_ns"] = value
    for entry in quota.values():
        if entry.get("on_ns") and entry.get("off_ns"):
            entry["on_over_off"] = entry["on_ns"] / entry["off_ns"]
    switching = {k: v for k, v in ns.items() if k.startswith("BM_Executor")}
    # Plain runs, or the mean and median of repetitions (stddev and cv are no counts).
    runs = [e for e in doc.get("benchmarks", [])
            if e.get("run_type") != "aggregate" or e.get("aggregate_name") in ("mean", "median")]
    peaks = [e["quota_peak_used_mib"] for e in runs if "quota_peak_used_mib" in e]
    ooms = max([e.get("quota_ooms", 0) for e in runs] or [0])  # cumulative counter
    if ooms:
        problems.append({"what": "api quota executor", "detail": f"{ooms:.0f} OOMs"})
    return {"ns_per_pair": ns, "quota": quota, "switching": switching,
            "quota_executor_peak_used_mib": max(peaks) if peaks else None}


def collect_shim_quota(args, allocators, micro, problems):
    """execmem through the shim with default budgets (off) against tight ones (on)."""
    if REFERENCE not in allocators:
        return None
    on = collect_micro(args, ["execmem-quota"], problems)
    table = {}
    for name, e in micro.items():
        off_ns = e["ns_per_pair"].get(REFERENCE)
        on_ns = on.get(name, {}).get("ns_per_pair", {}).get("execmem-quota")
        table[name] = {"off_ns": off_ns, "on_ns": on_ns,
                       "on_over_off": on_ns / off_ns if on_ns and off_ns else None}
    # The shim's exit report shows whether the budgets were really exercised.
    executor = {"peak_used": None, "initial": None, "max": None, "oom_count": 0, "spill_calls": 0}
    for r in range(1, args.micro_rounds + 1):
        stats = read_json(os.path.join(args.raw, "micro", f"execmem-quota.r{r}.stats.json"),
                          problems, f"shim stats of execmem-quota round {r}")
        default = next((e for e in (stats or {}).get("executors", [])
                        if e.get("name") == "default"), None)
        if default is None:
            continue
        executor["peak_used"] = max(executor["peak_used"] or 0, default.get("peak_used", 0))
        for k in ("initial", "max"):
            executor[k] = default.get(k)
        for k in ("oom_count", "spill_calls"):
            executor[k] += default.get(k, 0)
    if executor["oom_count"]:
        problems.append({"what": "shim quota run", "detail": f"{executor['oom_count']} OOMs"})
    return {"budgets": args.shim_quota, "executor": executor, "benchmarks": table}


# ---- macro workloads --------------------------------------------------------------

CHECKSUM = re.compile(r"^checksum=([0-9a-f]+)$", re.M)
OPS = re.compile(r"^ops=([0-9]+)$", re.M)


def macro_variants(allocators):
    return allocators + ([QUOTA] if REFERENCE in allocators else [])


def best_of(values, largest=False):
    """(name, value) of the best of BEST_OF's values (the smallest, or the
    largest for a throughput), or (None, None)."""
    present = [(values[a], a) for a in BEST_OF if values.get(a)]
    if not present:
        return None, None
    value, name = (max if largest else min)(present)
    return name, value


def versus(entry, variants):
    """Each execmem variant's time, peak RSS (and throughput) over the best of
    BEST_OF's and over glibc's."""
    out = {}
    for v in (x for x in variants if x in (REFERENCE, QUOTA)):
        mine, e = entry["by_allocator"][v], {}
        for key in ("time_s", "peak_rss_kb", "ops_per_s", "cpu_s", "minor_faults"):
            if mine.get(key) is None:
                continue
            values = {a: x.get(key) for a, x in entry["by_allocator"].items()}
            best, best_value = best_of(values, largest=key == "ops_per_s")
            glibc = values.get("glibc")
            e[key] = {"best": best, "over_best": mine[key] / best_value if best_value else None,
                      "over_glibc": mine[key] / glibc if glibc else None}
        out[v] = e
    return out


def quota_report(args, w, problems):
    """What the shim reported at exit of each execmem-quota run of workload w."""
    peak, ooms, reports = 0, 0, 0
    for r in range(1, args.rounds + 1):
        path = os.path.join(args.raw, "macro", f"{w}.{QUOTA}.r{r}.stats.json")
        if not os.path.exists(path):
            continue
        stats = read_json(path, problems, f"shim stats of {w} under {QUOTA} round {r}")
        default = next((e for e in (stats or {}).get("executors", [])
                        if e.get("name") == "default"), None)
        if default is None:
            continue
        reports += 1
        peak = max(peak, default.get("peak_used", 0))
        ooms += default.get("oom_count", 0)
        if default.get("max") and default.get("peak_used", 0) >= default["max"]:
            problems.append({"what": f"{w} under {QUOTA} round {r}",
                             "detail": "the budget's max was reached: raise MACRO_QUOTA in run.sh"})
    if ooms:
        problems.append({"what": f"{w} under {QUOTA}", "detail": f"{ooms} OOMs"})
    return {"reports": reports, "peak_used": peak, "oom_count": ooms}


def collect_macro(args, allocators, workloads, problems):
    variants = macro_variants(allocators)
    macro = {}
    for w in workloads:
        entry = {"scale": args.scale, "by_allocator": {}, "checksums": {}}
        for a in variants:
            times, rss, rates, failed, ops = [], [], [], 0, None
            cpu, faults = [], []
            for r in range(1, args.rounds + 1):
                base = os.path.join(args.raw, "macro", f"{w}.{a}.r{r}")
                rec = read_json(base + ".json", problems, f"{w} under {a} round {r}")
                if rec is None:
                    failed += 1
                    continue
                if rec.get("exit_code") != 0 or rec.get("timed_out"):
                    failed += 1
                    detail = ("timed out" if rec.get("timed_out") else
                              f"exit code {rec.get('exit_code')}, signal {rec.get('signal')}")
                    problems.append({"what": f"{w} under {a} round {r}", "detail": detail})
                    continue
                try:
                    with open(base + ".stdout") as f:
                        text = f.read()
                except OSError:
                    text = ""
                m = CHECKSUM.search(text)
                if m is None:
                    failed += 1
                    problems.append({"what": f"{w} under {a} round {r}",
                                     "detail": "no checksum line in its output"})
                    continue
                entry["checksums"].setdefault(m.group(1), []).append(f"{a}/r{r}")
                times.append(rec["wall_s"])
                rss.append(rec["maxrss_kb"])
                cpu.append(rec.get("user_s", 0) + rec.get("sys_s", 0))
                if rec.get("minflt") is not None:  # absent in runs of an older execmem-measure
                    faults.append(rec["minflt"])
                o = OPS.search(text)
                if o is not None and rec["wall_s"] > 0:
                    ops = int(o.group(1))
                    rates.append(ops / rec["wall_s"])
            entry["by_allocator"][a] = {
                "time_s": median(times), "peak_rss_kb": median(rss),
                "times_s": times, "peak_rss_kb_all": rss, "runs": len(times), "failed": failed,
                "cpu_s": median(cpu), "cpu_s_all": cpu,
                "minor_faults": median(faults), "minor_faults_all": faults}
            if ops is not None:  # the workload prints a fixed count of operations
                entry["by_allocator"][a].update(ops=ops, ops_per_s=median(rates),
                                                ops_per_s_all=rates)
        entry["checksum_consistent"] = len(entry["checksums"]) == 1
        if len(entry["checksums"]) > 1:
            problems.append({"what": f"{w} checksum",
                             "detail": "allocators disagree: " + json.dumps(entry["checksums"])})
        # execmem (quotas off) over each allocator, as in schema 1.
        plain = {a: v for a, v in entry["by_allocator"].items() if a in allocators}
        entry["time_ratios"] = ratios({a: v["time_s"] for a, v in plain.items()}, allocators)
        entry["peak_rss_ratios"] = ratios({a: v["peak_rss_kb"] for a, v in plain.items()},
                                          allocators)
        entry["versus"] = versus(entry, variants)
        if QUOTA in variants:
            on = entry["by_allocator"][QUOTA]["time_s"]
            off = entry["by_allocator"][REFERENCE]["time_s"]
            entry["quota"] = dict(quota_report(args, w, problems),
                                  time_on_over_off=on / off if on and off else None)
        macro[w] = entry
    return macro


def macro_geomean(macro, variants, key):
    """Each variant's geometric mean over the workloads of its value ÷ glibc's
    (the issue's yardstick: below 1 is faster than glibc). Only workloads where
    every variant and glibc have the value count, so that every variant's mean
    covers the same workloads; None without glibc or without such a workload."""
    if "glibc" not in variants:
        return {}
    rows = [e["by_allocator"] for e in macro.values()
            if all((e["by_allocator"].get(v) or {}).get(key) for v in variants)]
    if not rows:
        return {}
    return {v: statistics.geometric_mean([r[v][key] / r["glibc"][key] for r in rows])
            for v in variants} | {"workloads": len(rows)}


# ---- callgrind ------------------------------------------------------------------------

def callgrind_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError("no summary line")


def collect_callgrind(args, allocators, problems):
    n1, n2 = (int(x) for x in args.pairs.split(","))
    by_alloc = {}
    for a in allocators:
        try:
            ir1 = callgrind_ir(os.path.join(args.raw, "callgrind", f"{a}.{n1}.out"))
            ir2 = callgrind_ir(os.path.join(args.raw, "callgrind", f"{a}.{n2}.out"))
        except (OSError, ValueError, IndexError) as e:
            problems.append({"what": f"callgrind under {a}", "detail": str(e)})
            by_alloc[a] = None
            continue
        by_alloc[a] = {"instructions_per_pair": (ir2 - ir1) / (n2 - n1), "ir": [ir1, ir2]}
    per_pair = {a: (v or {}).get("instructions_per_pair") for a, v in by_alloc.items()}
    return {"pairs": [n1, n2], "sizes": "mixed 16-512 B, LIFO", "by_allocator": by_alloc,
            "ratios": ratios(per_pair, allocators)}


# ---- Markdown ---------------------------------------------------------------------------

def fmt(v, digits=2):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def table(header, rows, numeric=True):
    align = "---:" if numeric else "---"
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + [align] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def value_table(first, rows, allocators, digits=2):
    """rows: [(label, {alloc: value}, {baseline: ratio})]"""
    baselines = [a for a in allocators if a != REFERENCE] if REFERENCE in allocators else []
    header = [first] + allocators + [f"execmem/{b}" for b in baselines]
    body = []
    for label, values, rats in rows:
        body.append([label] + [fmt(values.get(a), digits) for a in allocators] +
                    [fmt(rats.get(b), 2) for b in baselines])
    return table(header, body)


def macro_table(macro, variants, key, unit=1.0, digits=2, rows=None):
    """A row per workload: key's median per variant (divided by unit), then
    each execmem variant's ratio over the best of BEST_OF (named) and over glibc."""
    mine = [v for v in variants if v in (REFERENCE, QUOTA)]
    has_best, has_glibc = any(b in variants for b in BEST_OF), "glibc" in variants
    header = ["workload"] + variants
    for v in mine:
        header += ([f"{v} ÷ best"] if has_best else []) + ([f"{v} ÷ glibc"] if has_glibc else [])
    body = []
    for w in rows or macro:
        e = macro[w]
        row = [w]
        for a in variants:
            x = e["by_allocator"].get(a, {}).get(key)
            row.append(fmt(x / unit if x is not None else None, digits))
        for v in mine:
            r = e.get("versus", {}).get(v, {}).get(key, {})
            best = f" ({r['best']})" if r.get("best") and r.get("over_best") is not None else ""
            row += ([fmt(r.get("over_best")) + best] if has_best else []) + \
                ([fmt(r.get("over_glibc"))] if has_glibc else [])
        body.append(row)
    if rows is None and key in ("time_s", "cpu_s"):
        g = macro_geomean(macro, variants, key)
        if g:
            body.append([f"geometric mean ÷ glibc ({g['workloads']} workloads)"] +
                        [fmt(g[a]) for a in variants] + [""] * (len(header) - 1 - len(variants)))
    return table(header, body)


def macro_markdown(doc):
    variants = doc.get("macro_variants") or [a["name"] for a in doc["allocators"]]
    macro = doc["macro"]
    best = "/".join(b for b in BEST_OF if b in variants)
    note = lambda text: [f"best: {text} of {best}.", ""] if best else []
    out = (["## Workloads: wall time (s)", ""] + note("the fastest") +
           [macro_table(macro, variants, "time_s"), "", "## Workloads: peak RSS (MiB)", ""] +
           note("the smallest") + [macro_table(macro, variants, "peak_rss_kb", 1024, 1), "",
                                   "## Workloads: CPU time, user + system (s)", "",
                                   "What load on the machine moves less than wall time.", ""] +
           note("the smallest") + [macro_table(macro, variants, "cpu_s"), "",
                                   "## Workloads: minor page faults (thousands)", "",
                                   "Pages the kernel zeroed and mapped on first touch (rusage "
                                   "ru_minflt): a count load does not move.", ""] +
           note("the fewest") + [macro_table(macro, variants, "minor_faults", 1000, 1), ""])
    larson = [w for w, e in macro.items() if w.startswith("larson")
              and any(v.get("ops_per_s") for v in e["by_allocator"].values())]
    if larson:
        out += ["## Larson server: throughput (million malloc+free per second)", "",
                "The workload's fixed count of operations over its wall time; higher is better.",
                ""] + note("the highest") + [macro_table(macro, variants, "ops_per_s", 1e6, 2,
                                                          larson), ""]
    if QUOTA in variants:
        mib = lambda v: f"{v / 2**20:.0f}" if v else "—"
        out += ["## Workloads: quotas off and on (execmem through the shim)", "",
                f"off: no EXECMEM_* variables (the shim's default budgets); on: `{doc.get('macro_quota')}`, "
                "which no workload reaches (peak live bytes from the shim's exit report).", "",
                table(["workload", "off (s)", "on (s)", "on/off", "peak live MiB", "OOMs"],
                      [[w, fmt(e["by_allocator"][REFERENCE]["time_s"]),
                        fmt(e["by_allocator"][QUOTA]["time_s"]),
                        fmt(e.get("quota", {}).get("time_on_over_off")),
                        mib(e.get("quota", {}).get("peak_used")),
                        str(e.get("quota", {}).get("oom_count", "—"))]
                       for w, e in macro.items()]), ""]
    return out


def markdown(doc):
    allocators = [a["name"] for a in doc["allocators"]]
    out = [f"# execmem benchmarks ({doc['mode']} mode)", "",
           f"{doc['generated']} · {doc['machine']['cpus']} × {doc['machine']['cpu']} · "
           f"kernel {doc['machine']['kernel']} · {doc['rounds']} round(s), workload scale "
           f"{doc['scale']}, allocators interleaved, medians.", "",
           "Ratios are execmem's value over the baseline's: below 1, execmem is faster or smaller "
           "(for throughput: above 1, execmem is faster).", ""]
    out += macro_markdown(doc)
    if doc.get("redis"):
        out += redis_report.markdown(doc["redis"], level=2)
    cg = doc["callgrind"]
    out += ["## Fast path: instructions per malloc+free pair (callgrind)", "",
            f"execmem-pairs, {cg['sizes']}; (Ir({cg['pairs'][1]}) − Ir({cg['pairs'][0]})) / "
            f"{cg['pairs'][1] - cg['pairs'][0]}, counted inside run_pairs() only.", "",
            value_table("probe", [("instructions/pair",
                                   {a: (v or {}).get("instructions_per_pair")
                                    for a, v in cg["by_allocator"].items()}, cg["ratios"])],
                        allocators, 1), ""]
    out += ["## Micro benchmarks through malloc (ns per malloc+free pair)", "",
            value_table("benchmark", [(n, e["ns_per_pair"], e["ratios"])
                                      for n, e in doc["micro"].items()], allocators), ""]
    sq = doc.get("shim_quota")
    if sq:
        ex = sq["executor"]
        mib = lambda v: f"{v / 2**20:.0f} MiB" if v is not None else "?"
        out += ["## Through the shim: quotas off and on (ns per malloc+free pair)", "",
                f"off: execmem's default budgets; on: `{sq['budgets']}`. With the budgets on, "
                f"the program's live bytes peaked at {mib(ex['peak_used'])} (initial "
                f"{mib(ex['initial'])}, max {mib(ex['max'])}; {ex['spill_calls']} spill calls, "
                f"{ex['oom_count']} OOMs).", "",
                table(["benchmark", "quota off", "quota on", "on/off"],
                      [[n, fmt(e["off_ns"]), fmt(e["on_ns"]), fmt(e["on_over_off"])]
                       for n, e in sq["benchmarks"].items()]), ""]
    api = doc.get("api")
    if api:
        out += ["## C++ API: quotas off and on (ns per allocate+deallocate pair)", "",
                "off: the default executor (unbound thread); on: a bound executor with "
                "initial 16m, max 256m, whose live bytes peaked at "
                f"{fmt(api.get('quota_executor_peak_used_mib'), 1)} MiB.", "",
                table(["benchmark", "quota off", "quota on", "on/off"],
                      [[n, fmt(e.get("off_ns")), fmt(e.get("on_ns")), fmt(e.get("on_over_off"))]
                       for n, e in api["quota"].items()]), "",
                "## Executor switching (ns per iteration)", "",
                table(["benchmark", "ns"], [[n, fmt(v)] for n, v in api["switching"].items()]),
                ""]
    out += ["## Allocators", "",
            table(["allocator", "preload", "version"],
                  [[a["name"], a["preload"] or "(none)", a.get("version") or "—"]
                   for a in doc["allocators"]], numeric=False), ""]
    if doc["problems"]:
        out += ["## Problems", ""] + [f"- {p['what']}: {p['detail']}" for p in doc["problems"]]
        out.append("")
    return "\n".join(out)


# ---- chart ------------------------------------------------------------------------------

def write_dat(path, header, rows):
    with open(path, "w") as f:
        f.write(" ".join(header) + "\n")
        for row in rows:
            f.write(" ".join("?" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
                             for v in row) + "\n")


def chart(doc, out_dir, script, problems):
    allocators = doc["macro_variants"]
    data = os.path.join(out_dir, "chart-data")
    os.makedirs(data, exist_ok=True)
    macro = doc["macro"]
    write_dat(os.path.join(data, "time.dat"), ["workload"] + allocators,
              [[w] + [e["by_allocator"][a]["time_s"] for a in allocators] for w, e in macro.items()])
    write_dat(os.path.join(data, "rss.dat"), ["workload"] + allocators,
              [[w] + [(e["by_allocator"][a]["peak_rss_kb"] / 1024)
                      if e["by_allocator"][a]["peak_rss_kb"] else None for a in allocators]
               for w, e in macro.items()])
    write_dat(os.path.join(data, "callgrind.dat"), ["allocator", "instructions"],
              [[a, (doc["callgrind"]["by_allocator"].get(a) or {}).get("instructions_per_pair")]
               for a in allocators if a != QUOTA])
    png = os.path.join(out_dir, "chart.png")
    title = f"execmem vs baselines ({doc['mode']}, {doc['generated'][:16]}, medians of {doc['rounds']})"
    cmd = ["gnuplot", "-e", f"datadir='{data}'; out='{png}'; n={len(allocators)}; rows={len(macro)}; "
           f"bars={len([a for a in allocators if a != QUOTA])}; "
           f"plot_title='{title}'", script]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        problems.append({"what": "chart", "detail": f"gnuplot did not run: {e}"})
        return
    if res.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        problems.append({"what": "chart",
                         "detail": f"gnuplot failed ({res.returncode}): {res.stderr.strip()[-300:]}"})


def main():
    args = parse_args()
    problems = []
    allocators, preloads = [], {}
    for spec in args.allocators.split(","):
        name, _, path = spec.partition("=")
        allocators.append(name)
        preloads[name] = path
    workloads = args.workloads.split(",")

    try:
        with open(os.path.join(args.raw, "failures.txt")) as f:
            for line in f:
                what, _, detail = line.rstrip("\n").partition("\t")
                if what:
                    problems.append({"what": what, "detail": detail})
    except FileNotFoundError:
        pass

    doc = {
        "schema_version": SCHEMA_VERSION,
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": args.mode, "rounds": args.rounds, "micro_rounds": args.micro_rounds,
        "scale": args.scale, "machine": machine_info(),
        "allocators": [{"name": a, "preload": preloads[a] or None,
                        "version": package_version(PACKAGES[a]) if a in PACKAGES else None}
                       for a in allocators],
        "reference": REFERENCE if REFERENCE in allocators else None,
        "macro_variants": macro_variants(allocators),
        "macro_quota": args.macro_quota if REFERENCE in allocators else None,
    }
    doc["macro"] = collect_macro(args, allocators, workloads, problems)
    doc["macro_geomean"] = {key: macro_geomean(doc["macro"], doc["macro_variants"], key)
                            for key in ("time_s", "cpu_s")}
    doc["micro"] = collect_micro(args, allocators, problems)
    doc["api"] = collect_api(args, problems)
    doc["shim_quota"] = collect_shim_quota(args, allocators, doc["micro"], problems)
    doc["callgrind"] = collect_callgrind(args, allocators, problems)
    doc["redis"] = None
    if args.redis_rounds:
        doc["redis"] = redis_report.collect(os.path.join(args.raw, "redis"), args.redis_rounds,
                                            args.redis_requests,
                                            args.redis_allocators.split(","), problems)
        redis_report.write(doc["redis"], args.out, doc["generated"], doc["machine"])
    doc["problems"] = problems  # filled in further by chart() below

    chart(doc, args.out, args.chart_script, problems)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown(doc))

    if problems:
        print(f"report: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p['what']}: {p['detail']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
