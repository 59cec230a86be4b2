#!/bin/bash
# Instructions of a whole PostgreSQL 15 server under the preload, private or in
# a shared pool (issue 18, speed): valgrind's callgrind on the postmaster with
# --trace-children=yes (every forked process counted), autovacuum off;
# pgbench -i -s 1, one client of 300 TPC-B transactions (fixed seed), a
# 20 000-row sort, fast shutdown. Prints the sum over the server's processes
# and the four largest.
#
#   bench/engines/pg_callgrind.sh PRELOAD private|shared
#
# Run as root (the server runs as postgres through setpriv) or as the user
# that owns PostgreSQL. Takes a few minutes.
set -u
TAG=pgcg
. "$(dirname "$0")/callgrind_setup.sh"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
chmod 755 "$d"
as=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$d"
  as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
"${as[@]}" "$bin/initdb" -D "$d/data" -U postgres -A trust --no-sync >/dev/null 2>&1 ||
  { echo "initdb failed" >&2; exit 1; }
"${as[@]}" mkdir "$d/sock"
"${as[@]}" env LD_PRELOAD="$pre" "${extra[@]}" valgrind --tool=callgrind --trace-children=yes \
  --callgrind-out-file="$d/cg.%p" "$bin/postgres" -D "$d/data" -k "$d/sock" -c listen_addresses= \
  -c fsync=off -c synchronous_commit=off -c autovacuum=off -c shared_buffers=32MB >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do "$bin/pg_isready" -q -h "$d/sock" -U postgres && break; sleep 0.1; done
"$bin/pgbench" -q -i -s 1 -h "$d/sock" -U postgres postgres >/dev/null 2>&1 || { echo "pgbench -i failed" >&2; exit 1; }
"$bin/pgbench" -n -c 1 -t 300 --random-seed=7 -h "$d/sock" -U postgres postgres >/dev/null 2>&1 ||
  { echo "pgbench failed" >&2; exit 1; }
"$bin/psql" -X -q -h "$d/sock" -U postgres -c "SET work_mem='64MB'; SELECT count(*) FROM
  (SELECT md5(i::text) t FROM generate_series(1,20000) i ORDER BY t) s" postgres >/dev/null
kill -INT "$pid"
wait "$pid"
pid=""
counts=$(for f in "$d"/cg.*; do grep -m1 '^summary:\|^totals:' "$f" | awk '{print $2}'; done | sort -n)
echo "$v: $(awk '{s += $1} END {print s}' <<<"$counts") instructions in $(wc -l <<<"$counts")" \
  "processes; largest: $(tail -4 <<<"$counts" | tr '\n' ' ')"
