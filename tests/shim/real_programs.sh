#!/bin/bash
# Runs a real Debian program twice on the same deterministic input, on glibc's
# malloc and under the execmem preload, and compares exit status, stdout and
# stderr byte for byte. The preloaded run also writes EXECMEM_STATS JSON,
# which must show that execmem served allocations.
#
# usage: real_programs.sh PRELOAD_LIB PROGRAM
#   PROGRAM: python3 sort sqlite3 perl xz git gxx
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB python3|sort|sqlite3|perl|xz|git|gxx" >&2; exit 2; }
require_preload "$1"
program=$2
make_workdir

# ---- scenarios: each runs in the current directory (a fresh one per run) -----------
scenario_python3() {
  cat >work.py <<'EOF'
import collections, hashlib, json, re, threading
d = {}
for i in range(200000):
    d[str(i * 7919 % 100003)] = [i, str(i) * 3, {"k": i}]
words = collections.Counter(re.findall(r"\d{3}", " ".join(v[1] for v in d.values())))
lists = [list(range(i % 100)) for i in range(20000)]
text = json.dumps(sorted(d.items())[:3000])
print(len(d), sum(map(len, lists)), hashlib.sha256(text.encode()).hexdigest())
print(words.most_common(3))
blob = bytearray(48 * 1024 * 1024)
blob[::4096] = b"x" * len(blob[::4096])
print(blob.count(b"x"))
results = [0] * 4
def work(k):
    results[k] = sum(len(str(x) * (k + 1)) for x in range(150000))
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(results)
EOF
  PYTHONHASHSEED=0 /usr/bin/python3 work.py
}

scenario_sort() {
  sort -n "$WORK/numbers.txt"
  # Small buffer: temporary files and merge passes; two threads.
  sort -S 1M --parallel=2 -T . -k2,2 -t ' ' "$WORK/numbers.txt" | sha256sum
}

scenario_sqlite3() {
  sqlite3 db.sqlite <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, x % 97, 'name' || (x * 7919 % 100003), (x * 31 % 1000) / 7.0 FROM c;
CREATE INDEX t_name ON t(name);
SELECT grp, count(*), round(sum(val), 3), min(name), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 12;
SELECT count(DISTINCT name), round(avg(val), 6) FROM t;
SELECT name FROM t ORDER BY name DESC LIMIT 5;
SELECT a.grp, count(*) FROM t a JOIN t b ON a.id = b.id + 1 AND a.grp = b.grp + 1 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 3;
EOF
}

scenario_perl() {
  perl -e '
    my %h;
    for my $i (1 .. 300000) { $h{"k" . ($i * 7919 % 1000003)} .= $i }
    my @k = sort keys %h;
    my $s = 0; $s += length($h{$_}) for @k;
    print scalar(@k), " $s $k[0] $k[-1]\n";
    my @a = map { [$_, ($_ * 7919) % 100003] } 1 .. 100000;
    @a = sort { $b->[1] <=> $a->[1] or $a->[0] <=> $b->[0] } @a;
    print "$a[0][0] $a[-1][0]\n";
    my @parts = split /,/, join(",", 1 .. 200000);
    my $joined = join("", map { chr(65 + $_ % 26) } @parts);
    (my $copy = $joined) =~ s/ABC/xyz/g;
    print scalar(@parts), " ", length($copy), " ", ($copy =~ tr/x//), "\n";
  '
}

scenario_xz() {
  xz -T2 -4 --block-size=1MiB -c "$WORK/data.txt" >data.xz
  sha256sum <data.xz
  xz -dc data.xz | sha256sum
  xz -T1 -2 -c "$WORK/data.txt" | xz -dc | cmp - "$WORK/data.txt" && echo roundtrip ok
}

scenario_git() {
  export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=test@example.com \
    GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=test@example.com \
    GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
  git init -q -b main repo && cd repo || return 1
  git config gc.auto 0
  git config maintenance.auto false
  for i in $(seq 1 15); do
    seq "$i" 3 30000 >"file$((i % 5)).txt"
    printf 'commit %s\n' "$i" >>log.txt
    git add -A && git commit -q -m "commit $i" || return 1
  done
  git log --format='%H %s' | head -5
  git diff --stat HEAD~7 HEAD
  git repack -adq && git fsck --no-progress --strict && git count-objects -v | grep -v size
  git log --format=%H | tail -1
}

scenario_gxx() {
  cat >prog.cc <<'EOF'
#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
int main() {
  std::mutex mu;
  std::map<int, std::string> out;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::unordered_map<std::string, long> counts;
      for (int i = 0; i < 50000; ++i) counts[std::to_string(i * 7919 % (10007 + t))] += i;
      long sum = 0;
      for (const auto& [k, v] : counts) sum += v * static_cast<long>(k.size());
      std::lock_guard<std::mutex> lock(mu);
      out[t] = std::to_string(counts.size()) + ":" + std::to_string(sum);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& [k, v] : out) std::cout << k << " " << v << "\n";
  std::vector<int> v(1000000);
  std::iota(v.begin(), v.end(), 0);
  std::sort(v.begin(), v.end(), [](int a, int b) { return a * 7919 % 1000003 < b * 7919 % 1000003; });
  std::cout << v[0] << " " << v[999999] << "\n";
}
EOF
  g++ -O1 -pthread -S -o prog.s prog.cc && sha256sum <prog.s
  g++ -O1 -pthread -o prog prog.cc && ./prog
}

# ---- inputs shared by both runs ---------------------------------------------------------
case $program in
  sort)
    awk 'BEGIN { srand(42); for (i = 0; i < 200000; i++) printf "%d %d\n", int(rand() * 1000000), i }' \
      >"$WORK/numbers.txt" ;;
  xz)
    seq 1 300000 | awk '{ print $1 * 7919 % 1000003, "line", $1 }' >"$WORK/data.txt" ;;
  python3 | sqlite3 | perl | git | gxx) ;;
  *) echo "unknown program '$program'" >&2; exit 2 ;;
esac
tool=$program
[ "$program" = gxx ] && tool=g++
command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed" >&2; exit 1; }

# run MODE: runs the scenario in $WORK/run (the same path in both modes, so
# that paths in messages match), then keeps its outputs as $WORK/MODE.*.
run() {
  local mode=$1
  rm -rf "$WORK/run" && mkdir "$WORK/run"
  (
    cd "$WORK/run" || exit 1
    unset LD_PRELOAD EXECMEM_STATS
    if [ "$mode" = preload ]; then
      export LD_PRELOAD=$PRELOAD EXECMEM_STATS=$WORK/stats.json
    fi
    "scenario_$program"
  ) >"$WORK/$mode.out" 2>"$WORK/$mode.err"
  echo $? >"$WORK/$mode.rc"
}

start=$SECONDS
run plain
run preload
plain_rc=$(cat "$WORK/plain.rc")
preload_rc=$(cat "$WORK/preload.rc")
[ "$plain_rc" = 0 ] || { echo "the scenario fails without the preload (status $plain_rc):"; cat "$WORK/plain.err"; }
expect "$program exits $preload_rc under the preload, $plain_rc without" [ "$plain_rc" = "$preload_rc" ]
if cmp -s "$WORK/plain.out" "$WORK/preload.out"; then
  pass
else
  fail "$program: stdout differs under the preload"
  diff "$WORK/plain.out" "$WORK/preload.out" | head -20 >&2
fi
if cmp -s "$WORK/plain.err" "$WORK/preload.err"; then
  pass
else
  fail "$program: stderr differs under the preload"
  diff "$WORK/plain.err" "$WORK/preload.err" | head -20 >&2
fi
expect "$program wrote no output" [ -s "$WORK/plain.out" ]

# The last process to exit wrote its report: execmem served its allocations.
if [ -s "$WORK/stats.json" ]; then
  expect "EXECMEM_STATS JSON shows no allocations" /usr/bin/python3 - "$WORK/stats.json" <<'EOF'
import json, sys
def allocations(node):
    if isinstance(node, dict):
        return sum((v if k == "allocations" and isinstance(v, int) else allocations(v))
                   for k, v in node.items())
    if isinstance(node, list):
        return sum(allocations(v) for v in node)
    return 0
sys.exit(0 if allocations(json.load(open(sys.argv[1]))) > 0 else 1)
EOF
else
  fail "$program under the preload wrote no EXECMEM_STATS report"
fi
echo "$program: $(wc -l <"$WORK/plain.out") lines of output compared, $((SECONDS - start)) s"
finish "real_programs $program"
