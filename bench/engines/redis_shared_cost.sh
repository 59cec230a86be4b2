#!/usr/bin/env bash
# What a shared pool costs Redis against a private one (issue 18, speed):
#
#   bench/engines/redis_shared_cost.sh PRELOAD [ROUNDS] [REQUESTS]
#
# ROUNDS (5) interleaved rounds of bench/redis/run.sh (Debian's redis-server on
# a unix socket, redis-benchmark SET GET LPUSH LPOP SADD HSET, 50 clients,
# pipeline 16) under the preload: "private" (the shim's defaults) and "shared"
# (EXECMEM_SHARED, a pool of 4 GiB unique to this run, removed at exit). Prints
# each test's median requests/s and the ratio shared / private.
set -euo pipefail
preload=$(readlink -f "$1")
rounds=${2:-5}
requests=${3:-200000}
here=$(cd "$(dirname "$0")" && pwd)
raw=$(mktemp -d "${TMPDIR:-/tmp}/execmem-redis-cost.XXXXXX")
pool="rcost-$$"
trap 'rm -f "/dev/shm/execmem.$pool"; rm -rf "$raw"' EXIT
for ((r = 1; r <= rounds; r++)); do
  order=(private shared)
  ((r % 2 == 0)) && order=(shared private)
  for v in "${order[@]}"; do
    env_arg=()
    [[ $v == shared ]] && env_arg=(--env "EXECMEM_SHARED=$pool EXECMEM_SHARED_CAPACITY=4g")
    "$here/../redis/run.sh" --raw "$raw" --round "$r" --requests "$requests" --name "$v" \
      --preload "$preload" "${env_arg[@]}"
  done
done
python3 - "$raw" "$rounds" <<'PY'
import csv, glob, os, statistics, sys
raw, rounds = sys.argv[1], int(sys.argv[2])
rps = {}
for v in ("private", "shared"):
    for path in glob.glob(os.path.join(raw, f"{v}.r*.csv")):
        for row in csv.reader(open(path)):
            if row and row[0] != "test":
                rps.setdefault((v, row[0]), []).append(float(row[1]))
tests = sorted({t for _, t in rps})
ratios = []
print(f"Redis, {rounds} interleaved rounds, median requests/s")
print("| test | private | shared | shared / private |\n|---|---:|---:|---:|")
for t in tests:
    p, s = statistics.median(rps[("private", t)]), statistics.median(rps[("shared", t)])
    ratios.append(s / p)
    print(f"| {t} | {p:.0f} | {s:.0f} | {s / p:.3f} |")
print(f"geometric mean of the ratios: {statistics.geometric_mean(ratios):.3f}")
PY
