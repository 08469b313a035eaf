#!/bin/bash
# Proves: an invalid or unknown variable prints one warning on stderr and the
# program runs normally with the default; LIBPROF_ENABLE=0 and
# OTEL_SDK_DISABLED=true make libprof do nothing; OTEL_SERVICE_NAME names files.
. "$(dirname "$0")/lib.sh"

run() { # run DIR VAR=VALUE...: burn under libprof, stdout to $WORK/o, stderr to $WORK/e
	local dir=$1; shift
	lp "$dir" "$@" -- "$PROGS/burn" ratio 100 100 >"$WORK/o" 2>"$WORK/e"
}

run "$WORK/bad" LIBPROF_CPU_HZ=fast
check "the program ran normally" grep -qx "burn ratio done" "$WORK/o"
check "one warning names the variable, the value and the default" \
	grep -qx 'libprof: LIBPROF_CPU_HZ="fast" is not a whole number from 0 to 1000; using 100' "$WORK/e"
check "nothing else on stderr" test "$(wc -l <"$WORK/e")" = 1
check "profiling went on with the default" test -n "$(profiles "$WORK/bad")"

run "$WORK/interval" LIBPROF_INTERVAL=0.01
check "an interval below 0.1 s is refused with a warning" \
	grep -q 'LIBPROF_INTERVAL="0.01" is not a number of seconds from 0.1 to 3600; using 10' "$WORK/e"

run "$WORK/unknown" LIBPROF_CPU_HERTZ=50
check "an unknown variable gets a warning with the closest name" \
	grep -q 'LIBPROF_CPU_HERTZ is not a libprof variable (did you mean LIBPROF_CPU_HZ?)' "$WORK/e"
check "the program ran normally" grep -qx "burn ratio done" "$WORK/o"

run "$WORK/quiet" LIBPROF_CPU_HZ=fast LIBPROF_LOG=off
check "LIBPROF_LOG=off silences warnings" test ! -s "$WORK/e"

run "$WORK/off" LIBPROF_ENABLE=0
check "LIBPROF_ENABLE=0: the program runs" grep -qx "burn ratio done" "$WORK/o"
check "LIBPROF_ENABLE=0: no profile" test -z "$(profiles "$WORK/off")"
check "LIBPROF_ENABLE=0: no output directory" test ! -e "$WORK/off"

run "$WORK/otel" OTEL_SDK_DISABLED=TRUE
check "OTEL_SDK_DISABLED=TRUE: no profile" test -z "$(profiles "$WORK/otel")"
run "$WORK/otel2" OTEL_SDK_DISABLED=yes
check "OTEL_SDK_DISABLED=yes is not true: profiles" test -n "$(profiles "$WORK/otel2")"

run "$WORK/named" OTEL_SERVICE_NAME="checkout api"
check "OTEL_SERVICE_NAME names the files" test -n "$(profiles "$WORK/named" 'checkout_api.*.cpu.*')"

run "$WORK/cpuoff" LIBPROF_CPU_HZ=0
check "LIBPROF_CPU_HZ=0: no CPU profile" test -z "$(profiles "$WORK/cpuoff")"
finish
