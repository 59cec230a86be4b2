#!/bin/bash
# Shared pools across processes and users: execmem-top's views of a live
# pool, and segments refused because another user owns them (setpriv runs
# the joining process as another user; skipped when not root).
#   shared_processes_test.sh SHARED_MEMBER EXECMEM_TOP
set -u
member=$1
top=$2
fail=0
pool="test-sh-$$"
file="/dev/shm/execmem.$pool"
holder_in=""
cleanup() {
  [ -n "$holder_in" ] && exec {holder_in}>&-
  rm -f "$file" "/dev/shm/execmem.$pool-2" "$tmp"/*
  rmdir "$tmp" 2>/dev/null
}
tmp=$(mktemp -d)
trap cleanup EXIT
. "$(dirname "$0")/testing.sh"
one_line_naming() {  # one_line_naming FILE NEEDLE: stderr is one line naming the file
  [ "$(wc -l <"$1")" -eq 1 ] && grep -qF "$file" "$1" && grep -qF -- "$2" "$1" ||
    { echo "stderr was:"; cat "$1"; return 1; }
}

# ---- execmem-top on a live pool: two members holding ----
exec {holder_in}> >("$member" "$pool" --capacity $((64 << 20)) --reserve $((4 << 20)) \
  --grant $((8 << 20)) --hold >"$tmp/holder.out")
for _ in $(seq 1 600); do  # wait for the holder's grant (failure guard: 60 s)
  "$top" --json "$pool" 2>/dev/null | grep -q '"granted": 8388608' && break
  sleep 0.1
done
check "second member joins" "$member" "$pool" --grant $((1 << 20)) >/dev/null  # and leaves
"$top" --json "$pool" >"$tmp/top.json"
check "execmem-top --json: one object with the members' figures" python3 - "$tmp/top.json" "$pool" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["name"] == sys.argv[2], doc
assert doc["capacity"] == 64 << 20, doc
assert doc["reserved"] == 4 << 20 and doc["granted"] == 8 << 20, doc
assert len(doc["members"]) == 1, doc
m = doc["members"][0]
for key in ("pid", "program", "reserved", "granted", "used", "footprint", "resident"):
    assert key in m, (key, m)
assert m["program"] == "shared_member", m
assert m["resident"] > 0, m
PY
"$top" -n 2 -d 0.1 "$pool" >"$tmp/top.txt"
check "execmem-top live view lists the member" grep -q "shared_member .* 4.0M *8.0M" "$tmp/top.txt"
check "execmem-top live view: capacity" grep -q "capacity 64.0M" "$tmp/top.txt"
exec {holder_in}>&-
holder_in=""
for _ in $(seq 1 600); do  # the holder leaves when its stdin closes (guard: 60 s)
  "$top" --json "$pool" >"$tmp/top.json"
  grep -q '"members": \[\]' "$tmp/top.json" && break
  sleep 0.1
done
check "a member that leaves gives back" grep -q '"reserved": 0, "granted": 0, "members": \[\]' "$tmp/top.json"

# ---- refusals: one line naming the file ----
"$top" --json "no-such-pool-$$" 2>"$tmp/err"; rc=$?
check "execmem-top on a missing pool exits 1" [ $rc -eq 1 ]
file="/dev/shm/execmem.no-such-pool-$$" check "missing pool: one line" one_line_naming "$tmp/err" "No such file"
check "execmem-top usage error exits 2" bash -c "'$top' >/dev/null 2>&1; [ \$? -eq 2 ]"

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
  echo "SKIP: the other-user cases need root and setpriv"
  exit $fail
fi
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# A 0600 pool of root: another user cannot join it nor read it.
rm -f "$file"
check "root creates a 0600 pool" "$member" "$pool" --capacity $((32 << 20)) >/dev/null
"${nobody[@]}" "$member" "$pool" >/dev/null 2>"$tmp/err"; rc=$?
check "another user is refused (exit 1)" [ $rc -eq 1 ]
check "another user: one line naming the file" one_line_naming "$tmp/err" "Permission denied"
"${nobody[@]}" "$top" --json "$pool" >/dev/null 2>"$tmp/err"; rc=$?
check "another user cannot read it either" [ $rc -eq 1 ]
# A 0660 pool: a member of the group joins.
rm -f "$file"
check "root creates a 0660 pool" "$member" "$pool" --mode 0660 --capacity $((32 << 20)) >/dev/null
out=$(setpriv --reuid=65534 --regid=0 --clear-groups "$member" "$pool" --grant $((1 << 20)) 2>&1)
check "a group member joins a 0660 pool ($out)" [ "$out" = "joined" ]
# A segment another user made: root refuses it (it could be anything).
rm -f "$file"
"${nobody[@]}" "$member" "$pool" --capacity $((32 << 20)) >/dev/null 2>&1
check "another user made the pool" [ "$(stat -c %u "$file")" = 65534 ]
"$member" "$pool" >/dev/null 2>"$tmp/err"; rc=$?
check "root refuses another user's pool (exit 1)" [ $rc -eq 1 ]
check "another user's pool: one line naming it" one_line_naming "$tmp/err" "owned by uid 65534"
exit $fail
