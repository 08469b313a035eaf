#!/bin/sh
# Installs the Debian packages libprof needs, only those missing. Idempotent.
# Usage: scripts/install-deps.sh [build|test|bench|all]   (default: build)
set -eu

build="gcc make pkg-config libc6-dev libunwind-dev libprotobuf-c-dev protobuf-c-compiler
       zlib1g-dev libcurl4-openssl-dev libdw-dev libelf-dev libmicrohttpd-dev libsqlite3-dev"
test="libcmocka-dev golang-go protobuf-compiler python3 sqlite3 gzip coreutils g++ libjemalloc2 libgoogle-perftools4 curl openssl"
# ---- the collector's web page (collector/web/) ------------------------------
# build: xxd embeds the page in the collector; node and npm fetch its flame-graph
# library (Debian's nodejs and npm, unless a node with its own npm is already
# installed, e.g. NodeSource's nodejs, which conflicts with Debian's npm).
# test: chromium runs the page in tests/e2e/24_collector_web.sh.
build="$build xxd"
command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || build="$build nodejs npm"
test="$test chromium"
# test: tests/e2e/40_nginx.sh runs Debian's nginx (its own instance, on a free
# loopback port). Where systemd runs, installing the package also starts
# Debian's nginx service on port 80; `systemctl disable --now nginx` stops it.
test="$test nginx"
bench="google-perftools libgoogle-perftools-dev heaptrack time zstd wrk"

case "${1:-build}" in
  build) want="$build" ;;
  demo)  want="$build golang-go curl" ;;
  test)  want="$build $test" ;;
  bench) want="$build $test $bench" ;;
  all)   want="$build $test $bench" ;;
  fuzz)  want="clang libclang-rt-14-dev" ;;   # make fuzz: clang-14 and its libFuzzer runtime
  *) echo "usage: $0 [build|demo|test|bench|all]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "install-deps: missing packages:$missing (run as root to install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
