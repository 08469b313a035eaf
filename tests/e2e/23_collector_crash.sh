#!/bin/bash
# Proves: killing the collector with SIGKILL in the middle of a stream of
# ingests never corrupts its database: PRAGMA integrity_check says ok, the
# trace index matches the profiles, and a restarted collector serves every
# profile it acknowledged before the kill.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"

DB=$WORK/c.db
T1=0123456789abcdef0123456789abcdef
$MKPROFILE pprof "$WORK/p.pb.gz" "crash_func,main@$T1=100000000" "other_func,main=50000000"
# a larger body too, so kills land inside longer transactions
$MKPROFILE pprof "$WORK/big.pb.gz" $(for i in $(seq 400); do printf 'f%d,g%d,main@%032x=%d ' $i $i $i $((i * 1000)); done)

# sender N: posts until the collector is gone; counts the 200s in $WORK/acked.N
sender() {
	local n=0 f=$WORK/p.pb.gz
	[ $(($1 % 2)) = 0 ] && f=$WORK/big.pb.gz
	while [ $n -lt 400 ] && [ "$(code --data-binary @"$f" "$URL/ingest?name=crashy&format=pprof")" = 200 ]; do
		n=$((n + 1))
	done
	echo $n >"$WORK/acked.$1"
}

for round in 1 2 3; do
	start_collector "$DB" || finish
	before=$(sqlite3 "$DB" 'SELECT COUNT(*) FROM profiles' 2>/dev/null || echo 0)
	for s in 1 2 3 4; do sender $s & done
	sleep 1.$((round * 2))
	kill -9 "$CPID"
	wait "$CPID" 2>/dev/null
	wait
	acked=$(cat "$WORK"/acked.* | awk '{ s += $1 } END { print s }')
	check "round $round: the collector was killed mid-stream ($acked uploads acknowledged)" \
		test "$acked" -gt 0
	check "round $round: integrity_check says ok" \
		test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
	rows=$(sqlite3 "$DB" 'SELECT COUNT(*) FROM profiles')
	check "round $round: every acknowledged profile is stored ($before + $acked <= $rows)" \
		test "$rows" -ge $((before + acked))
	check "round $round: no trace index row without its profile" test "$(sqlite3 "$DB" \
		'SELECT COUNT(*) FROM trace_index WHERE profile_id NOT IN (SELECT id FROM profiles)')" = 0
done
start_collector "$DB" || finish
ptop "$URL/api/v1/profiles?service=crashy&trace_id=$T1" >"$WORK/top"
check "a restarted collector serves the trace" has "$WORK/top" "crash_func"
check "and stops cleanly" stop_collector
finish
