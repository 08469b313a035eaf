#!/bin/bash
# `make demo`: runs the bundled example (three threads with distinct hot
# functions and a busy main thread) under libprof, then shows where the
# profiles are and the hottest functions, read with `go tool pprof`.
set -eu
cd "$(dirname "$0")/.."
out=$PWD/build/demo-profiles
rm -rf "$out"
echo "== running build/progs/demo for 4 seconds under libprof (profiles every 2 s)"
LD_PRELOAD=$PWD/build/libprof.so LIBPROF_OUTPUT_DIR="$out" LIBPROF_INTERVAL=2 \
	build/progs/demo 4
echo
echo "== profiles written to $out:"
ls -l "$out"
echo
echo "== hottest functions, all profiles merged (go tool pprof -top):"
go tool pprof -top -nodecount=12 "$out"/*.pb.gz 2>/dev/null | sed -n '/flat%/,$p'
echo
echo "Explore them:  go tool pprof -http=127.0.0.1:8080 $out/*.pb.gz"
