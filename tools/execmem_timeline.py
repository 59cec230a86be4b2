"""Reading execmem's timelines and stats reports (shared by execmem-advise
and execmem-plot; Python 3 standard library only).

A timeline (EXECMEM_TIMELINE, execmem_timeline_start; format in
api/timeline.h) is a header line, then one JSON object per sample; a
stats report (EXECMEM_STATS=PATH, execmem_stats_json) is one JSON object. Both
are read into a Run: per executor, its samples in time order. Anything that
is not such a file raises InputError naming the file and the line.
"""

import json
import math

MIB = 1 << 20
GIB = 1 << 30

# Keys every executor entry of a sample must have (api/timeline.h).
SAMPLE_KEYS = ("used", "footprint", "initial", "max", "overhead", "spill_calls",
               "bytes_spilled", "oom_count")
STATS_KEYS = ("used", "peak_used", "footprint", "peak_footprint", "initial", "max",
              "overhead", "spill_calls", "bytes_spilled", "oom_count", "ns_above_initial")


class InputError(Exception):
    """A file that cannot be read as a timeline or a stats report."""

    def __init__(self, path, line, message):
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class Sample:
    __slots__ = ("t", "used", "peak_used", "footprint", "peak_footprint", "initial", "max", "overhead",
                 "spill_calls", "bytes_spilled", "oom_count", "ns_above_initial",
                 "untracked", "rss")


# The shared pool's figures in a sample's or a stats report's "pool" object
# (EXECMEM_STATS_VERSION 4, a member of a shared pool: EXECMEM_SHARED).
SHARED_KEYS = ("shared_capacity", "shared_reserved", "shared_granted", "shared_peak",
               "shared_members", "shared_refusals", "shared_reclaimed_members",
               "shared_reclaimed_bytes", "member_reserved", "member_granted", "member_used",
               "member_asked", "member_answered")


class SharedSample:
    """One look at a shared pool from one member: the pool's figures and the
    member's (SHARED_KEYS as attributes), at t seconds of the member's run."""
    __slots__ = ("t", "name") + SHARED_KEYS


def _shared_sample(pool, t, path, line):
    """The shared pool's figures in a "pool" object, or None when the process
    was not a member of one; InputError when they are there but malformed."""
    if not isinstance(pool, dict) or "shared_name" not in pool:
        return None
    name = pool["shared_name"]
    if not isinstance(name, str) or not name:
        raise InputError(path, line, '"shared_name" is not a pool name')
    s = SharedSample()
    s.t = t
    s.name = name
    for key in SHARED_KEYS:
        setattr(s, key, _number(pool, key, path, line))
    if s.shared_capacity == 0:
        raise InputError(path, line, f'shared pool "{name}" with a capacity of 0')
    return s


class Run:
    """One process's record: source path, pid, program, kind, and for each
    executor name a list of Samples (t in seconds from the first sample)."""

    def __init__(self, path, kind):
        self.path = path
        self.kind = kind  # "timeline" or "stats"
        self.pid = None
        self.program = ""
        self.start = None        # the process's start time (unix seconds), when known
        self.exit_status = None  # stats reports written by exit(): the status passed to it
        self.interval_ms = None
        self.executors = {}
        self.notes = []
        self.has_final = False
        self.shared = []  # SharedSample, in time order (a member of a shared pool)

    def duration(self):
        ends = [s[-1].t for s in self.executors.values() if s]
        return max(ends) if ends else 0.0


# execmem writes its figures as unsigned 64-bit counters.
MAX_FIGURE = (1 << 64) - 1


def _number(obj, key, path, line):
    """obj[key], a figure from 0 to MAX_FIGURE: what execmem writes. NaN,
    infinities and numbers past 64 bits (which Python's json reads) would
    break the arithmetic far from here."""
    value = obj.get(key)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or
            not 0 <= value <= MAX_FIGURE):
        raise InputError(path, line, f'"{key}" is missing or not a number from 0 to 2^64 - 1')
    return value


def _optional_number(obj, key, default, path, line):
    """obj[key] as _number checks it, or default when the key is absent."""
    return default if key not in obj else _number(obj, key, path, line)


def _identity(run, obj, path, line):
    """The process's identity from a timeline's header or a stats report:
    pid and start (whole numbers, or absent), program (a string)."""
    for key in ("pid", "start"):
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InputError(path, line, f'"{key}" is not a whole number')
    program = obj.get("program", "")
    if not isinstance(program, str):
        raise InputError(path, line, '"program" is not a string')
    run.pid, run.start, run.program = obj.get("pid"), obj.get("start"), program


def _executor_sample(entry, t, pool, rss, path, line, keys):
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise InputError(path, line, "an executor without a name")
    s = Sample()
    s.t = t
    for key in keys:
        setattr(s, key, _number(entry, key, path, line))
    s.peak_used = _optional_number(entry, "peak_used", s.used, path, line)
    s.ns_above_initial = _optional_number(entry, "ns_above_initial", 0, path, line)
    if "footprint" not in keys:
        s.footprint = _optional_number(entry, "footprint", s.used, path, line)
    s.untracked = _optional_number(pool, "untracked", 0, path, line)
    s.rss = rss
    return entry["name"], s


def _parse_line(text, path, number):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(path, number,
                         f"not a JSON line (truncated or corrupt): {e.msg} at column {e.colno}")
    except RecursionError:
        raise InputError(path, number, "not a JSON line (nested too deeply)")


def load(path):
    """Reads a timeline or a stats report into a Run; raises InputError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(path, 0, f"cannot read: {e.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(path, line, "not UTF-8 text")
    lines = text.split("\n")
    first = next((i for i, l in enumerate(lines) if l.strip()), None)
    if first is None:
        raise InputError(path, 0, "empty file (not a timeline or a stats report)")
    head = lines[first].strip()
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        whole = None
    if isinstance(whole, dict) and "executors" in whole and "pool" in whole:
        return _load_stats(path, whole)
    obj = _parse_line(head, path, first + 1)
    if not isinstance(obj, dict) or obj.get("timeline") != 1:
        raise InputError(path, first + 1,
                         "neither a timeline (no {\"timeline\":1,...} header) nor a stats report")
    return _load_timeline(path, lines, first, obj)


def _load_timeline(path, lines, first, header):
    run = Run(path, "timeline")
    _identity(run, header, path, first + 1)
    run.interval_ms = _optional_number(header, "interval_ms", None, path, first + 1)
    samples = 0
    for i in range(first + 1, len(lines)):
        text = lines[i].strip()
        number = i + 1
        if not text:
            if i == len(lines) - 1:
                break  # the newline that ends the last line
            raise InputError(path, number, "an empty line inside the timeline")
        if not lines[i].endswith("}") and i == len(lines) - 1:
            raise InputError(path, number, "the last line is cut (truncated file)")
        obj = _parse_line(text, path, number)
        if not isinstance(obj, dict):
            raise InputError(path, number, "not a JSON object")
        if "note" in obj:
            run.notes.append(str(obj["note"]))
            continue
        if "timeline" in obj:
            raise InputError(path, number, "a second header: two processes wrote this file "
                             "(use %p in the path)")
        t = _number(obj, "t_ms", path, number) / 1000.0
        execs = obj.get("executors")
        if not isinstance(execs, list):
            raise InputError(path, number, '"executors" is missing or not a list')
        pool = obj.get("pool", {})
        if not isinstance(pool, dict):
            raise InputError(path, number, '"pool" is not an object')
        shared = _shared_sample(pool, t, path, number)
        if shared is not None:
            run.shared.append(shared)
        rss = _optional_number(obj, "rss", 0, path, number)
        for entry in execs:
            name, s = _executor_sample(entry, t, pool, rss, path, number, SAMPLE_KEYS)
            run.executors.setdefault(name, []).append(s)
        run.has_final = run.has_final or obj.get("final") is True
        samples += 1
    if samples == 0:
        raise InputError(path, len(lines), "a timeline without samples")
    return run


def _load_stats(path, report):
    run = Run(path, "stats")
    _identity(run, report, path, 1)
    status = report.get("exit_status")
    run.exit_status = status if isinstance(status, int) and not isinstance(status, bool) else None
    run.has_final = True
    if not isinstance(report["executors"], list):
        raise InputError(path, 1, '"executors" is not a list')
    if not isinstance(report["pool"], dict):
        raise InputError(path, 1, '"pool" is not an object')
    shared = _shared_sample(report["pool"], 0.0, path, 1)
    if shared is not None:
        run.shared.append(shared)
    resident = _optional_number(report["pool"], "resident", 0, path, 1)
    for entry in report["executors"]:
        name, s = _executor_sample(entry, 0.0, report["pool"], resident, path, 1, STATS_KEYS)
        run.executors.setdefault(name, []).append(s)
    return run


def same_process(a, b):
    """Whether two Runs are records of one process (its timeline and its stats
    report): same pid and program, and the same start time when both give it."""
    if a.pid is None or a.pid != b.pid or a.program != b.program:
        return False
    return a.start is None or b.start is None or a.start == b.start


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def format_bytes(n):
    """1.5 GiB, 48.0 MiB, 12 KiB, 100 B (rounded down, as execmem's reports)."""
    for unit, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size:
            if n % size == 0:
                return f"{n // size} {unit}"
            return f"{math.floor(n * 10 / size) / 10:.1f} {unit}"
    return f"{int(n)} B"
