#!/usr/bin/env bash
# install_test.sh BUILD_DIR CMAKE CC CXX VERSION
#
# Installs BUILD_DIR into a temporary prefix, checks the package's files (a
# versioned SONAME, headers free of Abseil, what the libraries depend on), then
# builds and runs the C and C++ consumers of tests/install/consumer/:
#   - with find_package(execmem): execmem::execmem and execmem::execmem_static;
#   - with pkg-config: `pkg-config --libs execmem` (shared) and
#     `pkg-config --static --libs execmem` inside -Wl,-Bstatic (libexecmem.a),
# with nothing on their link lines but what the package provides, and runs a
# program under the installed libexecmem_preload.so.
set -euo pipefail

if [[ $# -ne 5 ]]; then
  echo "usage: install_test.sh BUILD_DIR CMAKE CC CXX VERSION" >&2
  exit 2
fi
build=$1 cmake=$2 cc=$3 cxx=$4 version=$5
here=$(cd "$(dirname "$0")" && pwd)
major=${version%%.*}

work=$(mktemp -d "${TMPDIR:-/tmp}/execmem-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

# Runs a command quietly; on failure shows its output and counts a failure.
run() {
  local what=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    return 0
  fi
  fail "$what: $*"
  printf '%s\n' "$out" | sed 's/^/    /' >&2
  return 1
}

# needed LIB: the DT_NEEDED entries of LIB, one a line.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# only_allowed LIB EXTRA_RE [strict]: fails unless every NEEDED entry of LIB
# is part of glibc (libc, libm, the dynamic loader; with strict libc and the
# loader only) or matches EXTRA_RE.
only_allowed() {
  local lib=$1 extra=$2 glibc='libc\.so\.6|libm\.so\.6|ld-linux-x86-64\.so\.2' bad
  [[ ${3:-} == strict ]] && glibc='libc\.so\.6|ld-linux-x86-64\.so\.2'
  bad=$(needed "$lib" | grep -Ev "^(${glibc}${extra:+|$extra})$" || true)
  if [[ -n $bad ]]; then
    fail "$(basename "$lib") needs $(tr '\n' ' ' <<<"$bad")"
  else
    pass "$(basename "$lib") needs only: $(needed "$lib" | tr '\n' ' ')"
  fi
}

# ---- install -------------------------------------------------------------------
run "cmake --install" "$cmake" --install "$build" --prefix "$prefix" || exit 1
libdir=$(dirname "$(find "$prefix" -name "libexecmem.so.$version" -print -quit)")
if [[ ! -d $libdir || $libdir == . ]]; then
  fail "no libexecmem.so.$version installed"
  exit 1
fi
for f in "$libdir/libexecmem.a" "$libdir/libexecmem_preload.so" \
         "$prefix/include/execmem.h" "$prefix/include/execmem.hpp" "$prefix/include/execmem_lock.hpp" \
         "$prefix/include/execmem_version.h" \
         "$libdir/cmake/execmem/execmemConfig.cmake" \
         "$libdir/cmake/execmem/execmemConfigVersion.cmake" "$libdir/pkgconfig/execmem.pc"; do
  [[ -f $f ]] || fail "not installed: ${f#"$prefix"/}"
done
[[ $(readlink "$libdir/libexecmem.so") == "libexecmem.so.$major" ]] ||
  fail "libexecmem.so -> $(readlink "$libdir/libexecmem.so"), not libexecmem.so.$major"
[[ $(readlink "$libdir/libexecmem.so.$major") == "libexecmem.so.$version" ]] ||
  fail "libexecmem.so.$major -> $(readlink "$libdir/libexecmem.so.$major")"
soname=$(readelf -d "$libdir/libexecmem.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == "libexecmem.so.$major" ]] && pass "SONAME $soname" || fail "SONAME '$soname'"
grep -q "#define EXECMEM_VERSION_STRING \"$version\"" "$prefix/include/execmem_version.h" ||
  fail "execmem_version.h does not say $version"

# The public headers need the standard library only.
if grep -nE '#include *[<"](absl|gtest|allocator|pool|budget|platform|shim)/' "$prefix"/include/execmem*.h*; then
  fail "an installed header includes something outside the standard library"
else
  pass "installed headers include the standard library only"
fi

# What the libraries bring into a process: the preload nothing but libc,
# libexecmem.so no Abseil (only the C++ runtime a C++ API needs).
only_allowed "$libdir/libexecmem_preload.so" "" strict
only_allowed "$libdir/libexecmem.so.$version" 'libstdc\+\+\.so\.6|libgcc_s\.so\.1'

# ---- find_package --------------------------------------------------------------
cm=$work/cmake-consumer
if run "configure the find_package consumer" "$cmake" -S "$here/consumer" -B "$cm" \
     -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
     -DCMAKE_BUILD_TYPE=Release &&
   run "build the find_package consumer" "$cmake" --build "$cm" -j 2; then
  for exe in c_shared cc_shared c_static cc_static; do
    run "find_package consumer $exe" "$cm/$exe" && pass "find_package: $exe runs"
  done
  needed "$cm/cc_shared" | grep -qx "libexecmem.so.$major" ||
    fail "cc_shared does not need libexecmem.so.$major"
  if needed "$cm/c_static" | grep -q 'execmem\|absl'; then
    fail "c_static needs $(needed "$cm/c_static" | tr '\n' ' ')"
  fi
  preload=$(cat "$cm/preload.txt")
else
  preload=$libdir/libexecmem_preload.so
fi

# ---- pkg-config ------------------------------------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_LIBDIR=$libdir/pkgconfig
pc_version=$(pkg-config --modversion execmem)
[[ $pc_version == "$version" ]] && pass "pkg-config --modversion: $pc_version" ||
  fail "pkg-config --modversion: '$pc_version'"
read -r -a cflags <<<"$(pkg-config --cflags execmem)"
read -r -a libs <<<"$(pkg-config --libs execmem)"
read -r -a static_libs <<<"$(pkg-config --static --libs execmem)"
pc=$work/pc
mkdir -p "$pc"
# Shared: run with the prefix's lib directory on the loader's path (the link
# line carries no rpath). Static: every library the package names comes from
# its archive (libc stays shared).
if run "pkg-config: cc shared" "$cc" "${cflags[@]}" "$here/consumer/consumer.c" -o "$pc/c_shared" "${libs[@]}"; then
  run "pkg-config consumer c_shared" env LD_LIBRARY_PATH="$libdir" "$pc/c_shared" &&
    pass "pkg-config: c_shared runs"
fi
if run "pkg-config: c++ shared" "$cxx" -std=c++17 "${cflags[@]}" "$here/consumer/consumer.cc" \
     -o "$pc/cc_shared" "${libs[@]}"; then
  run "pkg-config consumer cc_shared" env LD_LIBRARY_PATH="$libdir" "$pc/cc_shared" &&
    pass "pkg-config: cc_shared runs"
fi
for lang in c cc; do
  if [[ $lang == c ]]; then compiler=("$cc") src=consumer.c; else compiler=("$cxx" -std=c++17) src=consumer.cc; fi
  if run "pkg-config: $lang static" "${compiler[@]}" "${cflags[@]}" "$here/consumer/$src" \
       -o "$pc/${lang}_static" -Wl,-Bstatic "${static_libs[@]}" -Wl,-Bdynamic; then
    if needed "$pc/${lang}_static" | grep -q 'execmem\|absl\|stdc++'; then
      fail "pkg-config ${lang}_static needs $(needed "$pc/${lang}_static" | tr '\n' ' ')"
    fi
    run "pkg-config consumer ${lang}_static" "$pc/${lang}_static" && pass "pkg-config: ${lang}_static runs"
  fi
done

# ---- the preload ---------------------------------------------------------------------
[[ $(pkg-config --variable=preload execmem) -ef $preload ]] ||
  fail "pkg-config's preload variable is not execmem::preload ($preload)"
# EXECMEM_STATS=stderr makes the shim print its report at exit: proof that it
# was loaded (the loader only warns about a preload it cannot load).
report=$(LD_PRELOAD=$preload EXECMEM_STATS=stderr /bin/true 2>&1) || fail "preloaded /bin/true failed"
if grep -q 'executor' <<<"$report"; then
  pass "preloaded /bin/true ran under execmem"
else
  fail "no execmem report from a preloaded /bin/true: $report"
fi

# ---- execmem_dask ------------------------------------------------------------------
# Installed beside the libraries; run from there (not from the source tree),
# it finds the prefix's shim without EXECMEM_PRELOAD.
pkgdir=$libdir/python3/dist-packages
if [[ -f $pkgdir/execmem_dask/__init__.py ]]; then
  pass "execmem_dask installed in ${pkgdir#"$prefix"/}"
  if /usr/bin/python3 -c 'import dask' 2>/dev/null; then
    found=$(cd / && env -u EXECMEM_PRELOAD -u LD_PRELOAD PYTHONPATH="$pkgdir" /usr/bin/python3 \
      -c 'import execmem_dask; print(execmem_dask.find_preload())' 2>&1) || true
    [[ $found -ef $libdir/libexecmem_preload.so ]] &&
      pass "installed execmem_dask finds $found" ||
      fail "installed execmem_dask.find_preload(): $found"
  fi
else
  fail "execmem_dask is not installed (lib/python3/dist-packages/execmem_dask)"
fi

if ((failures > 0)); then
  echo "install_test: $failures failure(s)" >&2
  exit 1
fi
echo "install_test: all checks passed"
