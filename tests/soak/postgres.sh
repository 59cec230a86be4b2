#!/bin/bash
# PostgreSQL 15 (Debian's) under load, with and without the preload: two
# copies of one freshly initdb'd cluster, run as the postgres user on unix
# sockets, get the same pgbench TPC-B run (fixed seed and transaction count,
# so the final balances are the same whatever the interleaving) and the same
# large in-memory sort. Checked on each: the balance sums agree (accounts =
# branches = tellers = history) and amcheck finds every heap and index clean;
# between them: the same balances and the same sorted output. Prints pgbench
# tps and the sort's time under the shim / without.
#
# usage: postgres.sh PRELOAD_LIB short|long
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB short|long" >&2; exit 2; }
soak_setup "$1" "$2"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/postgres" ] || { echo "FAIL: PostgreSQL is not installed (make deps)" >&2; exit 1; }
[ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1 || { echo "FAIL: no postgres user" >&2; exit 1; }

if [ "$SOAK_MODE" = long ]; then
  scale=20 clients=4 txns=5000 sort_rows=3000000
else
  scale=1 clients=4 txns=150 sort_rows=100000
fi

# PostgreSQL refuses to run as root: as root the server runs as postgres
# (setpriv execs, no child process, so $! is the postmaster's pid), as
# anyone else as that user.
# (A command, not a function: a function run with & is a subshell whose pid
# $! would be.)
if [ "$(id -u)" -eq 0 ]; then
  as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups --)
else
  as_postgres=()
fi

mkdir "$WORK/pg"
[ "$(id -u)" -ne 0 ] || chown postgres: "$WORK/pg"
"${as_postgres[@]}" "$bindir/initdb" -D "$WORK/pg/base" -U postgres -A trust -E UTF8 --locale=C \
  --no-sync >"$WORK/initdb.log" 2>&1 || { fail "initdb"; cat "$WORK/initdb.log" >&2; exit 1; }
cp -a "$WORK/pg/base" "$WORK/pg/shim"

# start_pg NAME [VAR=VALUE...]: the cluster $WORK/pg/NAME on socket dir
# $WORK/pg/NAME.sock; sets PID_<NAME>.
start_pg() {
  local name=$1
  shift
  "${as_postgres[@]}" mkdir "$WORK/pg/$name.sock"
  "${as_postgres[@]}" env "$@" "$bindir/postgres" -D "$WORK/pg/$name" -k "$WORK/pg/$name.sock" \
    -c listen_addresses= -c port=5432 -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c shared_buffers=64MB -c max_connections=20 \
    -c logging_collector=off >"$WORK/$name.log" 2>&1 &
  local pid=$!
  soak_started "$pid"
  printf -v "PID_$name" '%s' "$pid"
  if ! wait_until 60 "$bindir/pg_isready" -q -U postgres -h "$WORK/pg/$name.sock" -p 5432; then
    fail "$name: postgres did not accept connections within 60 s"
    tail -5 "$WORK/$name.log" >&2
    exit 1
  fi
  expect "$name: postmaster.pid names the server we started ($pid)" \
    test "$(head -1 "$WORK/pg/$name/postmaster.pid")" = "$pid"
}

sql() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK/pg/$1.sock" -p 5432 -U postgres -d postgres -c "$2"; }
now_ms() { date +%s%3N; }

start_pg base
start_pg shim "LD_PRELOAD=$PRELOAD"
expect "the preloaded postmaster maps execmem" grep -q "libexecmem_preload" "/proc/$PID_shim/maps"
expect "the baseline postmaster does not" bash -c "! grep -q libexecmem_preload /proc/$PID_base/maps"

declare -A tps sort_ms balances sorted
for name in base shim; do
  host=$WORK/pg/$name.sock
  "$bindir/pgbench" -q -i -s "$scale" -h "$host" -p 5432 -U postgres postgres \
    >"$WORK/$name.init" 2>&1 || { fail "$name: pgbench -i"; tail -3 "$WORK/$name.init" >&2; }
  "$bindir/pgbench" -n -c "$clients" -j 2 -t "$txns" --random-seed=1234 -h "$host" -p 5432 \
    -U postgres postgres >"$WORK/$name.bench" 2>&1 || { fail "$name: pgbench"; tail -3 "$WORK/$name.bench" >&2; }
  tps[$name]=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/$name.bench")

  sums=$(sql "$name" "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches),
                             (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(delta) FROM pgbench_history),
                             (SELECT count(*) FROM pgbench_history)")
  IFS='|' read -r a b t h n <<<"$sums"
  expect "$name: balance sums agree (accounts $a, branches $b, tellers $t, history $h)" \
    test -n "$a" -a "$a" = "$b" -a "$b" = "$t" -a "$t" = "$h"
  expect "$name: every transaction is in the history ($n = $clients x $txns)" test "$n" = $((clients * txns))
  balances[$name]=$(sql "$name" "SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid))
                                   FROM pgbench_accounts WHERE abalance <> 0")

  # A large in-memory sort (work_mem holds it all), then one that spills.
  t0=$(now_ms)
  sorted[$name]=$(sql "$name" "SET work_mem = '1GB';
    SELECT md5(string_agg(t, ',' ORDER BY t)) FROM
      (SELECT md5((i::bigint * 7919 % 1000003)::text) || repeat('x', i % 50) AS t
         FROM generate_series(1, $sort_rows) i) s")
  sort_ms[$name]=$(($(now_ms) - t0))
  spilled=$(sql "$name" "SET work_mem = '1MB';
    SELECT md5(string_agg(t, ',' ORDER BY t)) FROM
      (SELECT md5((i::bigint * 7919 % 1000003)::text) || repeat('x', i % 50) AS t
         FROM generate_series(1, $sort_rows) i) s")
  expect "$name: the in-memory sort and the spilling one agree" test "$spilled" = "${sorted[$name]}"

  "$bindir/pg_amcheck" -h "$host" -p 5432 -U postgres --install-missing --heapallindexed \
    --parent-check -d postgres >"$WORK/$name.amcheck" 2>&1
  status=$?
  expect "$name: pg_amcheck finds every table and index clean (status $status: $(head -c 300 "$WORK/$name.amcheck"))" \
    test "$status" -eq 0
  expect "$name: amcheck was installed, so pg_amcheck checked something" \
    test "$(sql "$name" "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'")" = 1
done

expect "the balances under execmem equal those without (${balances[shim]} vs ${balances[base]})" \
  test -n "${balances[base]}" -a "${balances[shim]}" = "${balances[base]}"
expect "the sort under execmem equals the one without" \
  test -n "${sorted[base]}" -a "${sorted[shim]}" = "${sorted[base]}"
echo "pgbench TPC-B ($SOAK_MODE: scale $scale, $clients clients x $txns transactions):" \
  "tps glibc ${tps[base]}, execmem ${tps[shim]}, ratio $(ratio "${tps[shim]}" "${tps[base]}")"
echo "sort of $sort_rows rows in memory: glibc ${sort_ms[base]} ms, execmem ${sort_ms[shim]} ms," \
  "throughput ratio $(ratio "${sort_ms[base]}" "${sort_ms[shim]}")"

for name in base shim; do
  pid_var=PID_$name
  soak_stop "${!pid_var}" INT  # fast shutdown
  status=$?
  expect "$name: postgres shut down cleanly (status $status)" test "$status" -eq 0
  expect "$name: no backend crashed (server log)" \
    bash -c "! grep -q 'terminated by signal\|was terminated by\|PANIC' '$WORK/$name.log'"
done
finish "soak.postgres ($SOAK_MODE)"
