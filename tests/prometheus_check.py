#!/usr/bin/python3
"""Checks files in the Prometheus text exposition format (version 0.0.4), as
node_exporter's textfile collector and Prometheus read them:

  * every line is a comment (# HELP / # TYPE name ...) or a sample;
  * a metric has at most one HELP and one TYPE line, before its samples, and
    its samples are contiguous; every sample has a preceding TYPE line;
  * names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*;
  * label values are quoted with only \\\\, \\" and \\n escapes, valid UTF-8;
  * values are floats; counters end in _total and are not negative;
  * no two samples have the same name and labels.

usage: prometheus_check.py FILE... [--require METRIC]...
Exit status 0 when every file is well-formed and every required metric has a
sample, else 1 with one line per problem.
"""
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(text, where, problems):
    """text starts after '{'; returns (labels dict, rest after '}')."""
    labels = {}
    i = 0
    while True:
        if text[i:i + 1] == "}":
            return labels, text[i + 1:]
        m = LABEL.match(text, i)
        if not m or text[m.end():m.end() + 2] != '="':
            problems.append(f"{where}: bad label at {text[i:i + 20]!r}")
            return labels, None
        name = m.group(0)
        j = m.end() + 2
        value = []
        while j < len(text) and text[j] != '"':
            if text[j] == "\\":
                esc = text[j + 1:j + 2]
                if esc not in ("\\", '"', "n"):
                    problems.append(f"{where}: bad escape \\{esc} in label {name}")
                value.append({"n": "\n"}.get(esc, esc))
                j += 2
            else:
                value.append(text[j])
                j += 1
        if j >= len(text):
            problems.append(f"{where}: unterminated label value of {name}")
            return labels, None
        if name in labels:
            problems.append(f"{where}: label {name} twice")
        labels[name] = "".join(value)
        j += 1
        if text[j:j + 1] == ",":
            j += 1
        i = j


def check(path, problems, seen_metrics):
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: cannot read as UTF-8: {e}")
        return
    if not text.endswith("\n"):
        problems.append(f"{path}: does not end with a newline")
    helps, types, done, samples = set(), {}, set(), set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"{path}:{n}"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    problems.append(f"{where}: bad metric name {name!r}")
                if name in done or (current is not None and name != current and name in types):
                    problems.append(f"{where}: {parts[1]} of {name} after its samples")
                if parts[1] == "HELP":
                    if name in helps:
                        problems.append(f"{where}: second HELP of {name}")
                    helps.add(name)
                else:
                    kind = parts[3] if len(parts) > 3 else ""
                    if kind not in TYPES:
                        problems.append(f"{where}: bad type {kind!r}")
                    if name in types:
                        problems.append(f"{where}: second TYPE of {name}")
                    if kind == "counter" and not name.endswith("_total"):
                        problems.append(f"{where}: counter {name} does not end in _total")
                    types[name] = kind
                if current is not None and current != name:
                    done.add(current)
                current = name
            continue
        if not line.strip():
            problems.append(f"{where}: empty line")
            continue
        m = NAME.match(line)
        if not m:
            problems.append(f"{where}: not a sample: {line[:40]!r}")
            continue
        name = m.group(0)
        rest = line[m.end():]
        labels = {}
        if rest.startswith("{"):
            labels, rest = parse_labels(rest[1:], where, problems)
            if rest is None:
                continue
        if name not in types:
            problems.append(f"{where}: sample of {name} without a preceding TYPE")
        if name in done or (current is not None and name != current):
            problems.append(f"{where}: samples of {name} not contiguous after its TYPE")
        fields = rest.split()
        if not rest.startswith(" ") or len(fields) not in (1, 2):
            problems.append(f"{where}: bad value part {rest!r}")
            continue
        try:
            value = float(fields[0])
        except ValueError:
            problems.append(f"{where}: value {fields[0]!r} is not a float")
            continue
        if types.get(name) == "counter" and value < 0:
            problems.append(f"{where}: negative counter {name}")
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            problems.append(f"{where}: duplicate sample {name}{labels}")
        samples.add(key)
        seen_metrics.add(name)


def main(argv):
    files, required = [], []
    args = iter(argv[1:])
    for a in args:
        if a == "--require":
            required.append(next(args))
        else:
            files.append(a)
    if not files:
        print("usage: prometheus_check.py FILE... [--require METRIC]...", file=sys.stderr)
        return 2
    problems, seen = [], set()
    for path in files:
        check(path, problems, seen)
    for metric in required:
        if metric not in seen:
            problems.append(f"no sample of {metric}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
