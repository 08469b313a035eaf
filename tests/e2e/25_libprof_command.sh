#!/bin/bash
# Proves: the `libprof` command (cli/libprof.c). `libprof run` sets the
# library's variables from its options, puts the absolute path of libprof.so
# first in LD_PRELOAD (keeping what was there), and becomes the program: burn
# run through it leaves CPU profiles showing its functions, and its exit status
# is the program's. Bad options print one line and exit 2. `libprof collector`
# runs the collector with its flags. `make install PREFIX=... [DESTDIR=...]`
# installs the library, both commands and the docs, and the installed
# `libprof run` finds the installed library and profiles a program.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"

CMD=$ROOT/build/libprof

# usage_error PATTERN COMMAND...: COMMAND exits 2 with one line on stderr matching the pattern.
usage_error() {
	local pat=$1 rc
	shift
	"$@" >"$WORK/usage.out" 2>"$WORK/usage.err"
	rc=$?
	if [ "$rc" = 2 ] && [ "$(wc -l <"$WORK/usage.err")" = 1 ] && grep -qE "$pat" "$WORK/usage.err" &&
		[ ! -s "$WORK/usage.out" ]; then
		return 0
	fi
	say "  exit $rc, stderr: $(cat "$WORK/usage.err")"
	return 1
}

# --- the command line ---------------------------------------------------------------
check "--help: usage on stdout, exit 0" bash -c "'$CMD' --help | grep -q 'libprof run'"
check "run --help lists the options" bash -c "'$CMD' run --help | grep -q -- '--heap-rate BYTES'"
check "no command: usage, exit 2" bash -c "'$CMD' >/dev/null 2>&1; test \$? = 2"
check "an unknown command: one line, exit 2" usage_error "unknown command 'bogus'" "$CMD" bogus
check "--cpu-hz fast: one line, exit 2" usage_error "cpu-hz 'fast'.*0 to 1000" \
	"$CMD" run --cpu-hz fast -- true
check "--cpu-hz 5000: one line, exit 2" usage_error "cpu-hz '5000'" "$CMD" run --cpu-hz=5000 -- true
check "--heap-rate -1: one line, exit 2" usage_error "heap-rate '-1'" "$CMD" run --heap-rate -1 -- true
check "--mutex-rate 2000000: one line, exit 2" usage_error "mutex-rate '2000000'" \
	"$CMD" run --mutex-rate 2000000 -- true
check "--endpoint ftp://x: one line, exit 2" usage_error "endpoint 'ftp://x'.*http://" \
	"$CMD" run --endpoint ftp://x -- true
check "--interval 0: one line, exit 2" usage_error "interval '0'" "$CMD" run --interval 0 -- true
check "an unknown option: one line, exit 2" usage_error "unknown option '--fast'" \
	"$CMD" run --fast -- true
check "an option without its value: one line, exit 2" usage_error "output needs a value" \
	"$CMD" run --output
check "no program: one line, exit 2" usage_error "no program" "$CMD" run --cpu-hz 10 --
check "a program that does not exist: exit 127" bash -c \
	"'$CMD' run -- /nonexistent/prog 2>/dev/null; test \$? = 127"
check "the program's exit status is passed on" bash -c "'$CMD' run -- sh -c 'exit 7'; test \$? = 7"

# --- the environment it sets ------------------------------------------------------------
JEMALLOC=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || echo /usr/lib/libfake.so)
(cd "$WORK" && LIBPROF_ENABLE=0 LD_PRELOAD="$JEMALLOC" "$CMD" run --cpu-hz 250 --heap-rate=4096 \
	--mutex-rate 5 --endpoint http://127.0.0.1:4040 --output rel/dir --service shop \
	--interval 0.5 -- env) >"$WORK/env" 2>/dev/null
lib=$(readlink -f "$ROOT/build/libprof.so")
check "LD_PRELOAD: the absolute libprof.so first, the old list after" \
	grep -qx "LD_PRELOAD=$lib:$JEMALLOC" "$WORK/env"
for v in LIBPROF_CPU_HZ=250 LIBPROF_HEAP_RATE=4096 LIBPROF_MUTEX_RATE=5 \
	LIBPROF_ENDPOINT=http://127.0.0.1:4040 "LIBPROF_OUTPUT_DIR=$WORK/rel/dir" \
	OTEL_SERVICE_NAME=shop LIBPROF_INTERVAL=0.5 LIBPROF_ENABLE=0; do
	check "sets $v" grep -qx "$v" "$WORK/env"
done
LIBPROF_ENABLE=0 LD_PRELOAD="$lib" "$CMD" run -- env >"$WORK/env2" 2>/dev/null
check "libprof.so already in LD_PRELOAD is not loaded twice" grep -qx "LD_PRELOAD=$lib" "$WORK/env2"

# --- profiling a program through it --------------------------------------------------------
"$CMD" run --cpu-hz 200 --interval 1 --output "$WORK/out" -- "$PROGS/burn" ratio 300 600 >/dev/null
files=$(profiles "$WORK/out" "burn.*.cpu.*")
check "libprof run left CPU profiles of burn" test -n "$files"
top $files >"$WORK/top"
check "they show burn_a and burn_b" bash -c "grep -q ' burn_a$' '$WORK/top' && grep -q ' burn_b$' '$WORK/top'"
(cd "$WORK" && "$CMD" run --output relative -- "$PROGS/burn" ratio 50 50 >/dev/null)
check "a relative --output is made absolute" test -n "$(profiles "$WORK/relative")"

# --- libprof collector ---------------------------------------------------------------------
check "libprof collector --help is the collector's" bash -c \
	"'$CMD' collector --help | grep -q 'usage: libprof-collector'"
check "libprof collector with a bad flag: exit 2" bash -c \
	"'$CMD' collector --bogus 2>/dev/null; test \$? = 2"
COLLECTOR_SAVED=$COLLECTOR
COLLECTOR=$WORK/collector-via-libprof
printf '#!/bin/sh\nexec "%s" collector "$@"\n' "$CMD" >"$COLLECTOR"
chmod +x "$COLLECTOR"
if start_collector "$WORK/c.db"; then
	check "libprof collector serves" is 200 "$URL/healthz"
	check "a profile written through libprof run is ingested" is 200 \
		--data-binary @"$(echo "$files" | head -1)" "$URL/ingest?name=burn&format=pprof"
	stop_collector
	check "libprof collector stops cleanly on SIGTERM" test $? = 0
else
	check "libprof collector starts" false
fi
COLLECTOR=$COLLECTOR_SAVED

# --- make install ---------------------------------------------------------------------------
P=$WORK/prefix
make -s -C "$ROOT" install PREFIX="$P" >"$WORK/install.log" 2>&1
rc=$?
check "make install PREFIX=... succeeds" test $rc = 0
[ $rc = 0 ] || tail -20 "$WORK/install.log" | sed 's/^/    /'
for f in lib/libprof.so bin/libprof bin/libprof-collector share/doc/libprof/README.md \
	share/doc/libprof/COLLECTOR.md share/doc/libprof/CONFIG.md share/doc/libprof/ARCHITECTURE.md; do
	check "installed $f" test -s "$P/$f"
done
check "the commands are executable" test -x "$P/bin/libprof" -a -x "$P/bin/libprof-collector"
LIBPROF_ENABLE=0 "$P/bin/libprof" run -- env >"$WORK/env3" 2>/dev/null
check "the installed libprof run preloads the installed library" \
	grep -qx "LD_PRELOAD=$(readlink -f "$P/lib/libprof.so")" "$WORK/env3"
ln -s "$P/bin/libprof" "$WORK/libprof-link"
"$WORK/libprof-link" run --cpu-hz 200 --output "$WORK/out-installed" -- "$PROGS/burn" ratio 200 200 >/dev/null
files=$(profiles "$WORK/out-installed" "burn.*.cpu.*")
check "the installed libprof run (through a symlink) profiles burn" test -n "$files"
top $files >"$WORK/top2"
check "its profiles show burn_a" grep -q " burn_a$" "$WORK/top2"
check "the installed libprof collector runs the installed collector" bash -c \
	"'$P/bin/libprof' collector --help | grep -q 'usage: libprof-collector'"
make -s -C "$ROOT" install PREFIX=/opt/libprof DESTDIR="$WORK/stage" >"$WORK/install2.log" 2>&1
check "make install DESTDIR=... PREFIX=/opt/libprof stages under DESTDIR" \
	test -s "$WORK/stage/opt/libprof/lib/libprof.so" -a -x "$WORK/stage/opt/libprof/bin/libprof"
finish
