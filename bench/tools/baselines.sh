# Sourced by bench/run.sh and tests/safety/run.sh: the Debian libraries of the
# baseline allocators. baseline_preload NAME prints the library to preload for
# glibc (none: an empty line), jemalloc, tcmalloc or mimalloc; status 1 for
# any other name.
baseline_libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
baseline_preload() {
  case "$1" in
    glibc) echo "" ;;
    jemalloc) echo "$baseline_libdir/libjemalloc.so.2" ;;
    tcmalloc) echo "$baseline_libdir/libtcmalloc_minimal.so.4" ;;
    mimalloc) echo "$baseline_libdir/libmimalloc.so.2" ;;
    *) return 1 ;;
  esac
}
