#!/usr/bin/env bash
# Installs the Debian packages that execmem is built, tested and benchmarked
# with (`make deps`). Idempotent: does nothing when all are present.
# Usage: cmake/deps.sh PACKAGE...     (SKIP_DEPS=1 skips the check entirely)
set -euo pipefail

packages=("$@")
if [[ -n "${SKIP_DEPS:-}" ]]; then
  echo "deps: skipped (SKIP_DEPS is set)"
  exit 0
fi

give_up() {
  echo "deps: $1" >&2
  echo "deps: install these Debian packages, then run make again:" >&2
  echo "        apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "      (or set SKIP_DEPS=1 if they are installed some other way)" >&2
  exit 1
}

missing=("${packages[@]}")
if ! command -v dpkg-query >/dev/null 2>&1; then
  give_up "dpkg-query not found: not a Debian system, cannot check packages"
fi

missing=()
for pkg in "${packages[@]}"; do
  # One line per installed architecture; any "installed" line will do.
  if ! dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps: all present"
  exit 0
fi
echo "deps: missing: ${missing[*]}"

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  give_up "not root and sudo is not installed"
fi

command -v apt-get >/dev/null 2>&1 || give_up "apt-get not found"
"${as_root[@]}" apt-get update || give_up "apt-get update failed"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" ||
  give_up "apt-get install failed"
echo "deps: installed ${missing[*]}"
