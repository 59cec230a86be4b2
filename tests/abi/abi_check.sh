#!/usr/bin/env bash
# The ABI check of libexecmem.so (docs/abi.md), with Debian's abigail-tools.
#
#   abi_check.sh check LIB DUMP_DIR HEADERS_DIR SOURCE_DIR   (CTest abi.check)
#   abi_check.sh dump  LIB DUMP_DIR HEADERS_DIR SOURCE_DIR   (make abi-dump)
#
# The committed dump is DUMP_DIR/<SONAME>.abi (tests/abi/libexecmem.so.0.abi).
# Only the exported C API (execmem_*) is compared (execmem.suppr); types
# only as far as the public headers in HEADERS_DIR define them.
#   check: passes when LIB's C API is the dump's, new functions allowed;
#          any other change fails (abidiff's report is printed) unless the
#          SONAME differs from the dump's (the major version was bumped);
#          exits 77 (skipped) when LIB has no debug information.
#   dump:  writes LIB's dump, replacing the committed one; refuses when
#          functions or variables were removed under the same SONAME.
set -euo pipefail
[[ $# -eq 5 && ( $1 == check || $1 == dump ) ]] || {
  echo "usage: $0 check|dump LIB DUMP_DIR HEADERS_DIR SOURCE_DIR" >&2
  exit 2
}
mode=$1 lib=$2 dumps=$3 headers=$4 src=$5
suppr=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/execmem.suppr
for tool in abidw abidiff readelf; do
  command -v "$tool" >/dev/null ||
    { echo "abi_check: $tool not found: apt-get install abigail-tools binutils (make deps)" >&2; exit 2; }
done
[[ -r $lib ]] || { echo "abi_check: $lib: no such library" >&2; exit 2; }
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
[[ -n $soname ]] || { echo "abi_check: $lib has no SONAME" >&2; exit 2; }
sections=$(readelf -S "$lib")  # (not piped into grep -q: readelf's SIGPIPE fails the pipe)
if ! grep -q '\.debug_info' <<<"$sections"; then
  echo "abi_check: $lib has no debug information, so no types to compare (build with -g," \
       "as the default RelWithDebInfo does): skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Locations, parameter names and build paths are left out and type ids are
# hashes, so that the dump depends on the ABI only, not on where the tree is.
abidw --headers-dir "$headers" --drop-private-types --suppressions "$suppr" \
  --drop-undefined-syms --no-corpus-path --no-comp-dir-path --no-show-locs \
  --no-parameter-names --type-id-style hash --out-file "$tmp/new.abi" "$lib"
sed -i "s|path='${src%/}/|path='|g" "$tmp/new.abi"

dump=$dumps/$soname.abi
rc=0
if [[ -f $dump ]]; then
  abidiff --no-added-syms --suppressions "$suppr" "$dump" "$tmp/new.abi" >"$tmp/diff" 2>&1 || rc=$?
  if (( rc & 3 )); then  # 1: abidiff failed, 2: usage error
    cat "$tmp/diff" >&2
    echo "abi_check: abidiff failed (exit $rc)" >&2
    exit 2
  fi
fi

if [[ $mode == dump ]]; then
  if (( rc & 8 )) && [[ ${ABI_DUMP_FORCE:-0} != 1 ]]; then
    cat "$tmp/diff"
    echo "abi_check: functions or variables were removed from $soname (above): an" \
         "incompatible change; bump the SONAME (the major of project(VERSION) in" \
         "CMakeLists.txt) rather than rewrite its dump (ABI_DUMP_FORCE=1 overrides)" >&2
    exit 1
  fi
  # One dump: the current SONAME's.
  find "$dumps" -maxdepth 1 -name '*.abi' ! -name "$soname.abi" -print -delete |
    sed 's/^/abi_check: removed the dump of an earlier SONAME: /'
  cp "$tmp/new.abi" "$dump"
  echo "abi_check: wrote $dump ($(wc -c <"$dump") bytes); commit it"
  exit 0
fi

if [[ ! -f $dump ]]; then
  shopt -s nullglob
  others=("$dumps"/*.abi)
  if (( ${#others[@]} > 0 )); then
    echo "abi_check: the SONAME is $soname, the committed dump is of" \
         "$(basename "${others[0]}" .abi): the SONAME was bumped, so the ABI may change;" \
         "run make abi-dump to commit the new baseline"
    exit 0
  fi
  echo "abi_check: no committed ABI dump in $dumps: run make abi-dump and commit it" >&2
  exit 1
fi
if (( rc == 0 )); then
  echo "abi_check: $soname: the C API is the one in $(basename "$dump") (additions allowed)"
  exit 0
fi
cat "$tmp/diff"
echo "FAIL: the C API of $soname changed (abidiff exit $rc, above) under the same SONAME." \
     "Incompatible (removed or changed functions, a changed struct a caller allocates):" \
     "bump the SONAME. Compatible by docs/abi.md (a field appended to a versioned stats" \
     "struct, with EXECMEM_STATS_VERSION raised): run make abi-dump and commit the dump."
exit 1
